"""Supervised-transfer source models for the label-masking benchmark.

The original Site-Net paper's "supervised transfer" initialisation: a Site-Net
trained on the labels of the *other* task, then fine-tuned on the few labels
of the target task (``SiteNetRegressor(pretrained=<folder>)``):

* target ``eform`` (mp36k formation energy): the source model learns PBE band
  gaps (``gap_pbe``) of the ``matbench_mp_gap`` official fold-0 *training* set;
* target ``gap`` (matbench band gap): it learns formation energies
  (``e_form_per_atom``) of the mp36k *training* split (seeded 80/20, seed 0).

The source task's test structures are never used. Every source structure
that also appears among the target task's test structures (matched by
:func:`skdim.overlap.shared_structures`, as ``pretrain_encoder.py`` does) is
excluded. The source training ids are walked in a seeded random order and
screened as they come until ``max_structures`` structures are kept, so the
kept set is a seeded uniform subsample of the training set *after*
exclusion, while only the structures the walk reaches need parsing.

Steps, each cached under the cache folder so that an interrupted run resumes:

1. ``<target>_transfer_source_ids.json``: kept ids and labels, excluded ids;
2. ``<target>_transfer_source_sitenet.npz``: the featurized structures
   (``max_atoms=50``, as the benchmark's ``_featurized``);
3. ``<target>_transfer_source_checkpoints/``: the fit, checkpointed per epoch
   (the library's default recipe: ``max_steps="auto"`` unless given);
4. ``<target>_transfer_source/``: the saved SiteNetRegressor, and
   ``<target>_transfer_source_cost.json`` its cost.

Cost, measured with ``--max-structures 200 --max-steps 20`` on 2 cores, one
thread, beside another job: the selection parses the target's whole test
split (7,348 mp36k structures for target ``eform``: 50 s in all; 21,223
mp_gap structures for target ``gap``: 163 s) and screened 211 mp_gap
(target ``eform``) or 249 mp36k (target ``gap``) structures for 200 kept;
featurizing took 0.1 s; the fit ran at about 5.5 steps/s after a first epoch
that costs about 4 s more. The default budget for 20,000 structures is 4,000
steps (``skdim._schedule.auto_steps``), so a full run takes about 15-20 min
per target.

Usage::

    python benchmarks/transfer_source.py --target eform --max-structures 20000 \\
        --cache-dir benchmarks/cache/full
    python benchmarks/transfer_source.py --target gap --max-structures 200 --max-steps 20 \\
        --cache-dir /tmp/transfer   # a smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: The source task of each target task: the other one.
SOURCES = {"eform": "gap", "gap": "eform"}
#: Data file and id column of each task.
#: Featurization of the benchmark (its ``_featurized``).
MAX_ATOMS = 50
SEED = 0


def _label(task: str) -> str:
    from label_masking import TASKS

    return TASKS[task]["target"]


def _read_task(task: str, data: Path) -> pd.DataFrame:
    """The task's CSV (CIF text and label), indexed by id."""
    from label_masking import TASKS

    name, id_col = TASKS[task]["file"], TASKS[task]["id_col"]
    frame = pd.read_csv(data / name, usecols=[id_col, _label(task), "cif"])
    return frame.set_index(id_col)


