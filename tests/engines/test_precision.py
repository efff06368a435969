"""The precision setting: bfloat16 autocast of the forward pass on a CPU through the engines' public inferer."""

from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedTrainer
from monai.inferers import DiffusionInferer, SimpleInferer
from monai.networks.schedulers import DDPMScheduler

from monai_hybrid.engines import AutocastInferer, HybridPrepareBatch, resolve_precision, with_precision
from monai_hybrid.engines import precision as precision_module
from monai_hybrid.losses import pretraining_loss
from monai_hybrid.networks import HybridDiffusionUNet
from monai_hybrid.options import Precision

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_head_channels=8, norm_num_groups=8)


def _conv_dtypes(net: torch.nn.Module) -> list[torch.dtype]:
    """Records the output dtype of every convolution of ``net`` in the list returned."""
    seen: list[torch.dtype] = []
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d)):
            module.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("spatial", [(16, 16), (16, 16, 16)])
def test_autocast_inferer_runs_the_forward_in_bfloat16_and_returns_float32(spatial):
    torch.manual_seed(0)
    net = HybridDiffusionUNet(len(spatial), 1, 3, **TINY)
    seen = _conv_dtypes(net)
    image = torch.randn(2, 1, *spatial)
    out = AutocastInferer(SimpleInferer())(image, net)
    assert out.dtype == torch.float32 and out.shape == (2, 4, *spatial)
    assert seen and set(seen) == {torch.bfloat16}
    reference = SimpleInferer()(image, net)
    assert reference.dtype == torch.float32
    assert torch.allclose(out, reference, atol=0.1)  # bfloat16 keeps about 3 significant digits


def test_one_training_iteration_in_bfloat16_through_the_trainers_inferer():
    """MONAI's SupervisedTrainer with the wrapped DiffusionInferer: the convolutions run in bfloat16, the loss is a
    finite float32, and the gradients and weights stay float32."""
    torch.manual_seed(0)
    net = HybridDiffusionUNet(2, 1, 3, **TINY)
    seen = _conv_dtypes(net)
    scheduler = DDPMScheduler(num_train_timesteps=20, prediction_type="sample", clip_sample=False)
    batch = {"image": torch.randn(2, 1, 16, 16), "label": torch.randint(0, 3, (2, 1, 16, 16))}
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=[batch],
        network=net,
        optimizer=torch.optim.AdamW(net.parameters(), 1e-3),
        loss_function=pretraining_loss("hybrid", 1, 1.0, 1.0),
        prepare_batch=HybridPrepareBatch(scheduler, mode="hybrid", t0_fraction=0.5),
        inferer=with_precision(DiffusionInferer(scheduler), Precision.CPU_BFLOAT16),
        decollate=False,
    )
    trainer.run()
    loss = trainer.state.output["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in net.parameters())


def test_with_precision_wraps_only_for_cpu_bfloat16():
    inferer = SimpleInferer()
    assert isinstance(with_precision(inferer, "cpu_bfloat16"), AutocastInferer)
    assert with_precision(inferer, "float32") is inferer
    assert with_precision(inferer, Precision.CUDA_AMP) is inferer  # MONAI's engines autocast on CUDA themselves
    with pytest.raises(ValueError, match="with_precision: 'precision' got 'bf16'"):
        with_precision(inferer, "bf16")


@pytest.mark.parametrize(
    "amp, device, expected",
    [
        (False, "cpu", Precision.FLOAT32),
        ("false", "cpu", Precision.FLOAT32),
        (True, "cpu", Precision.CPU_BFLOAT16),
        ("True", "cpu", Precision.CPU_BFLOAT16),
        ("auto", "cuda", Precision.CUDA_AMP),
        (True, "cuda:0", Precision.CUDA_AMP),
        ("false", "cuda", Precision.FLOAT32),
    ],
)
def test_resolve_precision(amp, device, expected):
    assert resolve_precision(amp, device) is expected


@pytest.mark.parametrize("flags, expected", [(("avx512_bf16",), Precision.CPU_BFLOAT16), ((), Precision.FLOAT32)])
def test_auto_on_a_cpu_follows_its_bfloat16_instructions_and_logs_them(monkeypatch, caplog, flags, expected):
    monkeypatch.setattr(precision_module, "cpu_bfloat16_flags", lambda: flags)
    with caplog.at_level("INFO", logger="monai_hybrid.engines.precision"):
        assert resolve_precision("auto", torch.device("cpu")) is expected
    assert str(expected) in caplog.text
    assert ("native bfloat16 (avx512_bf16)" if flags else "reports no native bfloat16") in caplog.text


@pytest.mark.parametrize(
    "text, flags",
    [
        ("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n", ("avx512_bf16", "amx_bf16")),
        ("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n", ()),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", ("bf16",)),  # aarch64
    ],
)
def test_cpu_bfloat16_flags_reads_cpuinfo(tmp_path, text, flags):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    assert precision_module.cpu_bfloat16_flags(str(cpuinfo)) == flags
    assert precision_module.cpu_bfloat16_flags(str(tmp_path / "absent")) == ()


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="Config key 'amp' must be auto, true or false, got 'fast'; pass e.g. --amp"):
        resolve_precision("fast", "cpu")
    with pytest.raises(ValueError, match="resolve_precision: 'device' must be a CPU or CUDA device, got 'meta'"):
        resolve_precision(True, "meta")
    with pytest.raises(ValueError, match="AutocastInferer: 'dtype' must be torch.bfloat16 or torch.float16"):
        AutocastInferer(SimpleInferer(), dtype=torch.float64)
    with pytest.raises(ValueError, match="AutocastInferer: 'inferer' must be a MONAI inferer, got int"):
        AutocastInferer(3)
    with pytest.raises(ValueError, match="AutocastInferer: 'device_type' must be 'cpu' or 'cuda', got 'mps'"):
        AutocastInferer(SimpleInferer(), device_type="mps")
