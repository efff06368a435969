"""monai-hybrid: hybrid diffusion pretraining for label-efficient segmentation, as MONAI bundles.

Training, fine-tuning, evaluation and inference run as MONAI bundle workflows: write the bundle with
`monai-hybrid bundle DIR`, then run `python -m monai.bundle run ...` from inside DIR (each config's header gives its
command). This command covers the rest: the bundle folder, the demo data, checking your data, and the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from monai_hybrid import __version__

__all__ = ["main", "build_parser"]

logger = logging.getLogger("monai_hybrid")


def _phantom(args: argparse.Namespace) -> int:
    from monai_hybrid.data.phantom import PhantomConfig, generate_phantom, summary_text

    config = PhantomConfig(seed=args.seed, resolution=args.resolution, lesions=args.lesions, raw_sites=args.raw_sites)
    if args.source_subjects or args.target_subjects:
        config = config.with_sizes(
            source=_sizes(args.source_subjects, "--source-subjects") if args.source_subjects else None,
            target=_sizes(args.target_subjects, "--target-subjects") if args.target_subjects else None,
        )
    summary = generate_phantom(
        args.out, config, workers=args.workers, progress=not args.quiet, overwrite=args.overwrite
    )
    sys.stdout.write(f"Phantom written to {args.out}\n{summary_text(summary)}\n")
    return 0


def _sizes(text: str, flag: str):
    from monai_hybrid.data.sites import ListSizes

    try:
        parts = [int(p) for p in text.split(",")]
        if len(parts) not in (3, 4):
            raise ValueError
    except ValueError:
        raise SystemExit(
            f"{flag} takes 3 or 4 comma-separated integers: training,validation,test[,unlabeled]; got {text!r}."
        ) from None
    return ListSizes(*parts)


def _verify(args: argparse.Namespace) -> int:
    from monai_hybrid.data.datalist import datalist_class_names
    from monai_hybrid.data.verify import DatalistError, verify_datalist

    num_classes = args.num_classes
    try:
        if num_classes is None:  # the datalist's own labels map, when it has one, defines the classes
            names = datalist_class_names(args.datalist)
            num_classes = len(names) if names else None
        report = verify_datalist(
            args.datalist, num_classes=num_classes, lists=args.lists, require=args.require, workers=args.workers
        )
    except (DatalistError, FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"{err}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(report.__dict__, indent=2, default=list) + "\n")
    else:
        sys.stdout.write(report.text() + "\n")
    return 0


def _written(write, message: str, errors: tuple[type[Exception], ...]) -> int:
    """Run ``write()`` (returns the folder written); print ``message`` formatted with it, or the error (exit 1)."""
    try:
        out = write()
    except errors as err:
        sys.stderr.write(f"{err}\n")
        return 1
    sys.stdout.write(message.format(out=out))
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from monai_hybrid.bundle import write_bundle

    return _written(
        lambda: write_bundle(args.dir, overwrite=args.overwrite),
        "Bundle written to {out}. Train from inside it, for example:\n"
        '  cd {out} && python -m monai.bundle run pretrain --config_file "$(monai-hybrid configs pretrain)"\n'
        "Every run's command is in the header of its config file and in docs/README.md.\n",
        (FileExistsError,),
    )


def _configs(args: argparse.Namespace) -> int:
    from monai_hybrid.stacks import config_file_arg

    try:
        sys.stdout.write(config_file_arg(args.run, args.overlays) + "\n")
    except ValueError as err:
        sys.stderr.write(f"monai-hybrid configs: {err}\n")
        return 2
    return 0


def _class_weights(pairs: Sequence[str]) -> dict[str, float]:
    """``NAME=WEIGHT`` pairs as a mapping (``--class-weights lesion=50``)."""
    out = {}
    for pair in pairs:
        name, sep, weight = pair.partition("=")
        try:
            out[name] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ValueError(f"--class-weights takes NAME=WEIGHT pairs, e.g. lesion=50; got {pair!r}.")
    return out


def _monailabel_app(args: argparse.Namespace) -> int:
    from monai_hybrid.bundle import write_monailabel_app

    return _written(
        lambda: write_monailabel_app(
            args.dir,
            models_from=args.models,
            class_names=args.class_names,
            class_weights=_class_weights(args.class_weights),
            train_overlays=args.train_overlays,
        ),
        "MONAI Label app written to {out}. In MONAI Label's environment (docs/how-to/monai-label.md):\n"
        "  python -m monailabel.main start_server --app {out} --studies STUDIES "
        "--conf models hybrid_brain_mri_segmentation\n",
        (FileNotFoundError, ValueError),
    )


def _benchmark(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from monai_hybrid.benchmark import (
        ABLATIONS,
        PRESETS,
        TUNING_REPORTS,
        BenchmarkRunner,
        bundle_preset,
        write_ablations_report,
        write_results_report,
        write_tuning_report,
    )
    from monai_hybrid.benchmark.presets import compute_point

    # the bundle preset measures the bundle it runs: another bundle folder's own settings
    try:
        preset = bundle_preset(args.bundle) if args.preset == "bundle" and args.bundle else PRESETS[args.preset]
    except (FileNotFoundError, KeyError, ValueError) as err:
        sys.stderr.write(f"monai-hybrid benchmark: --preset bundle --bundle {args.bundle}: {err}\n")
        return 2
    changes = {}
    tuning_seeds = None
    if args.seeds is not None and args.tune_finetuning:
        tuning_seeds = tuple(range(args.seeds))
    elif args.seeds is not None:
        changes["seeds"] = tuple(range(args.seeds))
    if args.methods:
        changes["methods"] = tuple(args.methods)
    if args.workers is not None:
        changes["workers"] = args.workers
    if args.fresh_seed is not None:
        changes["fresh_seed"] = None if args.fresh_seed < 0 else args.fresh_seed
    preset = dataclasses.replace(preset, **changes)
    try:
        preset = compute_point(preset, args.pretrain_steps_factor)
    except ValueError as err:
        sys.stderr.write(f"monai-hybrid benchmark: --pretrain-steps-factor: {err}\n")
        return 2
    try:
        runner = BenchmarkRunner(
            args.out,
            preset,
            bundle_dir=args.bundle,
            target_sites=args.target_sites,
            parts=args.parts,
            source_datalist=args.source_datalist,
            target_datalist=args.target_datalist,
            class_names=args.class_names,
            track=not args.no_mlflow,
            progress=not args.quiet,
            replicates=args.replicates,
        )
    except (FileNotFoundError, ValueError) as err:
        sys.stderr.write(f"monai-hybrid benchmark: {err}\n")
        return 2
    if args.variants and not args.tune_finetuning:
        sys.stderr.write("monai-hybrid benchmark: --variants chooses fine-tuning variants; add --tune-finetuning.\n")
        return 2
    runs = runner.run(
        ablations=args.ablations,
        tuning=args.tune,
        finetune_tuning=args.tune_finetuning,
        variants=args.variants,
        tuning_seeds=tuning_seeds,
    )
    out = Path(args.out)
    if runner.left:  # a part (--replicates): the report waits for the rest, so no table mixes seeds it lacks
        sys.stdout.write(
            f"Recorded {len(runs)} runs in {out / 'results.json'}; {len(runner.left)} planned runs of other "
            "pretraining seeds are not recorded yet: run their --replicates into the same --out, and the report "
            "comes with the last part.\n"
        )
        return 0
    if args.tune or args.tune_finetuning:
        kind = "finetuning" if args.tune_finetuning else "pretraining"
        table, chosen = write_tuning_report(runs, out, kind)
        sys.stdout.write(f"{table}\n\nChosen: {chosen}\nWritten: {out / TUNING_REPORTS[kind][1]}\n")
        return 0
    if args.ablations:
        table = write_ablations_report(runs, list(ABLATIONS), out)
        sys.stdout.write(f"{table}\n\nWritten: {out / 'ablations.md'}\n")
        return 0
    table = write_results_report(out / "results.json", out)
    sys.stdout.write(f"{table}\n\nWritten: {out / 'results.json'}, {out / 'results.md'} and the plots in {out}\n")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from monai_hybrid.benchmark import write_results_report
    from monai_hybrid.benchmark.expectation import WHAT_TO_EXPECT, expectation

    try:
        if args.expect is not None:  # before compute: a file without the markers is named first
            block = expectation(args.results, shown_as=args.results, reference=args.reference)
            for doc in args.expect:
                WHAT_TO_EXPECT.check(doc)
        table = write_results_report(args.results, args.out, title=args.title, reference=args.reference)
        if args.expect is not None:
            Path(args.out, "what_to_expect.md").write_text(block + "\n")
            for doc in args.expect:
                WHAT_TO_EXPECT.write(block, doc)
    except (FileNotFoundError, KeyError, ValueError) as err:
        sys.stderr.write(f"{err}\n")
        return 1
    sys.stdout.write(f"{table}\n\nWritten: {Path(args.out) / 'results.md'} and the plots in {args.out}\n")
    if args.expect is not None:
        sys.stdout.write(f"What to expect: {Path(args.out) / 'what_to_expect.md'}, embedded in {args.expect}\n")
    return 0


def _scaling(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from monai_hybrid.benchmark.scaling import measure_scaling
    from monai_hybrid.benchmark.scaling_report import SCALING, scaling_block, write_scaling_report

    try:
        for doc in args.embed:  # before compute: a file without the markers is named first
            SCALING.check(doc)
        measured = measure_scaling(args.results, reference=args.reference, baseline=args.baseline)
        write_scaling_report(measured, args.out)
        for doc in args.embed:
            figure = os.path.relpath(Path(args.out) / "scaling.png", Path(doc).parent)
            SCALING.write(scaling_block(measured, figure), doc)
    except (FileNotFoundError, KeyError, ValueError) as err:
        sys.stderr.write(f"{err}\n")
        return 1
    sentences = "\n".join(measured.sentences.values())
    sys.stdout.write(f"{sentences}\n\nWritten: {Path(args.out) / 'scaling.md'} and scaling.png\n")
    if args.embed:
        sys.stdout.write(f"The figure, the Dice differences and the sentences embedded in {args.embed}\n")
    return 0


def _add_scaling(sub: Any) -> None:
    """The ``scaling`` subcommand."""
    s = sub.add_parser(
        "scaling",
        help="the default recipe's gap to a baseline against pretraining compute, from the results.json of several "
        "compute points (benchmark --pretrain-steps-factor)",
    )
    s.add_argument("results", nargs="+", help="the results.json of each compute point (at least two)")
    s.add_argument("--out", required=True, help="folder of scaling.md and scaling.png")
    s.add_argument("--reference", default="hybrid", help="the default recipe's row (default: hybrid)")
    s.add_argument("--baseline", default="supervised_aug", help="the row it is compared with (default: supervised_aug)")
    s.add_argument(
        "--embed",
        nargs="+",
        default=[],
        metavar="MARKDOWN",
        help="also put the figure, the Dice difference per point and the sentences between the scaling markers of "
        "each MARKDOWN file (name the results as the page should: paths relative to the repository root)",
    )
    s.set_defaults(func=_scaling)


def _add_bundle(sub: Any) -> None:
    """The ``bundle`` subcommand, on ``sub`` (``build_parser``'s subparsers)."""
    d = sub.add_parser(
        "bundle",
        help="write the MONAI bundle (configs, docs) to a folder, ready for python -m monai.bundle run",
        description="Write the hybrid_brain_mri_segmentation bundle shipped in this package to DIR: configs/, "
        "docs/README.md, LICENSE and an empty models/. Then cd DIR and run its workflows with "
        "python -m monai.bundle run.",
    )
    d.add_argument("dir", help="the bundle folder to write")
    d.add_argument("--overwrite", action="store_true", help="replace the configs and docs of a bundle in DIR")
    d.set_defaults(func=_bundle)


def _add_configs(sub: Any) -> None:
    """The ``configs`` subcommand."""
    from monai_hybrid.stacks import OVERLAYS, RUNS

    c = sub.add_parser(
        "configs",
        help="print the --config_file list of a bundle run with overlays",
        description="Print the value of --config_file for `python -m monai.bundle run RUN` from inside a bundle "
        "folder: the run's configs, then the overlays named, in the order they compose. For example:  "
        'python -m monai.bundle run pretrain --config_file "$(monai-hybrid configs pretrain synthesis 3d)"',
    )
    c.add_argument("run", choices=sorted(RUNS), help="the run id")
    c.add_argument("overlays", nargs="*", metavar="OVERLAY", help=f"overlays to add: {', '.join(OVERLAYS)}")
    c.set_defaults(func=_configs)


def _add_monailabel_app(sub: Any) -> None:
    """The ``monailabel_app`` subcommand."""
    m = sub.add_parser(
        "monailabel-app",
        help="write a MONAI Label app: serve the bundle, fine-tune it from the server, choose the next scan",
    )
    m.add_argument("dir", help="the app folder to write")
    m.add_argument("--models", default=None, help="models/ folder of a trained bundle to copy into the app's bundle")
    m.add_argument(
        "--class-names",
        nargs="+",
        default=None,
        metavar="NAME",
        help="the classes the app labels, background first (default: the bundle's); a class appended to the model's, "
        "for example: background csf grey_matter white_matter lesion, grows the mask head at the first Train",
    )
    m.add_argument(
        "--class-weights",
        nargs="+",
        default=(),
        metavar="NAME=WEIGHT",
        help="the Train's Dice-CE weight of these classes (the others 1), for a rare class: lesion=50",
    )
    m.add_argument(
        "--train-overlays",
        nargs="+",
        default=(),
        metavar="OVERLAY",
        help="bundle overlays composed into the Train's configs/train.yaml, for a rare class: class_balanced",
    )
    m.set_defaults(func=_monailabel_app)


def _add_phantom(sub: Any) -> None:
    """The ``phantom`` subcommand."""
    p = sub.add_parser(
        "phantom",
        help="generate the multi-site brain MRI demo data (NIfTI + datalists); the bundle does it on first use",
    )
    p.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    p.add_argument("--resolution", type=float, default=2.0, help="base voxel size in mm (2; 3 for fast CPU runs)")
    p.add_argument(
        "--lesions",
        action="store_true",
        help="add white-matter hyperintensities (class 4, 'lesion') to the target sites (docs/phantom.md, Lesions)",
    )
    p.add_argument(
        "--raw-sites",
        action="store_true",
        help="also write raw-looking twins of the target sites (<site>_raw: head, air with noise, scanner units)",
    )
    p.add_argument("--source-subjects", help="source-site list sizes: training,validation,test[,unlabeled]")
    p.add_argument("--target-subjects", help="target-site list sizes: training,validation,test[,unlabeled]")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    p.add_argument("--overwrite", action="store_true", help="replace a phantom already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_phantom)


def _add_verify(sub: Any) -> None:
    """The ``verify`` subcommand."""
    v = sub.add_parser(
        "verify", help="check your datalist and its files (shapes, spacing, label values) before training"
    )
    v.add_argument("datalist", help="MSD-style datalist JSON")
    v.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes including background (default: from the datalist's 'labels' map, when it has one)",
    )
    v.add_argument("--lists", nargs="+", default=None, help="lists to check (default: all present)")
    v.add_argument("--require", nargs="+", default=["training"], help="lists that must be present and non-empty")
    v.add_argument("--workers", type=int, default=4, help="threads reading files")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=_verify)


def _add_benchmark(sub: Any) -> None:
    """The ``benchmark`` subcommand."""
    from monai_hybrid.benchmark.presets import PRESETS
    from monai_hybrid.benchmark.rows import FINETUNE_TUNING, METHODS

    b = sub.add_parser(
        "benchmark",
        help="label-efficiency benchmark: every pretraining mode fine-tuned on k target labels, scored on test scans",
    )
    b.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="cpu",
        help="; ".join(
            f"{name}: {p.resolution:g} mm, {p.pretrain_steps} pretraining steps, {len(p.seeds)} seeds"
            for name, p in sorted(PRESETS.items())
        ),
    )
    b.add_argument("--out", default="benchmark_output", help="output folder (a rerun resumes)")
    b.add_argument(
        "--target-sites",
        nargs="+",
        default=None,
        help="phantom target sites of the grid's main part (default: the preset's; the other parts keep theirs)",
    )
    b.add_argument(
        "--parts",
        nargs="+",
        default=None,
        help="grid parts to run (default: all of the preset's; 'main' is the preset's sites x budgets x methods)",
    )
    b.add_argument(
        "--fresh-seed",
        type=int,
        default=None,
        help="phantom seed of the fresh test cohort that every model is also scored on (default: the preset's; "
        "-1: none)",
    )
    b.add_argument("--source-datalist", default=None, help="your labelled source datalist instead of the phantom")
    b.add_argument("--target-datalist", default=None, help="your target datalist instead of the phantom")
    b.add_argument(
        "--class-names", nargs="+", default=None, help="classes, background first (default: the datalists' labels)"
    )
    b.add_argument(
        "--bundle",
        default=None,
        help="bundle folder (default: the one shipped in the package); with --preset bundle, its configs' settings",
    )
    b.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (default: the preset's; with --tune-finetuning: fine-tuning seeds of each variant, "
        "default 1)",
    )
    b.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=None, help="rows to run (default: the preset's)"
    )
    what = b.add_mutually_exclusive_group()  # the grid, or one of these instead
    what.add_argument(
        "--ablations",
        action="store_true",
        help="run the ablations of the hybrid defaults (on validation subjects) instead of the grid",
    )
    what.add_argument(
        "--tune",
        action="store_true",
        help="equal care: every row's pretraining variants (the same for each) on the validation subjects of every "
        "target site, in the grid's folder; writes tuning.md",
    )
    what.add_argument(
        "--tune-finetuning",
        action="store_true",
        help=f"equal care for fine-tuning: every row's fine-tuning variants ({', '.join(FINETUNE_TUNING)}; the same "
        "for each) from its grid pretraining, on the validation subjects of every target site; writes "
        "tuning_finetuning.md",
    )
    b.add_argument(
        "--variants",
        nargs="+",
        choices=list(FINETUNE_TUNING),
        default=None,
        metavar="VARIANT",
        help="with --tune-finetuning: only these fine-tuning variants (default: all)",
    )
    b.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once, each in its own process (default: the preset's; cpu: 2)",
    )
    b.add_argument(
        "--pretrain-steps-factor",
        type=int,
        default=1,
        metavar="K",
        help="a point of the compute axis: pretrain K times the preset's steps (cosine schedule to the end, as many "
        "validations), everything else fixed; the preset is named <preset>_x<K> (use its own --out)",
    )
    b.add_argument(
        "--replicates",
        nargs="+",
        type=int,
        default=None,
        metavar="SEED",
        help="run only the runs of these pretraining seeds (their fine-tuning, zero-shot and oracle runs with them): "
        "a benchmark longer than one sitting runs in parts into one --out; the report comes when all are recorded",
    )
    b.add_argument("--no-mlflow", action="store_true", help="do not log runs to MLflow")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_benchmark)


