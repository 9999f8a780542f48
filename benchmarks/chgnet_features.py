"""CHGNet crystal features: a pretrained-potential baseline of the label-masking benchmark.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) is a graph network
potential pretrained on the Materials Project trajectory data set (MPtrj).
Its crystal feature vector (``return_crystal_feas``: the pooled atom
features of the last message-passing layer, 64 numbers) is a pretrained
representation of the kind DIM embeddings compete with, so the benchmark fits
the same downstream models on it.

The model is CHGNet 0.3.0, whose weights ship inside the ``chgnet==0.4.2``
wheel: nothing is downloaded. Both versions are part of the result and are
checked: another installed ``chgnet`` is refused, and a cache written by
another version is refused rather than mixed in.

Features are computed in chunks and written to one ``.npz`` cache after each
chunk (ids, features, seconds, failures; read back with
``allow_pickle=False``), so an interrupted run resumes and a second call with
the same ids computes nothing. A structure CHGNet fails on (e.g. an atom
with no neighbour within its 5 Angstrom cutoff) gets a row of NaN and a
warning naming its id. Only energies are requested (``task="e"``): the
crystal features do not depend on the task, and forces and stresses would
triple the cost. Speed on one thread (2-core machine beside another job):
about 20 structures/s on ``mp100`` (24 atoms on average) and 60 structures/s
on ``mp36k_demo3k`` (7.5 atoms), after about 3 s of loading CHGNet.

    OMP_NUM_THREADS=1 python benchmarks/chgnet_features.py --n 100  # speed, one thread
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

CHGNET_VERSION = "0.4.2"
#: The pretrained weights (shipped in the chgnet wheel) whose features are used.
CHGNET_MODEL = "0.3.0"
#: Structures computed between two writes of the cache.
CHUNK = 256


@functools.lru_cache(maxsize=1)
def _load_model():
    """CHGNet 0.3.0 on the CPU, from the weights inside the pinned chgnet wheel."""
    try:
        import chgnet
        from chgnet.model import CHGNet
    except ImportError as error:
        raise ImportError(
            f"CHGNet features need chgnet=={CHGNET_VERSION}: "
            f"pip install 'chgnet=={CHGNET_VERSION}' (or the project's [benchmark] extra)"
        ) from error
    if chgnet.__version__ != CHGNET_VERSION:
        raise ImportError(
            f"CHGNet features are pinned to chgnet=={CHGNET_VERSION} (its version is part "
            f"of the result); found chgnet {chgnet.__version__}"
        )
    model = CHGNet.load(model_name=CHGNET_MODEL, use_device="cpu", verbose=False)
    return model.eval()


def _read_cache(path: Path) -> tuple[list[str], np.ndarray, dict]:
    """Ids, feature rows and metadata of a cache file (no pickles are read)."""
    with np.load(path, allow_pickle=False) as data:
        ids = [str(i) for i in data["ids"]]
        features = data["features"].astype(float)
        meta = json.loads(str(data["metadata"]))
    expected = {"chgnet_version": CHGNET_VERSION, "chgnet_model": CHGNET_MODEL}
    found = {key: meta.get(key) for key in expected}
    if found != expected:
        raise ValueError(
            f"{path} holds CHGNet features of {found}, not {expected}: "
            "use another cache path (results of two versions are never mixed)"
        )
    if len(ids) != len(features):
        raise ValueError(f"{path} is corrupt: {len(ids)} ids for {len(features)} feature rows")
    return ids, features, meta


def _write_cache(path: Path, ids: list[str], features: np.ndarray, meta: dict) -> None:
    """Write the cache atomically (a temporary file renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.savez_compressed(
            handle,
            ids=np.array(ids, dtype=str),
            features=np.asarray(features, dtype=np.float32).reshape(len(ids), -1),
            metadata=np.array(json.dumps(meta)),
        )
    os.replace(partial, path)


def _chunk_features(
    model, chunk: list[str], structures: dict, batch_size: int
) -> tuple[np.ndarray, dict[str, str]]:
    """Features of one chunk of ids (NaN rows for failures) and the failures' reasons."""
    import torch

    failed: dict[str, str] = {}
    graphs = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"chgnet\.")
        for key in chunk:
            try:
                graphs[key] = model.graph_converter(structures[key])
            except Exception as error:  # one bad structure must not stop the run
                failed[key] = f"{type(error).__name__}: {error}"
        rows: dict[str, np.ndarray] = {}
        done = list(graphs)
        for start in range(0, len(done), batch_size):
            batch = done[start : start + batch_size]
            try:
                with torch.no_grad():
                    out = _predict(model, [graphs[k] for k in batch])
                rows.update(zip(batch, out))
            except Exception:  # find the structure that failed, one at a time
                for key in batch:
                    try:
                        with torch.no_grad():
                            rows[key] = _predict(model, [graphs[key]])[0]
                    except Exception as error:
                        failed[key] = f"{type(error).__name__}: {error}"
    width = len(next(iter(rows.values()))) if rows else 64
    features = np.full((len(chunk), width), np.nan)
    for position, key in enumerate(chunk):
        if key in rows:
            features[position] = rows[key]
    return features, failed


