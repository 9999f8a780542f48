"""The README runs as written: its Python snippets execute, its commands parse.

The Python blocks run in a fresh process from an empty folder, with only
``SKDIM_DATA`` set, as a reader would run them (slow: a few minutes; ``make
test-slow``); the default run compiles them. Commands are checked without
running them: ``skdim ...`` against the real argument parser, ``make`` targets
against the Makefile, scripts' options against the scripts, ``pip`` extras
against pyproject.toml.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skdim.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """Shell commands of the README: lines of ```bash blocks and inline code spans."""
    lines = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
    ]
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    spans = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return [
        command
        for command in lines + spans
        if re.match(r"(skdim|make|python|pip) ", command) and "..." not in command
    ] + [span for span in spans if span == "skdim benchmark"]


COMMANDS = _commands()


def test_readme_has_snippets_and_commands():
    assert len(PYTHON_BLOCKS) >= 1
    kinds = {command.split()[0] for command in COMMANDS}
    assert kinds == {"skdim", "make", "python", "pip"}, COMMANDS


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: f"{len(b.splitlines())} lines")
def test_python_snippet_compiles_and_reads_data_from_skdim_data(block):
    compile(block, "README.md", "exec")
    assert "get_data_home()" in block or ".csv" not in block  # no path relative to a folder


@pytest.mark.parametrize("command", sorted(set(COMMANDS)))
def test_command_parses(command):
    words = command.split()
    if words[0] == "skdim":
        try:
            args = build_parser().parse_args(words[1:])
        except SystemExit as exit_:  # --help prints and exits 0; a bad command exits 2
            assert exit_.code == 0, command
        else:
            assert callable(args.handler)
    elif words[0] == "make":
        targets = re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.M)
        assert set(words[1:]) <= set(targets), command
    elif words[0] == "python":
        script = ROOT / words[1]
        assert script.is_file(), command
        for option in (word for word in words[2:] if word.startswith("--")):
            assert f'"{option}"' in script.read_text(), f"{script.name} has no {option}"
    else:  # pip install: the package's name and extras
        pyproject = (ROOT / "pyproject.toml").read_text()
        for extra in re.findall(r"\[(\w+)\]", command):
            assert f"\n{extra} = [" in pyproject, command
        if "skdim" in command:
            assert 'name = "skdim-sitenet"' in pyproject


@pytest.mark.slow
@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: f"{len(b.splitlines())} lines")
def test_python_snippet_runs(block, data_home, tmp_path):
    env = {**os.environ, "SKDIM_DATA": str(data_home), "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"README snippet: {time.perf_counter() - start:.0f} s\n{result.stdout}")
