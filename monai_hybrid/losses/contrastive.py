"""Pixel-wise label-based contrastive loss (Zhao et al. 2020, "Contrastive Learning for Label-Efficient Semantic
Segmentation", ICCV 2021, arXiv 2012.06985).

Pixels of the same class attract, pixels of other classes repel, on L2-normalised embeddings from a projection head
of the decoder features. For anchor ``i`` with positives ``P(i)`` (same label) among the sampled pixels ``A``
(supervised contrastive form of Khosla et al. 2020):

    l_i = -1/|P(i)| * sum_{p in P(i)} log( exp(z_i . z_p / tau) / sum_{a in A, a != i} exp(z_i . z_a / tau) )

Pixels are sampled class-balanced (up to ``pixels_per_class`` per class and image) to bound memory.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PixelContrastiveLoss"]


class PixelContrastiveLoss(nn.Module):
    """Supervised pixel contrastive loss on embeddings.

    Args:
        temperature: ``tau`` (0.07 in Zhao et al.).
        pixels_per_class: most anchors drawn per class and image.
    """

    def __init__(self, temperature: float = 0.07, pixels_per_class: int = 64) -> None:
        super().__init__()
        name = type(self).__name__
        if not float(temperature) > 0:
            raise ValueError(f"{name}: 'temperature' must be > 0, got {temperature!r}.")
        if not isinstance(pixels_per_class, int) or pixels_per_class < 2:
            raise ValueError(f"{name}: 'pixels_per_class' must be an integer >= 2, got {pixels_per_class!r}.")
        self.temperature = float(temperature)
        self.pixels_per_class = pixels_per_class
        self.last_terms: dict[str, torch.Tensor] = {}

    def _sample(self, labels: torch.Tensor) -> torch.Tensor:
        """Flat indices (into N * P) of the class-balanced anchors."""
        n, p = labels.shape
        chosen = []
        for b in range(n):
            for c in torch.unique(labels[b]):
                idx = torch.nonzero(labels[b] == c, as_tuple=False).squeeze(1)
                idx = idx[torch.randperm(idx.numel(), device=idx.device)[: self.pixels_per_class]]
                chosen.append(idx + b * p)
        return torch.cat(chosen)

    def terms(
        self, embeddings: torch.Tensor, target: dict[str, torch.Tensor] | torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The loss and its one term.

        Args:
            embeddings: (N, D, *spatial) L2-normalised embeddings.
            target: (N, 1, *spatial) integer labels, or a dict holding them under ``"label"``.

        Returns:
            ``loss_contrastive`` and ``loss`` (the same value).
        """
        labels = target["label"] if isinstance(target, dict) else target
        if labels is None:
            raise ValueError(f"{type(self).__name__}: the pixel contrastive loss needs labels.")
        if labels.shape[2:] != embeddings.shape[2:]:
            labels = F.interpolate(labels.float(), size=embeddings.shape[2:], mode="nearest")
        n, d = embeddings.shape[:2]
        z = embeddings.reshape(n, d, -1).transpose(1, 2).reshape(-1, d)  # (N * P, D)
        y = labels.reshape(n, -1).long()
        idx = self._sample(y)
        z, y = z[idx].float(), y.reshape(-1)[idx]
        logits = z @ z.T / self.temperature  # (M, M)
        self_mask = torch.eye(len(idx), dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positives = (y[:, None] == y[None, :]) & ~self_mask
        n_pos = positives.sum(1)
        has_pos = n_pos > 0
        if not has_pos.any():
            loss = embeddings.sum() * 0.0
        else:
            pos_log_prob = log_prob.masked_fill(~positives, 0.0).sum(1)
            loss = -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()
        return {"loss_contrastive": loss, "loss": loss}

    def forward(self, embeddings: torch.Tensor, target: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """The loss (a scalar); the terms are kept in ``last_terms``."""
        terms = self.terms(embeddings, target)
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        return terms["loss"]
