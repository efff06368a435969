"""Quality of image-mask pairs sampled from a hybrid model: consistency, realism and usefulness.

Not a test: it trains and samples, and prints (and writes) what it measured. Every step is a run of the bundle's
own configs (``sample.yaml``, ``finetune.yaml``, ``evaluate.yaml``), as a user would run them.

1. consistency: Dice between each sampled mask and a separately trained segmenter's prediction on the sampled image;
2. realism: per-tissue intensity statistics of the sampled images (under their masks) against real 2D crops of the
   same site (under their labels), drawn by the bundle's own training transforms; and a montage PNG;
3. usefulness (``--usefulness``): on the target site, hybrid semi-supervised fine-tuning on k labelled scans and the
   unlabelled scans gives a model of the target's images; pairs sampled from it are added to the same k scans, and
   fine-tuning from the pretrained model with and without them is scored on the target's test subjects.

Usage, from the repository root, after pretraining a hybrid model over every noise level
(``--method#timestep_distribution uniform``: ``sample`` refuses the default ``t < 250`` model) and a supervised
model::

    python experiments/measure_sample_quality.py --hybrid-root runs/hybrid \
        --segmenter runs/sup/models/pretrain/model_final.pt --out runs/sample_quality --usefulness --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from monai_hybrid.benchmark.runs import EVALUATE_CONFIGS, FINETUNE_CONFIGS, PRETRAIN_CONFIGS
from monai_hybrid.bundle import default_bundle_dir, run_bundle
from monai_hybrid.data import load_list
from monai_hybrid.networks import transfer_weights
from monai_hybrid.sample_quality import compare_statistics, consistency_dice, save_pairs_montage, tissue_statistics
from monai_hybrid.stacks import config_stack

logger = logging.getLogger("sample_quality")


def parser_for(bundle: Path, configs: list[str], root: Path, overrides: dict):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / c) for c in configs])
    parser.read_meta(str(bundle / "configs" / "metadata.json"))
    parser.update({"bundle_root": str(root), **overrides})
    return parser


def read_pairs(datalist: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled pairs as (N, 1, H, W) images and labels."""
    entries = load_list(datalist, "training")
    images = np.stack([np.asarray(nib.load(e["image"]).dataobj)[..., 0] for e in entries])[:, None]
    labels = np.stack([np.asarray(nib.load(e["label"]).dataobj)[..., 0] for e in entries])[:, None]
    return torch.as_tensor(images, dtype=torch.float32), torch.as_tensor(labels.astype(np.int64))


