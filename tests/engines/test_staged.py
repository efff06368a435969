"""Staged fine-tuning freezes exactly what it says and unfreezes after the iteration it says."""

import pytest
import torch
from ignite.engine import Engine

from monai_hybrid.engines.staged import StagedFineTuning, trainable_parameters
from monai_hybrid.networks import HybridDiffusionUNet


def _network():
    torch.manual_seed(0)
    return HybridDiffusionUNet(
        spatial_dims=2,
        in_channels=1,
        num_classes=3,
        channels=(8, 16),
        attention_levels=(False, False),
        num_head_channels=8,
        norm_num_groups=8,
    )


def _run(trainable, unfreeze_at, iterations, factor=0.5):
    """Train a tiny network; the parameters changed by each iteration and the learning rate at each."""
    net = _network()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    x = torch.randn(2, 1, 16, 16)
    t = torch.zeros(2, dtype=torch.long)
    changed, lrs = [], []

    def step(engine, _):
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        net(x, t).square().mean().backward()
        opt.step()
        sched.step()
        changed.append({n for n, p in net.named_parameters() if not torch.equal(before[n], p)})

    engine = Engine(step)
    StagedFineTuning(net, opt, trainable, unfreeze_at, factor, lr_scheduler=sched).attach(engine)
    engine.run(range(iterations), max_epochs=1)
    return net, changed, lrs


def test_head_first_then_everything_at_the_step_it_says():
    net, changed, lrs = _run("head", unfreeze_at=3, iterations=5)
    everything = {n for n, _ in net.named_parameters()}
    head = {n for n in everything if n.startswith("mask_head.")}
    assert head == {"mask_head.conv.weight", "mask_head.conv.bias"}
    assert changed[:3] == [head] * 3  # iterations 1-3: the mask head only
    # from iteration 4 every parameter trains: the encoder's first convolution and the deepest level move too
    assert all({"unet.conv_in.conv.weight", "unet.middle_block.resnet_1.conv1.conv.weight"} <= c for c in changed[3:])
    assert all(p.requires_grad for p in net.parameters())
    ratio = lrs[3] / lrs[2]
    assert 0.45 < ratio < 0.5  # scaled by 0.5 (times one cosine step)


def test_input_block_and_normalisation_for_the_whole_run():
    net, changed, _ = _run("input_norm", unfreeze_at=None, iterations=3)
    chosen = {n for n, _ in trainable_parameters(net, "input_norm")}
    assert any(n.startswith("unet.conv_in.") for n in chosen)
    assert any(n.startswith("unet.down_blocks.0.") for n in chosen)
    assert not any(n.startswith(("unet.down_blocks.1.", "unet.middle_block.")) and "norm" not in n for n in chosen)
    assert any(n.startswith("unet.up_blocks.") for n in chosen)  # their normalisation layers
    assert all(c <= chosen for c in changed) and all(c for c in changed)


def test_all_trains_everything_and_bad_settings_are_named():
    net = _network()
    opt = torch.optim.AdamW(net.parameters())
    StagedFineTuning(net, opt).start(Engine(lambda e, b: None))
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="unfreeze_at"):
        StagedFineTuning(net, opt, "head", unfreeze_at=0)
    with pytest.raises(ValueError, match="unfrozen_lr_factor"):
        StagedFineTuning(net, opt, "head", unfrozen_lr_factor=0)
    with pytest.raises(ValueError, match="head"):
        StagedFineTuning(net, opt, "heads")
