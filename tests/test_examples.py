"""Every script in examples/ runs to completion (slow: minutes each; `make test-slow`).

Each script runs in its own Python process, from a temporary directory, with
``SKDIM_DATA`` pointing at the shared data, as a user would run it. The gallery
scripts (``plot_*.py``) also run during ``make docs``; ``demo.py`` is the
README demo (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = {"demo.py": 1800}  # seconds; gallery examples are meant to take < 2 minutes


def test_examples_found():
    names = {p.name for p in SCRIPTS}
    assert "demo.py" in names and len(names) >= 2, names


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    data = Path(os.environ["SKDIM_DATA"])  # tests/conftest.py sets a default
    assert data.is_dir(), f"examples need the shared data; SKDIM_DATA={data} does not exist"
    env = {**os.environ, "SKDIM_DATA": str(data), "MPLBACKEND": "Agg"}
    try:
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT.get(script.name, 600),
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{script.name} did not finish in {error.timeout} s")
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr (end) ---\n{result.stderr[-6000:]}"
    )