def _add_report(sub: Any) -> None:
    """The ``report`` subcommand."""
    r = sub.add_parser(
        "report",
        help="write a benchmark's report (tables, intervals, verdicts, plots) anew from its results.json",
    )
    r.add_argument("results", help="a benchmark's results.json (also the copies stored in docs/results/)")
    r.add_argument("--out", required=True, help="folder of the report")
    r.add_argument("--title", default=None, help="title (default: the preset and its pretraining seeds)")
    r.add_argument(
        "--reference",
        default=None,
        help="the row every other row is compared with (default: the preset's reference, the default recipe)",
    )
    r.add_argument(
        "--expect",
        nargs="*",
        default=None,
        metavar="MARKDOWN",
        help="also write what_to_expect.md (the default recipe against supervised_aug per budget, fresh cohort, "
        "with the recommendation) and put it between the what-to-expect markers of each MARKDOWN file "
        "(README.md docs/results.md)",
    )
    r.set_defaults(func=_report)


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="monai-hybrid", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version",
        action="version",
        version=f"monai-hybrid {__version__} (ships the bundle hybrid_brain_mri_segmentation {__version__})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_bundle(sub)
    _add_configs(sub)
    _add_monailabel_app(sub)
    _add_phantom(sub)
    _add_verify(sub)
    _add_benchmark(sub)
    _add_report(sub)
    _add_scaling(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``monai-hybrid`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
