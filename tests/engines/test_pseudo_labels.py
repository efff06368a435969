"""The mean teacher's pseudo-labels: the copy at the start, the moving average, the voxels kept, the ramp, and the
fine-tuning batch and loss that carry them."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events
from monai.networks.schedulers import DDPMScheduler
from torch import nn

from monai_hybrid.engines import HybridPrepareBatch, PseudoLabeler, finetuning_prepare_batch
from monai_hybrid.losses import finetuning_loss


class _FixedMask(nn.Module):
    """A stand-in network whose mask logits are a parameter (K=3, 2 x 2 voxels), plus a trace of the noise levels
    it was asked for."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = nn.Parameter(logits.clone())
        self.seen: list[int] = []

    def forward(self, x, timesteps=None, output=None):
        t = 0 if timesteps is None else int(timesteps[0])
        self.seen.append(t)
        return self.logits.expand(x.shape[0], -1, -1, -1) + 0 * x


def _engine(labeler: PseudoLabeler, network: nn.Module) -> Engine:
    def step(engine, batch):
        with torch.no_grad():
            network.logits.add_(1.0)  # the student moves by 1 every iteration

    engine = Engine(step)
    labeler.attach(engine)
    return engine


def test_the_teacher_starts_from_the_weights_at_the_start_and_follows_by_the_moving_average():
    net = _FixedMask(torch.zeros(3, 2, 2))
    labeler = PseudoLabeler(net, decay=0.5)
    engine = _engine(labeler, net)
    with torch.no_grad():
        net.logits.fill_(2.0)  # loaded after the labeller was built, before the run: the teacher starts from it
    engine.run([0, 1], max_epochs=1)
    # start 2; iteration 1: student 3, teacher 0.5 * 2 + 0.5 * 3 = 2.5; iteration 2: student 4, teacher 3.25
    torch.testing.assert_close(labeler.teacher.module.logits, torch.full((3, 2, 2), 3.25))
    torch.testing.assert_close(net.logits, torch.full((3, 2, 2), 4.0))


def test_labels_and_kept_voxels_by_hand():
    logits = torch.zeros(3, 2, 2)
    logits[1, 0, 0] = 5.0  # confident class 1: kept at threshold 0.9 (p = 0.987)
    logits[2, 0, 1] = 1.0  # class 2 at p = 0.576: dropped
    net = _FixedMask(logits)
    labeler = PseudoLabeler(net, threshold=0.9)
    labeler.attach(Engine(lambda e, b: None))
    labeler._start(Engine(lambda e, b: None))
    labels, keep = labeler.predict(torch.zeros(2, 1, 2, 2))
    assert labels.shape == keep.shape == (2, 1, 2, 2)
    assert labels[0, 0].tolist() == [[1, 2], [0, 0]]
    assert keep[0, 0].tolist() == [[True, False], [False, False]]


def test_noise_levels_that_disagree_drop_the_voxel():
    class _NoiseFlips(_FixedMask):
        def forward(self, x, timesteps=None, output=None):
            out = super().forward(x, timesteps, output)
            if timesteps is not None and int(timesteps[0]) > 0:  # a noised pass calls voxel (0, 0) class 2
                out = out.clone()
                out[:, 2, 0, 0] = 20.0
            return out

    logits = torch.zeros(3, 2, 2)
    logits[1] = 10.0  # class 1 everywhere, confidently
    net = _NoiseFlips(logits)
    sched = DDPMScheduler(num_train_timesteps=20)
    clean = PseudoLabeler(net, timesteps=[0], threshold=0.5)
    ensemble = PseudoLabeler(net, timesteps=[0, 5], draws=2, scheduler=sched, threshold=0.3)
    for labeler in (clean, ensemble):
        labeler._start(Engine(lambda e, b: None))
    assert clean.predict(torch.zeros(1, 1, 2, 2))[1].all()
    teacher = ensemble.teacher.module
    teacher.seen.clear()
    _, keep = ensemble.predict(torch.zeros(1, 1, 2, 2))
    assert teacher.seen == [0, 5, 5]  # one clean pass, two draws at t = 5
    assert keep[0, 0].tolist() == [[False, True], [True, True]]