def _predict(model, graphs: list) -> list[np.ndarray]:
    """Crystal feature vectors of a batch of CHGNet graphs."""
    out = model.predict_graph(
        graphs, task="e", return_crystal_feas=True, batch_size=max(1, len(graphs))
    )
    out = [out] if isinstance(out, dict) else out
    rows = [np.asarray(o["crystal_fea"], dtype=float).ravel() for o in out]
    if not all(np.isfinite(r).all() for r in rows):
        raise FloatingPointError("CHGNet returned non-finite features")
    return rows


def chgnet_features(
    structures: pd.Series, path: Path, batch_size: int = 16
) -> tuple[pd.DataFrame, float]:
    """CHGNet 0.3.0 crystal features (``return_crystal_feas``) of ``structures``.

    Cached in ``path`` and resumable in chunks.

    Parameters
    ----------
    structures : pandas.Series of pymatgen Structure
        Indexed by unique ids (compared as strings).
    path : Path
        The ``.npz`` cache: read when it exists (features of ids it holds are
        not computed again), rewritten after every chunk of new ids.
    batch_size : int, default=16
        Structures per CHGNet forward pass.

    Returns
    -------
    features : pandas.DataFrame
        One row per id of ``structures``, in its order, with the 64 columns
        ``chgnet_0`` ... ``chgnet_63``; a row of NaN where CHGNet failed.
    seconds : float
        Time spent computing the features, summed over every run that wrote
        to the cache (loading the model included, reading the cache not).

    Raises
    ------
    ValueError
        If an id appears twice, or the cache was written by another CHGNet
        version.
    ImportError
        If ``chgnet`` is missing or not version 0.4.2 (only checked when
        something has to be computed).

    Warns
    -----
    RuntimeWarning
        Naming every id CHGNet failed on (also for failures read from the
        cache).
    """
    if not isinstance(structures, pd.Series):
        raise TypeError(
            f"structures must be a pandas Series indexed by id, not {type(structures)}"
        )
    keys = [str(i) for i in structures.index]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"structure id {key!r} appears more than once")
        seen.add(key)
    path = Path(path)
    ids, table, meta = ([], np.empty((0, 0)), {}) if not path.exists() else _read_cache(path)
    meta = {
        "chgnet_version": CHGNET_VERSION,
        "chgnet_model": CHGNET_MODEL,
        "seconds": 0.0,
        "failed": {},
        **meta,
    }
    position = {key: k for k, key in enumerate(ids)}
    todo = [key for key in keys if key not in position]
    by_key = dict(zip(keys, structures.to_numpy()))
    blocks = [table] if len(ids) else []
    cached_failures = [key for key in keys if key in position and key in meta["failed"]]
    if cached_failures:
        warnings.warn(
            f"CHGNet failed on structures {cached_failures} (cached in {path}); "
            "their features are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    if todo:
        start = time.perf_counter()
        model = _load_model()
        meta["seconds"] += time.perf_counter() - start
        meta["load_seconds"] = meta.get("load_seconds", 0.0) + time.perf_counter() - start
        done = 0
        for begin in range(0, len(todo), CHUNK):
            chunk = todo[begin : begin + CHUNK]
            start = time.perf_counter()
            features, failed = _chunk_features(model, chunk, by_key, batch_size)
            seconds = time.perf_counter() - start
            meta["seconds"] += seconds
            meta["failed"].update(failed)
            for key, reason in failed.items():
                warnings.warn(
                    f"CHGNet failed on structure {key!r} ({reason}); its features are NaN",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if blocks and blocks[0].shape[1] != features.shape[1]:
                raise ValueError(f"{path}: cached rows have {blocks[0].shape[1]} features")
            blocks.append(features)
            position.update({key: len(ids) + k for k, key in enumerate(chunk)})
            ids += chunk
            _write_cache(path, ids, np.vstack(blocks), meta)
            blocks = [np.vstack(blocks)]
            done += len(chunk)
            print(
                f"  chgnet: {done}/{len(todo)} new structures, "
                f"{len(chunk) / seconds:.1f} structures/s ({_threads()} thread(s))",
                flush=True,
            )
    table = np.vstack(blocks) if blocks else np.empty((0, 64))
    width = table.shape[1]
    frame = pd.DataFrame(
        table[[position[key] for key in keys]].astype(float),
        index=structures.index,
        columns=[f"chgnet_{k}" for k in range(width)],
    )
    return frame, float(meta["seconds"])


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> None:
    """Measure the speed of CHGNet features on the first structures of a data file."""
    import tempfile

    from skdim.datasets import get_data_home, load_structures_csv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="structures to featurize")
    parser.add_argument("--file", default="mp36k_demo3k.csv.gz", help="CSV in the data folder")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $SKDIM_DATA)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    path = get_data_home(args.data_dir) / args.file
    structures, _ = load_structures_csv(path)
    structures = structures.iloc[: args.n]
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "chgnet.npz"
        frame, seconds = chgnet_features(structures, cache, args.batch_size)
        _, _, meta = _read_cache(cache)
    compute = seconds - meta["load_seconds"]
    atoms = sum(len(s) for s in structures)
    print(
        f"{len(frame)} structures of {args.file} ({atoms / len(frame):.1f} atoms on average): "
        f"{seconds:.1f} s in all, {meta['load_seconds']:.1f} s of it loading CHGNet; "
        f"{len(frame) / compute:.1f} structures/s on {_threads()} thread(s) after loading; "
        f"{int(frame.isna().any(axis=1).sum())} failed"
    )


if __name__ == "__main__":
    main()
