"""Inputs of the label-masking benchmark's arms: structures, Site-Net inputs, feature tables.

Every table is indexed by structure id and cached under the profile's cache
folder, with the seconds it took, so an interrupted run resumes and the
report can state each feature family's cost:

* ``<task>_structures.json.gz``: structures (pymatgen dicts) and targets of
  every id used;
* ``<task>_sitenet.npz``: Site-Net inputs (``skdim.featurize``, 50 atoms);
* ``<task>_<family>.npz`` and ``<task>_<family>_cost.json``: matminer
  features (``xrd``, ``ofm``, ``magpie_ssf``, ``magpie``), computed in chunks
  of 200 structures;
* ``<task>_chgnet.npz``: CHGNet crystal features (``benchmarks/chgnet_features.py``).

No cache is a pickle: reading one runs no code (``.npz`` files are read with
``allow_pickle=False``), and each is written to a temporary file first and
then renamed, so an interrupted write leaves the previous cache intact.

The ``input_stats`` table (:func:`input_stats`, which is
:class:`skdim.SiteFeatureStats`) is computed from the Site-Net inputs in a
second and not cached.
"""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _masking_split import TASKS


def input_stats(inputs: list) -> np.ndarray:
    """The encoder's input site features pooled without a network: (n, 4 F).

    Mean, standard deviation, minimum and maximum over each structure's unique
    sites of each site feature: the no-network reference of the studies. It is
    the package's :class:`skdim.SiteFeatureStats` (this function computes it
    with :func:`skdim.site_stats.site_feature_stats`), in float32 as the
    reported numbers were computed.

    Parameters
    ----------
    inputs : list of skdim.featurize.SiteNetInput

    Returns
    -------
    float32 array of shape (len(inputs), 4 F)
    """
    from skdim.site_stats import site_feature_stats

    return site_feature_stats(inputs).astype(np.float32)


def load_task(task: str, data: Path, split: dict, cache: Path, n_jobs: int) -> pd.DataFrame:
    """Structures (column ``structure``) and targets (``y``) by id, of every id the split uses."""
    from skdim.datasets import load_structures_csv

    path = cache / f"{task}_structures.json.gz"
    if path.exists():
        return read_structures(path)
    needed = sorted(set(split["pretrain"]) | set(split["test"]))
    structures, targets = load_structures_csv(
        data / TASKS[task]["file"],
        target=TASKS[task]["target"],
        id_col=TASKS[task]["id_col"],
        ids=needed,
        n_jobs=n_jobs,
        progress=True,
    )
    frame = pd.DataFrame({"structure": structures, "y": targets})
    write_structures(path, frame)
    return frame


def write_structures(path: Path, frame: pd.DataFrame) -> None:
    """Write structures and targets by id as gzipped JSON (pymatgen's ``as_dict``)."""
    payload = {
        "ids": [str(i) for i in frame.index],
        "y": [float(v) for v in frame["y"]],
        "structures": [s.as_dict() for s in frame["structure"]],
    }
    partial = path.with_name(path.name + ".partial")
    with gzip.open(partial, "wt") as handle:
        json.dump(payload, handle)
    partial.replace(path)


def read_structures(path: Path) -> pd.DataFrame:
    """Structures and targets by id, as :func:`write_structures` wrote them."""
    from pymatgen.core import Structure

    with gzip.open(path, "rt") as handle:
        payload = json.load(handle)
    structures = [Structure.from_dict(d) for d in payload["structures"]]
    return pd.DataFrame({"structure": structures, "y": payload["y"]}, index=payload["ids"])


