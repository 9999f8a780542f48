"""The label-masking benchmark's rows file: one row per (task, N, seed, arm), resumable.

Rows go to ``<out>/label_masking.csv`` (full profile) or
``label_masking_<profile>.csv``, one appended per finished fit, so a run that
stops resumes where it stopped (finished rows are skipped). Each row carries
the ``protocol`` it was made under: :data:`PROTOCOL` 2 is the protocol of
this version (5 disjoint seeds, 2,000 test structures, the default Site-Net
recipe, the shipped, transfer and CHGNet arms). Rows of an older protocol
are kept in the file but never resumed from nor reported; a file written
before the column existed is protocol 1, and is labelled so, in place, the
first time a new row is appended. Appends hold an exclusive lock, so two
processes (one per task) can share the file.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

PROTOCOL = 2
COLUMNS = ["protocol", "task", "n", "seed", "arm", "mae", "fit_s", "predict_s"]


def report_stem(profile: str) -> str:
    """File stem of a profile's outputs: ``label_masking`` (full), ``label_masking_quick``."""
    return "label_masking" if profile == "full" else f"label_masking_{profile}"


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:  # the rows file itself: no lock file left behind
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> pd.DataFrame:
    if not path.exists() or os.path.getsize(path) == 0:
        return pd.DataFrame(columns=COLUMNS)
    rows = pd.read_csv(path)
    if "protocol" not in rows:
        rows.insert(0, "protocol", 1)
    return rows


def read_rows(path: Path, protocol: int = PROTOCOL) -> tuple[pd.DataFrame, int]:
    """The rows of one protocol, and how many rows of other protocols the file holds.

    Parameters
    ----------
    path : Path
        The rows file (missing: no rows).
    protocol : int, default=PROTOCOL
        The protocol to keep.

    Returns
    -------
    rows : pandas.DataFrame
        Columns :data:`COLUMNS` (``predict_s`` NaN where it was not recorded).
    n_other : int
        Rows of other protocols, left out.
    """
    rows = _read(path)
    mine = rows["protocol"] == protocol
    return rows[mine].reindex(columns=COLUMNS).reset_index(drop=True), int((~mine).sum())


def finished(path: Path, protocol: int = PROTOCOL) -> set[tuple]:
    """The (task, n, seed, arm) keys already in the file under ``protocol``."""
    rows, _ = read_rows(path, protocol)
    return set(zip(rows["task"], rows["n"].astype(int), rows["seed"].astype(int), rows["arm"]))


def append_row(path: Path, row: dict, protocol: int = PROTOCOL) -> None:
    """Append one row (its ``protocol`` set), labelling a pre-protocol file as protocol 1 first."""
    with _locked(path):
        fresh = not path.exists() or os.path.getsize(path) == 0
        if not fresh and "protocol" not in pd.read_csv(path, nrows=0).columns:
            old = _read(path)  # rows of the first protocol: say so, keep them
            extra = [c for c in old if c not in COLUMNS]
            old.reindex(columns=COLUMNS + extra).to_csv(path, index=False)
        header = COLUMNS if fresh else list(pd.read_csv(path, nrows=0).columns)
        line = pd.DataFrame([{**row, "protocol": protocol}]).reindex(columns=header)
        line.to_csv(path, mode="a", header=fresh, index=False)
