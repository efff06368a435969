"""The "what to expect" block: generated from a stored benchmark, its words follow from the intervals, and the copies
on the first screen of README.md and docs/results.md (and in the bundle's README) are what the generator makes of the
results they name."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from monai_hybrid.benchmark import PRESETS
from monai_hybrid.benchmark.expectation import BEGIN, END, embed, embedded, expectation
from monai_hybrid.cli import main

ROOT = Path(__file__).resolve().parents[2]
MACHINE = {"cpu": "Test CPU", "cores": 2, "gpu": None, "torch": "2.13.0"}


def _results(tmp_path: Path, hybrid_gain: float, machines=(MACHINE,)) -> Path:
    """A bundle-preset results.json: hybrid and supervised_aug at its budgets on FLAIR, 4 pretraining seeds; hybrid's
    fresh-cohort Dice is supervised_aug's plus ``hybrid_gain`` (plus a seed-dependent wobble)."""
    preset = PRESETS["bundle"]
    runs = []
    for budget in preset.budgets:
        for seed in range(4):
            for method, gain in (("hybrid", hybrid_gain), ("supervised_aug", 0.0)):
                dice = 0.6 + 0.01 * seed + gain + (0.004 if seed % 2 else -0.004) * (method == "hybrid")
                scores = {"mean_fg_dice": dice, "mean_hd95": 20.0 - 10 * gain, "fp_far_ml": 5.0}
                runs.append(
                    {
                        "key": f"{method}/site_c_flair/{budget.key}/seed{seed}",
                        "kind": "finetune",
                        "method": method,
                        "budget": budget.name,
                        "site": "site_c_flair",
                        "seed": seed,
                        "replicate": seed,
                        "eval_list": "test",
                        **scores,
                        "fresh": scores,
                        "machine": machines[seed % len(machines)],
                        "precision": "cpu_bfloat16",
                    }
                )
    fields = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)}
    saved = {"preset": json.loads(json.dumps(fields, default=lambda o: o.__dict__)), "class_names": ["b", "a"]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**saved, "runs": runs}))
    return path


def test_level_everywhere_says_either_serves_and_how_to_use_the_baseline(tmp_path):
    block = expectation(_results(tmp_path, 0.0))
    assert "the `bundle` preset: 2 mm, crops 96 x 96, channels 16-32-64-64, batch 16" in block
    assert "the bundle configs' own settings; cpu_bfloat16" in block and "machine: Test CPU (2 cores)" in block
    rows = [line for line in block.splitlines() if line.startswith("| 1 ") or line.startswith("| 4 ")]
    assert [r.split(" | ")[0] for r in rows] == ["| 1 slice", "| 4 slices", "| 1 scan"]
    assert all(r.count("**level**") == 3 for r in rows)
    assert block.splitlines()[-1].startswith("**No difference in Dice detected**")
    assert "the widest, [" in block.splitlines()[-1]
    assert block.splitlines()[-1].endswith(
        "nothing measured here favours either, so either serves: the bundle keeps hybrid as its default; for "
        'supervised_aug, pretrain with `--config_file "$(monai-hybrid configs pretrain intensity_augmentation)" '
        "--method#mode supervised`."
    )


def test_a_clear_gain_says_use_the_default_and_a_loss_names_the_baseline(tmp_path):
    block = expectation(_results(tmp_path, 0.05))
    assert "**ahead**" in block and block.splitlines()[-1].startswith("**Use the default (hybrid)**")
    block = expectation(_results(tmp_path, -0.05))
    assert block.splitlines()[-1].startswith("**supervised_aug is ahead on Dice at 1 slice, 4 slices, 1 scan**")


def test_runs_of_two_machines_are_refused(tmp_path):
    other = {**MACHINE, "cpu": "Other CPU"}
    with pytest.raises(ValueError, match="runs of 2 machines"):
        expectation(_results(tmp_path, 0.0, machines=(MACHINE, other)))


