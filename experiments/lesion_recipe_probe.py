"""Can a fine-tuning recipe learn the lesion class at the cpu preset's budget? One fine-tuning per variant, scored on
the lesion site's *validation* subjects (a recipe choice, never the test subjects).

Fine-tunes the grid's pretrained hybrid model (pretraining seed 0 of a benchmark folder that ran the ``lesions``
part's pretrainings) on 5 labelled FLAIR scans with lesions (fine-tuning seed 0, the cpu preset's 150 steps and
learning rate, the ``class_balanced`` overlay), once per variant, and prints the lesion metrics of the validation
subjects and the mean class probabilities at their lesion voxels:

    python experiments/lesion_recipe_probe.py --bench BENCH --variant zero          # the grown head, as the grid
    python experiments/lesion_recipe_probe.py --bench BENCH --variant reinit        # the whole mask head afresh
    python experiments/lesion_recipe_probe.py --bench BENCH --variant zero --batch-dice
    python experiments/lesion_recipe_probe.py --bench BENCH --variant zero --steps 600     # 4x the preset's steps
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import torch

from monai_hybrid.benchmark.executor import quiet_logs
from monai_hybrid.benchmark.plan import LESION_OVERLAYS, FinetuneStep
from monai_hybrid.benchmark.presets import PRESETS, Budget
from monai_hybrid.benchmark.runs import RunContext, finetune
from monai_hybrid.bundle import default_bundle_dir

logger = logging.getLogger("lesion_recipe_probe")

TISSUES = ("background", "csf", "grey_matter", "white_matter")
SITE = "site_c_flair_lesions"


def lesion_probabilities(run_dir: Path, datalist: Path, bundle: Path) -> list[list[float]]:
    """The mean probability of each class at the lesion voxels of each validation subject with lesions."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / "inference.yaml"), str(bundle / "configs" / "evaluate.yaml")])
    model = run_dir / "models" / "model.pt"
    parser.update({"bundle_root": str(run_dir), "model_path": str(model), "input": str(datalist)})
    parser.update({"datalist_key": "validation", "generate_demo_data": False, "output_dir": str(run_dir / "probe")})
    parser.parse()
    network, inferer = parser.get_parsed_content("network"), parser.get_parsed_content("inferer")
    preprocessing = parser.get_parsed_content("preprocessing")
    state = torch.load(model, map_location="cpu", weights_only=True)
    network.load_state_dict(state.get("model", state))
    network.eval()
    out = []
    for entry in json.loads(datalist.read_text())["validation"]:
        item = preprocessing(
            {"image": str(datalist.parent / entry["image"]), "label": str(datalist.parent / entry["label"])}
        )
        lesion = item["label"][0] == TISSUES.__len__()
        if not lesion.any():
            continue
        with torch.no_grad():
            prob = torch.softmax(inferer(item["image"][None], network), 1)[0]
        out.append([round(float(prob[k][lesion].mean()), 3) for k in range(prob.shape[0])])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bench", required=True, help="a benchmark folder with pretrain/hybrid_seed0 and phantom_lesions"
    )
    parser.add_argument("--variant", choices=("zero", "copy:white_matter", "reinit"), default="zero")
    parser.add_argument("--batch-dice", action="store_true", help="each class's Dice over the whole batch")
    parser.add_argument("--steps", type=int, default=PRESETS["cpu"].finetune_steps, help="fine-tuning steps")
    parser.add_argument(
        "--lesion-weight", type=float, default=1.0, help="the lesion class's weight in Dice-CE (the others 1)"
    )
    parser.add_argument("--lr", type=float, default=PRESETS["cpu"].finetune_learning_rate, help="learning rate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_logs()
    bench = Path(args.bench)
    datalist = bench / "phantom_lesions" / "site_c_flair" / "datalist.json"
    source = bench / "phantom" / "site_a_t1w" / "datalist.json"
    bundle = default_bundle_dir()
    preset = dataclasses.replace(PRESETS["cpu"], finetune_steps=args.steps)
    ctx = RunContext(
        bench, preset, bundle, str(source), {SITE: str(datalist)}, TISSUES, {}, {SITE: (*TISSUES, "lesion")}
    )
    preset = dataclasses.replace(preset, finetune_learning_rate=args.lr)
    overrides: dict = {"new_class_init": args.variant}
    kwargs: dict = {"batch": True} if args.batch_dice else {}
    if args.lesion_weight != 1.0:
        kwargs["weight"] = f"$torch.tensor([1.0, 1.0, 1.0, 1.0, {args.lesion_weight}])"
    if kwargs:
        overrides["loss#dice_ce_kwargs"] = kwargs
    name = f"probe/{args.variant}{'_batch' if args.batch_dice else ''}_{args.steps}"
    if args.lesion_weight != 1.0:
        name += f"_w{args.lesion_weight:g}"
    if args.lr != PRESETS["cpu"].finetune_learning_rate:
        name += f"_lr{args.lr:g}"
    name = name.replace(":", "_")
    step = FinetuneStep(
        name, "hybrid", Budget(5, "scans"), 0, "hybrid_seed0", site=SITE, eval_list="validation",
        overrides=overrides, overlays=LESION_OVERLAYS,
    )  # fmt: skip
    record = finetune(ctx, step)
    scores = {k: round(record[k], 3) for k in ("lesion_dice", "lesion_f1", "lesion_recall", "mean_fg_dice")}
    logger.info("%s: %s in %.0f s", name, scores, record["wall_s"])
    for probs in lesion_probabilities(ctx.run_dir(name), datalist, bundle):
        logger.info("  class probabilities at the lesion voxels of a validation subject: %s", probs)


if __name__ == "__main__":
    main()
