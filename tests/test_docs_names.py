"""Every config file, overlay, bundle option and link that the README and the how-to pages name exists.

A user copies these commands: a renamed key or overlay must fail here, not on their machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from monai_hybrid.bundle import default_bundle_dir
from monai_hybrid.cli import build_parser
from monai_hybrid.stacks import config_stack

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = default_bundle_dir() / "configs"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "how-to").glob("*.md"))]
#: options of ``python -m monai.bundle run`` itself, not config keys
RUN_OPTIONS = {"config_file", "meta_file", "logging_file", "tracking", "args_file"}
#: options of the other programs the pages run
OTHER_TOOLS = {
    "ruff format": {"check"},
    "pip install": {"index-url"},
    "monailabel start_server": {"app", "studies", "conf", "host", "port"},
    "torchrun": {"nnodes", "nproc_per_node", "standalone"},
    "experiments/monailabel/check_*.py": {"monailabel-python", "phantom-dir", "threads"},
}


def _commands(text: str) -> list[str]:
    """Each ``python -m monai.bundle run`` and ``monai-hybrid`` command of ``text``, continuation lines joined
    (``\\`` line ends, and the ``...`` lines of a code block that add options to the command above)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands: list[str] = []
    for line in joined.splitlines():
        stripped = line.strip().strip("`")
        if stripped.startswith("... ") and commands:
            commands[-1] += " " + stripped[4:].split("#")[0]
        elif "-m monai.bundle run" in stripped or stripped.startswith("monai-hybrid "):
            start = stripped.find("-m monai.bundle run")
            commands.append(stripped[start if start >= 0 else 0 :].split("  #")[0])
    return commands


def _parsed(stack: list[str]) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in stack])
    return parser


def _stack(command: str) -> list[str] | None:
    """The config files of a ``python -m monai.bundle run`` command, or None where it names none we can read."""
    found = re.search(r"\$\(monai-hybrid configs ([\w ]+)\)", command)
    if found:
        run, *overlays = found.group(1).split()
        return config_stack(run, overlays)
    files = re.findall(r"configs/(\w+\.yaml)", command)
    return files or None


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_configs_stack_and_file_named_exists(page):
    text = page.read_text()
    for run in re.findall(r"monai-hybrid configs ([\w ]+?)\)", text):
        name, *overlays = run.split()
        assert config_stack(name, overlays), run  # raises naming an unknown run or overlay
    for name in re.findall(r"configs/(\w+\.yaml)", text):
        if name != "train.yaml":  # written by monai-hybrid bundle / monailabel-app
            assert (CONFIGS / name).is_file(), f"{page.name} names configs/{name}, which the bundle lacks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_bundle_option_named_is_a_key_of_its_configs(page):
    checked = 0
    for command in _commands(page.read_text()):
        if "monai.bundle run" not in command:
            continue
        stack = _stack(command)
        assert stack, f"{page.name}: no config file found in {command!r}"
        parser = _parsed(stack)
        for key in re.findall(r"(?:^|\s)--([A-Za-z_][\w#]*)", command):
            if key not in RUN_OPTIONS:
                assert key in parser, f"{page.name}: --{key} is no key of {stack} ({command!r})"
        checked += 1
    if "-m monai.bundle run" in page.read_text():
        assert checked, f"{page.name}: its commands were not read"


def _help(*words: str) -> str | None:
    """``monai-hybrid WORDS --help`` as text, or None where argparse refuses the words (no such subcommand)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args([*words, "--help"])
        except SystemExit as stop:
            return out.getvalue() if stop.code == 0 else None
    return None


def _flags() -> set[str]:
    """Every ``--flag`` of every ``monai-hybrid`` subcommand, read from their help."""
    commands = re.findall(r"^    ([a-z][\w-]*)", _help() or "", flags=re.M)  # the subcommands under COMMAND
    assert commands, "monai-hybrid --help lists no subcommand"
    return {f for c in commands for f in re.findall(r"(?<![\w-])--[\w-]+", _help(c) or "")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_monai_hybrid_subcommand_and_flag_named_exists(page):
    for command in _commands(page.read_text()):
        if not command.startswith("monai-hybrid "):
            continue
        words = command.split()
        text = _help(words[1])
        assert text is not None, f"{page.name}: monai-hybrid {words[1]} is no subcommand ({command!r})"
        for flag in (w for w in words[2:] if w.startswith("--")):
            assert re.search(rf"(?<![\w-]){flag}(?![\w-])", text), f"{page.name}: monai-hybrid {words[1]} has no {flag}"


#: every hand-written page, for the links (generated reports are checked by their generator's tests)
LINKING_PAGES = [
    *PAGES,
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "docs" / "results" / "README.md",
    ROOT / "bundles" / "hybrid_brain_mri_segmentation" / "docs" / "README.md",
]


@pytest.mark.parametrize("page", LINKING_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"
        anchor = target.partition("#")[2]
        if anchor and path.suffix == ".md":  # GitHub's heading anchors: lower case, punctuation dropped, - for spaces
            headings = re.findall(r"^#+\s+(.*)$", path.read_text(), flags=re.M)
            anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
            assert anchor in anchors, f"{page.name} links to {target}: {path.name} has no such heading"


def test_every_option_a_page_mentions_exists_somewhere():
    """An option in prose (``--selection_seed``, ``--label_unit slices``) is a key of some run's configs (every
    overlay composed) or a flag of a ``monai-hybrid`` subcommand."""
    from monai_hybrid.stacks import OVERLAYS

    parsers = [
        _parsed(config_stack(run, [o for o in OVERLAYS if run in OVERLAYS[o][1] and o != "multi_gpu"]))
        for run in ("pretrain", "finetune")
    ]
    parsers += [_parsed(["inference.yaml", "evaluate.yaml"]), _parsed(["common.yaml", "pretrain.yaml", "sample.yaml"])]
    flags = _flags()
    for page in PAGES:
        for key in set(re.findall(r"(?<![\w-])--([A-Za-z_][\w#-]*)", page.read_text())):
            known = key in RUN_OPTIONS or f"--{key}" in flags or any(key in p for p in parsers)
            known = known or any(key in options for options in OTHER_TOOLS.values())
            assert known, f"{page.name} mentions --{key}, which no config, subcommand or program it runs has"
