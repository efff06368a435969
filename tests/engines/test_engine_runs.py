"""One-iteration runs of MONAI's stock SupervisedTrainer and SupervisedEvaluator with the hybrid pieces."""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import MeanDice, from_engine
from monai.inferers import DiffusionInferer, SliceInferer
from monai.networks.schedulers import DDPMScheduler
from monai.transforms import AsDiscreted

from monai_hybrid.engines import (
    DenoisingErrorHandler,
    HybridPrepareBatch,
    LossTermsHandler,
    MaskInferer,
    predict_x0,
)
from monai_hybrid.losses import pretraining_loss
from monai_hybrid.modes import get_mode
from monai_hybrid.networks import HybridDiffusionUNet

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)


def _loader(n=2, classes=3, spatial=(16, 16), batches=2):
    g = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randn(n, 1, *spatial, generator=g),
            "label": torch.randint(0, classes, (n, 1, *spatial), generator=g),
        }
        for _ in range(batches)
    ]


@pytest.mark.parametrize("mode", ["hybrid", "supervised", "diffusion", "contrastive"])
@pytest.mark.parametrize("spatial", [(16, 16), (16, 16, 16)])
def test_two_iterations_per_mode(mode, spatial):
    """Two steps: the zero-initialised image head passes no gradient to the body in the first."""
    torch.manual_seed(0)
    spec = get_mode(mode)
    net = HybridDiffusionUNet(
        len(spatial), 1, 3, projection_dim=4 if spec.contrastive else 0, output_mode=spec.network_output, **TINY
    )
    sched = DDPMScheduler(num_train_timesteps=20)
    loss = pretraining_loss(mode, image_channels=1, image_weight=1.0, mask_weight=0.5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=_loader(spatial=spatial),
        network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-3),
        loss_function=loss,
        prepare_batch=HybridPrepareBatch(sched, mode=mode),
        inferer=DiffusionInferer(sched),
        train_handlers=[LossTermsHandler(loss)],
        decollate=False,
    )
    trainer.run()
    assert torch.isfinite(trainer.state.output["loss"])
    expected = {
        "hybrid": {"loss_image", "loss_mask"},
        "supervised": {"loss_mask"},
        "diffusion": {"loss_image"},
        "contrastive": {"loss_contrastive"},
    }[mode]
    assert expected <= set(trainer.state.output)
    assert {f"epoch_{k}" for k in expected} <= set(trainer.state.metrics)
    changed = {k.split(".")[0] for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert "unet" in changed
    assert ("mask_head" in changed) == spec.mask_loss
    assert ("image_head" in changed) == spec.image_loss


def test_evaluator_at_t0_with_dice_and_denoising_error():
    torch.manual_seed(0)
    net = HybridDiffusionUNet(2, 1, 3, **TINY)
    sched = DDPMScheduler(num_train_timesteps=20)
    volumes = [{"image": torch.randn(1, 1, 16, 16, 8), "label": torch.randint(0, 3, (1, 1, 16, 16, 8))}]
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"),
        val_data_loader=volumes,
        network=net,
        inferer=MaskInferer(SliceInferer(spatial_dim=2, roi_size=(16, 16), sw_batch_size=4, progress=False)),
        postprocessing=AsDiscreted(keys=["pred", "label"], argmax=[True, False], to_onehot=[3, 3]),
        key_val_metric={
            "val_mean_dice": MeanDice(include_background=False, output_transform=from_engine(["pred", "label"]))
        },
        val_handlers=[DenoisingErrorHandler(sched, timesteps=(5, 15), spatial_dims=2, num_slices=3)],
    )
    evaluator.run()
    assert 0.0 <= evaluator.state.metrics["val_mean_dice"] <= 1.0
    # the image head starts at zero and predicts x0 = 0: the error is the mean square of the slices
    assert evaluator.state.metrics["val_denoise_mse"] > 0.5


def test_predict_x0_inverts_the_noising():
    sched = DDPMScheduler(num_train_timesteps=50)
    x0 = torch.randn(3, 1, 4, 4)
    eps = torch.randn_like(x0)
    t = torch.tensor([0, 10, 49])
    x_t = sched.add_noise(x0, eps, t)
    torch.testing.assert_close(predict_x0(sched, "epsilon", x_t, t, eps), x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(
        predict_x0(sched, "v_prediction", x_t, t, sched.get_velocity(x0, eps, t)), x0, atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(predict_x0(sched, "sample", x_t, t, x0), x0)
    with pytest.raises(ValueError, match="'prediction_type' got"):
        predict_x0(sched, "noise", x_t, t, eps)


def test_denoising_handler_argument_checks():
    sched = DDPMScheduler(num_train_timesteps=20)
    with pytest.raises(ValueError, match="'timesteps' must be in"):
        DenoisingErrorHandler(sched, timesteps=(25,))
    with pytest.raises(ValueError, match="'spatial_dims' must be 2 or 3"):
        DenoisingErrorHandler(sched, timesteps=(5,), spatial_dims=1)
    with pytest.raises(ValueError, match="'prediction_type'"):
        DenoisingErrorHandler(sched, prediction_type="x", timesteps=(5,))


def test_mask_inferer_returns_mask_logits():
    net = HybridDiffusionUNet(2, 1, 3, **TINY)
    assert MaskInferer()(torch.randn(2, 1, 16, 16), net).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="'inferer' must be a MONAI inferer"):
        MaskInferer(inferer=3)