def _parse(frame: pd.DataFrame, ids: list[str], n_jobs: int) -> pd.Series:
    from skdim.datasets import parse_structures

    structures = parse_structures(
        frame.loc[ids, "cif"].tolist(), ids, n_jobs=n_jobs, progress=len(ids) > 1000
    )
    return pd.Series(structures, index=ids, dtype=object)


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def select_source(
    target: str,
    data: Path,
    cache: Path,
    target_test_ids: list[str],
    max_structures: int | None,
    n_jobs: int = 1,
) -> tuple[dict, pd.Series | None]:
    """Source ids and labels for ``target``, the target's test structures excluded.

    Parameters
    ----------
    target : {"gap", "eform"}
        The target task; the source is the other one.
    data : Path
        The data folder.
    cache : Path
        Folder of ``<target>_transfer_source_ids.json``.
    target_test_ids : list of str
        Ids of the target task's test structures (in the target's data file).
    max_structures : int or None
        Source structures to keep; None keeps all.
    n_jobs : int, default=1
        Processes for parsing CIFs.

    Returns
    -------
    selection : dict
        ``ids`` and ``y`` (kept, in walk order), ``excluded`` ids, counts and
        seconds.
    structures : pandas.Series or None
        The kept structures when just parsed, None when read from the cache.

    Raises
    ------
    ValueError
        If the cache was built with another ``max_structures``, or against
        test structures that do not include all of ``target_test_ids``.
    KeyError
        If a target test id is not in the target's data file.
    """
    from label_masking import TASKS, _train_test_ids

    from skdim.overlap import shared_structures

    if target not in SOURCES:
        raise ValueError(f"unknown target task {target!r}; choose from {sorted(SOURCES)}")
    path = cache / f"{target}_transfer_source_ids.json"
    wanted = sorted({str(i) for i in target_test_ids})
    if not wanted:
        raise ValueError("target_test_ids is empty: the exclusion needs the target test ids")
    if path.exists():
        selection = json.loads(path.read_text())
        if selection["max_structures"] != max_structures:
            raise ValueError(
                f"{path} holds a selection of max_structures={selection['max_structures']}, "
                f"not {max_structures}: use another cache folder"
            )
        screened = set(selection["target_test_ids"])
        missing = [i for i in wanted if i not in screened]
        if missing:
            raise ValueError(
                f"{path} was screened against other target test structures: {missing[0]!r} "
                f"(and {len(missing) - 1} more) were not excluded; use another cache folder"
            )
        return selection, None

    start = time.perf_counter()
    source = SOURCES[target]
    target_frame = _read_task(target, data)
    unknown = [i for i in wanted if i not in target_frame.index]
    if unknown:
        raise KeyError(f"target test id {unknown[0]!r} is not in {TASKS[target]['file']}")
    print(f"parsing {len(wanted)} {target} test structures", flush=True)
    test = _parse(target_frame, wanted, n_jobs).tolist()
    del target_frame
    train, _ = _train_test_ids(source, data, np.random.default_rng(SEED))
    walk = [str(i) for i in np.asarray(train)[np.random.default_rng(SEED).permutation(len(train))]]
    limit = len(walk) if max_structures is None else max_structures
    frame = _read_task(source, data)
    kept: list[tuple[str, object]] = []
    excluded: list[str] = []
    position = 0
    while len(kept) < limit and position < len(walk):
        size = min(len(walk) - position, int(1.1 * (limit - len(kept))) + 50)
        ids = walk[position : position + size]
        structures = _parse(frame, ids, n_jobs)
        shared = set(shared_structures(structures.tolist(), test))
        for k, key in enumerate(ids):
            if len(kept) == limit:
                break
            position += 1
            if k in shared:
                excluded.append(key)
            else:
                kept.append((key, structures.iloc[k]))
        print(
            f"  {source} source: {position} of {len(walk)} training structures screened, "
            f"{len(kept)} kept, {len(excluded)} excluded",
            flush=True,
        )
    ids = [key for key, _ in kept]
    selection = {
        "target": target,
        "source": source,
        "source_label": _label(source),
        "ids": ids,
        "y": frame.loc[ids, _label(source)].astype(float).tolist(),
        "excluded": excluded,
        "n_screened": position,
        "n_source_train": len(walk),
        "max_structures": max_structures,
        "target_test_ids": wanted,
        "target_test_digest": _digest(wanted),
        "seconds": time.perf_counter() - start,
    }
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(selection))
    os.replace(partial, path)
    return selection, pd.Series([s for _, s in kept], index=ids, dtype=object)


def _featurized_source(
    target: str, data: Path, cache: Path, selection: dict, structures, n_jobs: int
) -> tuple[list, list[str], float]:
    """SiteNetInputs of the kept source structures (cached), their ids and the seconds."""
    from skdim.datasets import load_featurized, save_featurized
    from skdim.featurize import featurize

    path = cache / f"{target}_transfer_source_sitenet.npz"
    if not path.exists():
        if structures is None:  # selection cached, features not: parse the kept ids again
            structures = _parse(_read_task(selection["source"], data), selection["ids"], n_jobs)
        start = time.perf_counter()
        inputs = featurize(
            structures, max_atoms=MAX_ATOMS, n_jobs=n_jobs, progress=True, on_error="skip"
        )
        seconds = time.perf_counter() - start
        keep = [k for k, x in enumerate(inputs) if x is not None]
        partial = path.with_name(path.stem + ".partial.npz")
        save_featurized(
            partial,
            [inputs[k] for k in keep],
            ids=[selection["ids"][k] for k in keep],
            seconds=seconds,
            max_atoms=MAX_ATOMS,
        )
        os.replace(partial, path)
    inputs, meta = load_featurized(path)
    return inputs, meta["ids"], meta["seconds"]


