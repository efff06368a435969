"""Yes/no config keys given on the command line as strings (``--resume false``) mean what they say."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser

from monai_hybrid.bundle import flag
from tests.bundle.conftest import BUNDLE, TINY_SETTINGS, handler_index


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
    parser.read_config([str(BUNDLE / "configs" / c) for c in ("common.yaml", "pretrain.yaml")])
    parser["resume"] = given
    parser["progress_bar"] = given
    parser.parse()
    parser.get_parsed_content("imports")
    loader = handler_index(parser, "train#handlers", "VerifiedCheckpointLoader")
    bar = handler_index(parser, "train#handlers", "TrainingProgressBar")
    assert parser.get_parsed_content(f"train#handlers#{loader}#_disabled_") is disabled
    assert parser.get_parsed_content(f"train#handlers#{bar}#disable") is disabled


@pytest.mark.parametrize("given, autocast", [("true", True), ("false", False), (True, True), (False, False)])
def test_amp_from_the_command_line_sets_the_engines_precision(given, autocast):
    """``--amp true`` on a CPU: the trainer's and the validator's inferers autocast to bfloat16 and MONAI's own (CUDA)
    amp stays off; ``--amp false``: the configured inferers, float32. The same holds for inference.yaml."""
    from monai_hybrid.engines import AutocastInferer

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / c) for c in ("common.yaml", "pretrain.yaml")])
    parser.update({"amp": given, "device": "$torch.device('cpu')"})
    parser.parse()
    parser.get_parsed_content("imports")
    for engine in ("train#trainer", "validate#evaluator"):
        inferer = parser.get_parsed_content(f"{engine}#inferer")
        assert isinstance(inferer, AutocastInferer) is autocast
        assert parser.get_parsed_content(f"{engine}#amp") is False
    served = ConfigParser()
    served.read_config(str(BUNDLE / "configs" / "inference.yaml"))
    served.update({"amp": given, "device": "$torch.device('cpu')", "model_settings": TINY_SETTINGS})
    served.parse()
    served.get_parsed_content("imports")
    assert isinstance(served.get_parsed_content("inferer"), AutocastInferer) is autocast