def write_table(path: Path, table: pd.DataFrame) -> None:
    """Write a numeric table with string ids as ``.npz`` (ids, values)."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez(
            handle,
            ids=np.asarray([str(i) for i in table.index], dtype=str),
            values=table.to_numpy(dtype=np.float64),
        )
    partial.replace(path)


def read_table(path: Path) -> pd.DataFrame:
    """A table from :func:`write_table` (read without unpickling)."""
    with np.load(path, allow_pickle=False) as saved:
        return pd.DataFrame(saved["values"], index=saved["ids"].tolist())


def sitenet_inputs(task: str, frame: pd.DataFrame, cache: Path, n_jobs: int) -> tuple[dict, float]:
    """Site-Net inputs by id (cached; a structure that fails is left out), and the seconds."""
    from skdim.datasets import load_featurized, save_featurized
    from skdim.featurize import featurize

    path = cache / f"{task}_sitenet.npz"
    if path.exists():
        inputs, meta = load_featurized(path)
        return dict(zip(meta["ids"], inputs)), meta["seconds"]
    start = time.perf_counter()
    inputs = featurize(
        frame["structure"], max_atoms=50, n_jobs=n_jobs, progress=True, on_error="skip"
    )
    seconds = time.perf_counter() - start
    keep = [i for i, x in enumerate(inputs) if x is not None]
    ids = [frame.index[i] for i in keep]
    save_featurized(path, [inputs[i] for i in keep], ids=ids, seconds=seconds)
    return dict(zip(ids, [inputs[i] for i in keep])), seconds


def matminer_features(
    task: str, name: str, frame: pd.DataFrame, ids: list, cache: Path, n_jobs: int
) -> tuple[pd.DataFrame, dict]:
    """One matminer family's features for ``ids`` (cached in chunks, resumable), and its cost.

    Parameters
    ----------
    task : str
        The task (names the cache files).
    name : {"xrd", "ofm", "magpie_ssf", "magpie"}
        The family.
    frame : pandas.DataFrame
        Structures by id (:func:`load_task`).
    ids : list
        Ids to featurize.
    cache : Path
        The profile's cache folder.
    n_jobs : int
        Processes.

    Returns
    -------
    features : pandas.DataFrame
        Rows in the order of ``ids``; a structure a featurizer fails on has NaNs.
    cost : dict
        ``seconds`` and ``structures`` summed over every chunk ever computed.
    """
    from joblib import Parallel, delayed

    path = cache / f"{task}_{name}.npz"
    cost_path = cache / f"{task}_{name}_cost.json"
    done = read_table(path) if path.exists() else pd.DataFrame()
    cost = (
        json.loads(cost_path.read_text())
        if cost_path.exists()
        else {"seconds": 0.0, "structures": 0}
    )
    todo = [i for i in ids if i not in done.index]
    for start in range(0, len(todo), 200):
        chunk = todo[start : start + 200]
        parts = np.array_split(np.array(chunk, dtype=object), max(1, n_jobs))
        began = time.perf_counter()
        rows = Parallel(n_jobs=n_jobs)(
            delayed(matminer_rows)(name, [frame.at[i, "structure"] for i in part])
            for part in parts
            if len(part)
        )
        cost["seconds"] += time.perf_counter() - began
        cost["structures"] += len(chunk)
        block = pd.DataFrame(np.vstack([r for r in rows if len(r)]), index=chunk)
        done = pd.concat([done, block])
        write_table(path, done)
        cost_path.write_text(json.dumps(cost))
        print(f"  {task} {name}: {len(set(ids) & set(done.index))}/{len(ids)} structures")
    return done.loc[ids], cost


def matminer_rows(name: str, structures: list) -> np.ndarray:
    """Feature rows of one matminer family; a featurizer that fails on a structure gives NaNs."""
    import warnings

    from matminer.featurizers.composition import ElementProperty
    from matminer.featurizers.structure import (
        OrbitalFieldMatrix,
        SiteStatsFingerprint,
        XRDPowderPattern,
    )

    warnings.filterwarnings("ignore")
    if name == "xrd":
        featurizers = [XRDPowderPattern()]
    elif name == "ofm":
        featurizers = [OrbitalFieldMatrix(period_tag=True)]
    elif name == "magpie":
        featurizers = [ElementProperty.from_preset("magpie")]
    else:
        featurizers = [
            ElementProperty.from_preset("magpie"),
            SiteStatsFingerprint.from_preset("CrystalNNFingerprint_ops"),
        ]
    rows = []
    for s in structures:
        row = []
        for f in featurizers:
            target = s.composition if isinstance(f, ElementProperty) else s
            try:
                row += list(f.featurize(target))
            except Exception:  # a featurizer failing on one structure gives NaNs
                row += [np.nan] * len(f.feature_labels())
        rows.append(row)
    return np.array(rows, dtype=float)


def chgnet_table(
    task: str, frame: pd.DataFrame, ids: list, cache: Path
) -> tuple[pd.DataFrame | None, dict]:
    """CHGNet crystal features for ``ids``, or None (with the reason) when CHGNet is missing.

    Parameters
    ----------
    task : str
        The task (names the cache file).
    frame : pandas.DataFrame
        Structures by id.
    ids : list
        Ids to featurize.
    cache : Path
        The profile's cache folder.

    Returns
    -------
    features : pandas.DataFrame or None
        Rows in the order of ``ids`` (NaNs where CHGNet gave none).
    cost : dict
        ``seconds``, ``structures`` and ``version`` (the pinned CHGNet), or
        ``skipped`` with the reason.
    """
    try:
        from chgnet_features import CHGNET_VERSION, chgnet_features

        features, seconds = chgnet_features(
            frame.loc[ids, "structure"], cache / f"{task}_chgnet.npz"
        )
    except ImportError as error:  # the script or the chgnet package is not installed
        return None, {"skipped": f"CHGNet arms skipped ({error})"}
    # seconds: summed over every run that computed features of the cache
    cost = {"seconds": float(seconds), "structures": len(ids), "version": CHGNET_VERSION}
    return features.reindex(ids), cost