def real_crops(parser, datalist: str, key: str, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` 2D crops of real scans through the bundle's training transforms (no augmentation)."""
    from monai.transforms import Compose

    transforms = Compose(
        parser.get_parsed_content("train#deterministic_transforms")
        + parser.get_parsed_content("train#crop")
        + parser.get_parsed_content("train#finish")
    )
    transforms.set_random_state(seed=seed)
    cases = load_list(datalist, key)
    images, labels = [], []
    i = 0
    while len(images) < count:
        for crop in transforms(cases[i % len(cases)]):
            images.append(crop["image"].as_tensor() if hasattr(crop["image"], "as_tensor") else crop["image"])
            labels.append(crop["label"])
        i += 1
    return torch.stack(images[:count]).float(), torch.stack([torch.as_tensor(x) for x in labels[:count]]).long()


def sample(bundle: Path, root: Path, checkpoint: Path, out: Path, args, overrides: dict) -> tuple[torch.Tensor, ...]:
    start = time.perf_counter()
    run_bundle(
        "sample",
        [*PRETRAIN_CONFIGS, "sample.yaml"],
        root,
        bundle,
        **{
            **overrides,
            "sample_checkpoint": str(checkpoint),
            "sample_dir": str(out),
            "num_samples": args.num_samples,
            "sample_batch_size": args.batch_size,
            "num_inference_steps": args.steps,
            "sampler": args.sampler,
            "sample_seed": args.sample_seed,
        },
    )
    logger.info("sampled %d pairs from %s in %.0f s", args.num_samples, checkpoint, time.perf_counter() - start)
    return read_pairs(out / "datalist.json")


def quality(bundle: Path, args, overrides: dict) -> dict:
    """Consistency and realism of pairs sampled from the pretrained hybrid model, against its source site."""
    root = Path(args.hybrid_root).resolve()
    out = Path(args.out).resolve()
    parser = parser_for(bundle, list(PRETRAIN_CONFIGS), root, overrides)
    class_names = list(parser.get_parsed_content("class_names"))
    images, labels = sample(
        bundle, root, root / "models" / "pretrain" / "model_final.pt", out / "samples", args, overrides
    )
    # consistency: a separately trained segmenter on the sampled images (t = 0, mask head)
    segmenter = parser.get_parsed_content("network_def", instantiate=True)
    transfer_weights(segmenter, args.segmenter)
    segmenter.eval()
    with torch.no_grad():
        predicted = torch.cat(
            [
                segmenter(images[i : i + 16], output="mask").argmax(1, keepdim=True)
                for i in range(0, images.shape[0], 16)
            ]
        )
    dice = consistency_dice(labels, predicted, len(class_names))
    per_class = {n: float(np.nanmean(dice[:, k].numpy())) for k, n in enumerate(class_names[1:])}
    # realism: crops of the source site's validation subjects through the training transforms
    datalist = parser.get_parsed_content("prepared_datalist")
    real_images, real_labels = real_crops(parser, datalist, "validation", images.shape[0], args.sample_seed)
    stats_sampled = tissue_statistics(images, labels, class_names)
    stats_real = tissue_statistics(real_images, real_labels, class_names)
    save_pairs_montage(
        [("sampled", images, labels), ("real", real_images, real_labels)], str(out / "samples_vs_real.png"), class_names
    )
    return {
        "checkpoint": str(root / "models" / "pretrain" / "model_final.pt"),
        "segmenter": str(args.segmenter),
        "num_samples": int(images.shape[0]),
        "sampler": args.sampler,
        "steps": args.steps,
        "consistency_dice": per_class,
        "consistency_mean_fg_dice": float(np.nanmean(dice.numpy())),
        "tissue_statistics": {"sampled": stats_sampled, "real": stats_real},
        "table": compare_statistics(stats_sampled, stats_real),
    }


def usefulness(bundle: Path, args, overrides: dict) -> list[dict]:
    """Fine-tuning on k target scans with and without pairs sampled from a semi-supervised hybrid model."""
    pretrained = Path(args.hybrid_root).resolve() / "models" / "pretrain" / "model_final.pt"
    out = Path(args.out).resolve()
    rows = []
    for seed in args.seeds:
        common = {
            **overrides,
            "pretrained_checkpoint": str(pretrained),
            "num_labeled": args.num_labeled,
            "selection_seed": seed,
            "target_site": args.target_site,
        }
        semi = out / f"semi_seed{seed}"
        if not (semi / "models" / "model.pt").is_file():
            run_bundle(
                "finetune",
                config_stack("finetune", ["unlabeled"]),  # the target's unlabelled scans denoised too
                semi,
                bundle,
                **{
                    **common,
                    "unlabeled_weight": args.unlabeled_weight,
                    "dataset_dir": str(Path(args.hybrid_root).resolve() / "demo_data"),
                },
            )
        sample(bundle, semi, semi / "models" / "model.pt", semi / "samples", args, overrides)
        target_parser = parser_for(
            bundle,
            list(FINETUNE_CONFIGS),
            semi,
            {**common, "dataset_dir": str(Path(args.hybrid_root).resolve() / "demo_data")},
        )
        datalist = target_parser.get_parsed_content("prepared_datalist")
        for variant, extra in (
            ("k scans", {}),
            (
                "k scans + sampled pairs",
                {"sampled_datalist": str(semi / "samples" / "datalist.json"), "sampled_share": args.sampled_share},
            ),
        ):
            root = out / f"{'with' if extra else 'without'}_pairs_seed{seed}"
            configs = list(FINETUNE_CONFIGS) + (["finetune_with_samples.yaml"] if extra else [])
            start = time.perf_counter()
            run_bundle(
                "finetune",
                configs,
                root,
                bundle,
                **{**common, **extra, "dataset_dir": str(Path(args.hybrid_root).resolve() / "demo_data")},
            )
            run_bundle(
                "run",
                list(EVALUATE_CONFIGS),
                root,
                bundle,
                **{  # evaluation reads the model's settings from model_settings.json: no model overrides
                    "input": datalist,
                    "datalist_key": "test",
                    "output_dir": str(root / "eval"),
                },
            )
            summary = json.loads((root / "eval" / "metrics.json").read_text())["summary"]
            rows.append(
                {
                    "seed": seed,
                    "variant": variant,
                    "wall_s": time.perf_counter() - start,
                    **{k: v["mean"] for k, v in summary.items()},
                }
            )
            logger.info("seed %d, %s: mean foreground Dice %.4f", seed, variant, rows[-1]["mean_fg_dice"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hybrid-root", required=True, help="bundle_root of a hybrid pretraining run (models/pretrain/)")
    p.add_argument("--segmenter", required=True, help="checkpoint of a separately trained segmenter, same network")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--bundle", default=None, help="bundle folder (default: the one in this checkout)")
    p.add_argument("--num-samples", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=50, help="reverse steps")
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default="ddim")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--usefulness", action="store_true", help="also run the fine-tuning experiment")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="selection seeds of the experiment")
    p.add_argument("--num-labeled", type=int, default=1)
    p.add_argument("--target-site", default="site_c_flair")
    p.add_argument("--unlabeled-weight", type=float, default=0.5)
    p.add_argument("--sampled-share", type=float, default=0.5)
    p.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="bundle overrides used by the training runs, e.g. 'network_args#channels=[8,16]'",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    overrides = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.override)}
    bundle = Path(args.bundle) if args.bundle else default_bundle_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"quality": quality(bundle, args, overrides)}
    (out / "sample_quality.json").write_text(json.dumps(report, indent=2))
    q = report["quality"]
    sys.stdout.write(
        f"consistency (Dice of sampled masks against the segmenter, per class): "
        f"{json.dumps({k: round(v, 4) for k, v in q['consistency_dice'].items()})}, mean "
        f"{q['consistency_mean_fg_dice']:.4f}\n\nrealism (training intensity range [-1, 1]):\n\n"
        f"{q['table']}\n\nmontage: {out / 'samples_vs_real.png'}\n"
    )
    if args.usefulness:
        report["usefulness"] = usefulness(bundle, args, overrides)
        (out / "sample_quality.json").write_text(json.dumps(report, indent=2))
        sys.stdout.write(
            "\n| seed | fine-tuned on | mean foreground Dice | CSF | grey matter | white matter |\n"
            "|---|---|---|---|---|---|\n"
        )
        for r in report["usefulness"]:
            sys.stdout.write(
                f"| {r['seed']} | {r['variant']} | {r['mean_fg_dice']:.4f} | {r['dice_csf']:.4f} | "
                f"{r['dice_grey_matter']:.4f} | {r['dice_white_matter']:.4f} |\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