def test_the_weight_ramps_up_linearly_then_stays_at_one():
    net = _FixedMask(torch.zeros(3, 2, 2))
    labeler = PseudoLabeler(net, rampup=4)
    engine = _engine(labeler, net)
    ramps = []
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: ramps.append(labeler.ramp))
    engine.run(list(range(6)), max_epochs=1)
    assert ramps == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert PseudoLabeler(net).ramp == 1.0  # rampup 0: full weight


def test_labels_before_the_trainer_starts_are_refused():
    with pytest.raises(RuntimeError, match="attach the labeller to the trainer"):
        PseudoLabeler(_FixedMask(torch.zeros(3, 2, 2))).predict(torch.zeros(1, 1, 2, 2))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"timesteps": []}, "'timesteps' must be a non-empty list"),
        ({"timesteps": [0, 0]}, "distinct non-negative integers"),
        ({"timesteps": [0, 5]}, "need the training 'scheduler'"),
        ({"timesteps": [0, 20], "scheduler": DDPMScheduler(num_train_timesteps=20)}, "below the schedule's 20"),
        ({"draws": 0}, "'draws' must be a positive integer"),
        ({"threshold": 1.0}, r"'threshold' must be in \[0, 1\)"),
        ({"decay": -0.1}, r"'decay' must be in \[0, 1\)"),
        ({"rampup": -1}, "'rampup' must be a non-negative integer"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PseudoLabeler(_FixedMask(torch.zeros(3, 2, 2)), **kwargs)


def test_the_fine_tuning_batch_carries_the_unlabelled_scans_clean_with_their_pseudo_labels():
    logits = torch.zeros(3, 2, 2)
    logits[2] = 10.0
    net = _FixedMask(logits)
    labeler = PseudoLabeler(net, rampup=2)
    engine = Engine(lambda e, b: None)
    labeler._start(engine)
    labeler.iteration = 1  # half-way up the ramp
    unlabeled = [{"image": torch.randn(3, 1, 2, 2)}]
    pb = finetuning_prepare_batch(
        DDPMScheduler(num_train_timesteps=20), unlabeled_loader=unlabeled, pseudo_labeler=labeler
    )
    batch = {"image": torch.randn(2, 1, 2, 2), "label": torch.randint(0, 3, (2, 1, 2, 2))}
    images, targets, _, kwargs = pb(batch)
    assert images.shape[0] == 5 and torch.equal(images[2:], unlabeled[0]["image"])
    assert "image" not in targets  # nothing denoised
    assert torch.count_nonzero(kwargs["timesteps"]) == 0 and torch.count_nonzero(kwargs["noise"]) == 0
    assert targets["pseudo_label"].shape == (3, 1, 2, 2) and (targets["pseudo_label"] == 2).all()
    assert (targets["pseudo_weights"] == 0.5).all()


def test_the_loss_adds_the_weighted_cross_entropy_of_the_kept_voxels():
    loss = finetuning_loss(image_channels=1, unlabeled_weight=2.0, pseudo_labels=True)
    pred = torch.randn(3, 1 + 3, 2, 2)
    label = torch.randint(0, 3, (1, 1, 2, 2))
    pseudo = torch.randint(0, 3, (2, 1, 2, 2))
    weights = torch.tensor([[1.0, 0.0], [0.5, 1.0]]).expand(2, 1, 2, 2)
    terms = loss.terms(pred, {"label": label, "pseudo_label": pseudo, "pseudo_weights": weights})
    ce = torch.nn.functional.cross_entropy(pred[1:, 1:], pseudo[:, 0], reduction="none")
    expected = (ce * weights[:, 0]).sum() / ce.numel()
    torch.testing.assert_close(terms["loss_pseudo"], expected)
    torch.testing.assert_close(terms["loss"], terms["loss_mask"] + 2.0 * expected)
    assert "loss_image" not in terms


def test_pseudo_labels_need_unlabelled_scans_and_fine_tuning():
    sched = DDPMScheduler(num_train_timesteps=20)
    labeler = PseudoLabeler(_FixedMask(torch.zeros(3, 2, 2)))
    with pytest.raises(ValueError, match="needs an 'unlabeled_loader'"):
        finetuning_prepare_batch(sched, pseudo_labeler=labeler)
    with pytest.raises(ValueError, match="not mode 'hybrid'"):
        HybridPrepareBatch(sched, mode="hybrid", unlabeled_loader=[{}], pseudo_labeler=labeler)
