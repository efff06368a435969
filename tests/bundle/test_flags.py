"""Yes/no config keys given on the command line as strings (``--resume false``) mean what they say."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser

from monai_hybrid.bundle import flag
from tests.bundle.conftest import BUNDLE


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("False", False),
        ("no", False),
        (" YES ", True),
        ("0", False),
    ],
)
def test_flag_reads_bools_and_their_spellings(value, expected):
    assert flag(value, "resume") is expected


@pytest.mark.parametrize("value", ["ture", "", 2, None, 0.5])
def test_flag_names_the_key_in_its_error(value):
    with pytest.raises(ValueError, match=r"Config key 'progress_bar' must be true or false.*--progress_bar false"):
        flag(value, "progress_bar")


@pytest.mark.parametrize("given, disabled", [("false", True), ("true", False), (False, True)])
def test_resume_string_from_the_command_line(given, disabled):
    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "pretrain.yaml"))
    parser["resume"] = given
    parser["progress_bar"] = given
    parser.parse()
    for id_ in ("imports", "train#handlers#0#_disabled_"):
        parser.get_parsed_content(id_)
    assert parser.get_parsed_content("train#handlers#0#_disabled_") is disabled  # the resume loader
    assert parser.get_parsed_content("train#handlers#7#disable") is disabled  # the progress bar
