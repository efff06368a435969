"""A tiny benchmark grid whose metrics two versions of the code must reproduce exactly (docs/design-notes.md).

    python experiments/tiny_grid.py OUT PHANTOM                          # this checkout
    PYTHONPATH=/path/to/other/checkout python experiments/tiny_grid.py OUT2 PHANTOM

Runs hybrid, supervised (plain, with intensity augmentation, with synthesis), scratch and semi-supervised rows
(1 scan, 2 slices, one seed; the ``tiny`` preset) with one thread, with whichever monai_hybrid is first on sys.path,
and prints its path and every run's metrics as one JSON line; the phantom (6 mm) is made on first use.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

SITES = {"source": "site_a_t1w", "target": "site_c_flair"}


def main(out: Path, phantom: Path) -> None:
    import torch

    import monai_hybrid
    from monai_hybrid.benchmark import PRESETS, BenchmarkRunner, Budget
    from monai_hybrid.data.phantom import PhantomConfig, generate_phantom
    from monai_hybrid.data.sites import ListSizes

    torch.set_num_threads(1)
    if not phantom.exists():
        sizes = {"source": ListSizes(3, 2, 1, 0), "target": ListSizes(3, 1, 2, 1)}
        generate_phantom(phantom, PhantomConfig(seed=0, resolution=6.0).with_sizes(**sizes), workers=1, progress=False)
    preset = dataclasses.replace(
        PRESETS["tiny"],
        pretrain_steps=8,
        finetune_steps=4,
        budgets=(Budget(1, "scans"), Budget(2, "slices")),
        methods=("hybrid", "supervised", "supervised_aug", "synth", "scratch", "hybrid_semi"),
    )
    lists = {f"{role}_datalist": phantom / site / "datalist.json" for role, site in SITES.items()}
    runs = BenchmarkRunner(out, preset, track=False, progress=False, **lists).run()
    metrics = {
        r["key"]: {k: v for k, v in sorted(r.items()) if isinstance(v, float) and not k.endswith("_s")}
        | ({"src": r["source_val"]} if "source_val" in r else {})
        for r in runs
    }
    sys.stdout.write(f"{monai_hybrid.__file__}\n{json.dumps(metrics, sort_keys=True)}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