def transfer_source(
    target: str,
    data: Path,
    cache: Path,
    target_test_ids: list[str],
    max_structures: int | None = 20000,
    max_steps: int | None = None,
    n_jobs: int = 1,
) -> tuple[Path, dict]:
    """Train (or load from cache) the source model for ``target``.

    Parameters
    ----------
    target : {"gap", "eform"}
        The task the model will be fine-tuned on; it is trained on the other
        task's training labels.
    data : Path
        The data folder (``$SKDIM_DATA``).
    cache : Path
        Folder for the selection, the features, the checkpoints and the model.
    target_test_ids : list of str
        The target task's test ids; matching source structures are excluded.
        A cached selection is reused when it was screened against a superset
        of them (pass the full test split to share one cache between runs).
    max_structures : int or None, default=20000
        Source structures to train on (a seeded subsample after exclusion);
        None takes them all.
    max_steps : int or None, default=None
        Optimizer steps; None uses the library's default (``"auto"``).
    n_jobs : int, default=1
        Processes for parsing and featurizing.

    Returns
    -------
    folder : Path
        ``cache / f"{target}_transfer_source"``, a saved SiteNetRegressor:
        pass it as ``SiteNetRegressor(pretrained=folder)``.
    cost : dict
        ``source_task``, ``source_label``, ``n_structures`` (trained on),
        ``n_excluded``, ``n_screened``, ``n_refused`` (by featurization),
        ``n_target_test`` (test structures screened against),
        ``max_structures``, ``max_steps`` (the budget used), ``steps`` (run),
        ``epochs``, ``select_s``, ``featurize_s``, ``fit_s`` (summed over
        resumed runs) and ``steps_per_s``.

    Raises
    ------
    ValueError
        If the cache was built with other settings.
    """
    from skdim import SiteNetRegressor
    from skdim._schedule import auto_steps

    cache = Path(cache)
    folder = cache / f"{target}_transfer_source"
    cost_path = cache / f"{target}_transfer_source_cost.json"
    selection, structures = select_source(
        target, Path(data), cache, target_test_ids, max_structures, n_jobs
    )
    if (folder / "config.json").exists() and cost_path.exists():
        cost = json.loads(cost_path.read_text())
        if cost["max_steps_requested"] != max_steps:
            raise ValueError(
                f"{folder} was trained with max_steps={cost['max_steps_requested']}, "
                f"not {max_steps}: use another cache folder"
            )
        return folder, cost
    inputs, ids, featurize_s = _featurized_source(
        target, Path(data), cache, selection, structures, n_jobs
    )
    labels = dict(zip(selection["ids"], selection["y"]))
    y = np.array([labels[i] for i in ids], dtype=np.float32)
    budget = {} if max_steps is None else {"max_steps": max_steps}
    print(
        f"training the {target} transfer source on {len(ids)} {selection['source']} "
        f"structures ({selection['source_label']}), "
        f"{max_steps or auto_steps(len(ids))} steps",
        flush=True,
    )
    model = SiteNetRegressor(
        random_state=SEED,
        checkpoint_dir=str(cache / f"{target}_transfer_source_checkpoints"),
        verbose=1,
        n_jobs=n_jobs,
        **budget,
    )
    model.fit(inputs, y)
    model.save(folder)
    history = model.history
    fit_s = float(sum(history[:, "dur"]))
    steps = int(history[-1, "step"]) if "step" in history[-1] else None
    cost = {
        "target": target,
        "source_task": selection["source"],
        "source_label": selection["source_label"],
        "n_structures": len(ids),
        "n_excluded": len(selection["excluded"]),
        "n_screened": selection["n_screened"],
        "n_refused": len(selection["ids"]) - len(ids),
        "n_target_test": len(selection["target_test_ids"]),
        "max_structures": max_structures,
        "max_steps_requested": max_steps,
        "max_steps": max_steps if max_steps is not None else auto_steps(len(ids)),
        "steps": steps,
        "epochs": len(history),
        "select_s": selection["seconds"],
        "featurize_s": featurize_s,
        "fit_s": fit_s,
        "steps_per_s": steps / fit_s if steps and fit_s else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "threads": int(__import__("torch").get_num_threads()),
    }
    cost_path.write_text(json.dumps(cost, indent=2))
    return folder, cost


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python benchmarks/transfer_source.py``."""
    from label_masking import _train_test_ids

    from skdim.datasets import get_data_home

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=sorted(SOURCES), required=True)
    parser.add_argument(
        "--max-structures",
        type=int,
        default=20000,
        help="source structures to train on; 0 takes them all (default: %(default)s)",
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, help="optimizer steps (default: the library's)"
    )
    parser.add_argument("--cache-dir", default="benchmarks/cache/full")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $SKDIM_DATA)")
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    data = get_data_home(args.data_dir)
    # the full test split: a superset of any benchmark profile's test subsample
    _, test = _train_test_ids(args.target, data, np.random.default_rng(SEED))
    start = time.perf_counter()
    folder, cost = transfer_source(
        args.target,
        data,
        Path(args.cache_dir),
        [str(i) for i in test],
        max_structures=args.max_structures or None,
        max_steps=args.max_steps,
        n_jobs=args.n_jobs,
    )
    print(json.dumps(cost, indent=2))
    print(f"saved to {folder} ({time.perf_counter() - start:.0f} s this run)")


if __name__ == "__main__":
    main()