def test_embed_replaces_only_the_block_and_needs_the_markers(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(f"# Title\n\n{BEGIN}\nold\n{END}\n\nrest\n")
    assert embed("new block", doc) and embedded(doc) == "new block"
    assert doc.read_text() == f"# Title\n\n{BEGIN}\nnew block\n{END}\n\nrest\n"
    assert not embed("new block", doc)  # unchanged
    (tmp_path / "plain.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="must hold the line"):
        embed("x", tmp_path / "plain.md")


def test_report_expect_writes_and_embeds(tmp_path, capsys):
    results = _results(tmp_path, 0.0)
    doc = tmp_path / "README.md"
    doc.write_text(f"{BEGIN}\n{END}\n")
    assert main(["report", str(results), "--out", str(tmp_path / "report"), "--expect", str(doc)]) == 0
    assert embedded(doc) == (tmp_path / "report" / "what_to_expect.md").read_text().strip()
    assert main(["report", str(results), "--out", str(tmp_path / "r2"), "--expect", str(tmp_path / "no.md")]) == 1
    assert "No file" in capsys.readouterr().err and not (tmp_path / "r2").exists()


@pytest.mark.parametrize(
    "doc, first_screen",
    [("README.md", True), ("docs/results.md", True), ("bundles/hybrid_brain_mri_segmentation/docs/README.md", False)],
)
def test_the_first_screen_is_what_the_generator_makes_of_the_stored_results(doc, first_screen):
    block = embedded(ROOT / doc)
    assert block is not None, f"{doc} has no what-to-expect block"
    if first_screen:
        assert (ROOT / doc).read_text().index(BEGIN) < 4000, f"{doc}: the block is not on the first screen"
    named = re.search(r"raw results `([^`]+)`", block)
    assert named, f"{doc}: the block names no results file"
    assert block == expectation(ROOT / named.group(1), shown_as=named.group(1))


def test_results_without_both_rows_at_a_budget_are_refused(tmp_path):
    path = _results(tmp_path, 0.0)
    saved = json.loads(path.read_text())
    saved["runs"] = [r for r in saved["runs"] if r["method"] == "hybrid"]  # a part that has run one row so far
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="no target site where hybrid and supervised_aug were both fine-tuned"):
        expectation(path)


def test_a_bundle_measurement_says_which_shipped_defaults_changed_since(tmp_path):
    """The first screen's figures come from the configs of their day: a default changed later (the pretraining
    learning rate chosen by tuning) is named with both values, never passed off as the shipped model's."""
    import dataclasses

    from monai_hybrid.benchmark.expectation import _against_shipped
    from monai_hybrid.benchmark.presets import PRESETS, bundle_preset, rate_label

    shipped = bundle_preset()
    assert _against_shipped(shipped) == "the bundle configs' own settings"
    older = dataclasses.replace(shipped, learning_rate=shipped.learning_rate * 2, pretrain_epochs=10)
    said = _against_shipped(older)
    assert (
        "pretrain `learning_rate` now 5e-4, measured at 1e-3" in said
        and "pretrain `epochs` now 20, measured at 10" in said
    )
    assert _against_shipped(PRESETS["cpu"]) == "not the shipped model"
    # and the first screen's header says it: the stored results, as if measured at twice the shipped rate
    saved = json.loads((ROOT / "docs" / "results" / "benchmark_bundle.json").read_text())
    saved["preset"]["learning_rate"] = shipped.learning_rate * 2
    (tmp_path / "results.json").write_text(json.dumps(saved))
    header = expectation(tmp_path / "results.json").splitlines()[0]
    was, now = rate_label(shipped.learning_rate * 2), rate_label(shipped.learning_rate)
    assert f"1000 pretraining steps at learning rate {was}" in header
    assert f"the shipped configs have changed since: pretrain `learning_rate` now {now}, measured at {was};" in header
