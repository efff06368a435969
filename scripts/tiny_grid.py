"""A tiny benchmark grid whose metrics two versions of the code must reproduce exactly (docs/design-notes.md).

    python scripts/tiny_grid.py OUT PHANTOM                          # this checkout
    PYTHONPATH=/path/to/other/checkout python scripts/tiny_grid.py OUT2 PHANTOM

Runs hybrid, supervised, scratch and semi-supervised rows (1 scan, 2 slices, one seed) with one thread, with
whichever monai_hybrid is first on sys.path, and prints its path and every run's metrics as one JSON line; the
phantom (6 mm) is made on first use.
"""

import json
import sys
from pathlib import Path

import torch

import monai_hybrid
from monai_hybrid.benchmark import BenchmarkPreset, BenchmarkRunner, Budget
from monai_hybrid.data.phantom import PhantomConfig, generate_phantom
from monai_hybrid.data.sites import ListSizes

torch.set_num_threads(1)
out = Path(sys.argv[1])
phantom = Path(sys.argv[2])
if not phantom.exists():
    cfg = PhantomConfig(seed=0, resolution=6.0).with_sizes(source=ListSizes(3, 2, 1, 0), target=ListSizes(3, 1, 2, 1))
    generate_phantom(phantom, cfg, workers=1, progress=False)
tiny = BenchmarkPreset(
    name="tiny",
    resolution=6.0,
    roi=(32, 32),
    channels=(8, 16),
    attention_levels=(False, True),
    batch_volumes=2,
    samples_per_volume=2,
    pretrain_steps=8,
    finetune_steps=4,
    finetune_samples_per_volume=1,
    long_factor=2,
    budgets=(Budget(1, "scans"), Budget(2, "slices")),
    seeds=(0,),
    methods=("hybrid", "supervised", "scratch", "hybrid_semi"),
    num_head_channels=8,
    norm_num_groups=8,
)
runs = BenchmarkRunner(
    out,
    tiny,
    source_datalist=phantom / "site_a_t1w" / "datalist.json",
    target_datalist=phantom / "site_c_flair" / "datalist.json",
    track=False,
    progress=False,
).run()
keep = {
    r["key"]: {k: v for k, v in sorted(r.items()) if isinstance(v, float) and not k.endswith("_s")}
    | ({"src": r["source_val"]} if "source_val" in r else {})
    for r in runs
}
print(monai_hybrid.__file__)
print(json.dumps(keep, sort_keys=True))
