from __future__ import annotations

import json

import pytest

from monai_hybrid.cli import main


def test_phantom_command_writes_data_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(
        [
            "phantom",
            "--out",
            str(out),
            "--resolution",
            "6",
            "--source-subjects",
            "2,1,1",
            "--target-subjects",
            "1,1,1,1",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "site_c_flair" in text and "FLAIR" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sites"][0]["subjects"] == {"training": 2, "validation": 1, "test": 1, "unlabeled": 0}
    assert main(["verify", str(out / "site_a_t1w" / "datalist.json"), "--num-classes", "4"]) == 0


def test_phantom_command_rejects_bad_sizes(tmp_path):
    with pytest.raises(SystemExit, match="training,validation,test"):
        main(["phantom", "--out", str(tmp_path / "x"), "--source-subjects", "2,1"])
