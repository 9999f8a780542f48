"""Pretrain the DIM encoder that skdim ships, on Materials Project without labels.

The data: every structure of ``matbench_mp_gap``'s official fold-0 training
set, minus every structure that also appears in the ``mp36k``
formation-energy test split of the label-masking benchmark (matched by
:func:`skdim.overlap.shared_structures`). One model is then label-clean for
both benchmark tasks: no test structure of either task was seen, and no label
is read anywhere (the checkpoint is chosen by the self-supervised validation
loss).

Steps, each cached under ``--work`` so that the run resumes where it stopped:

1. ``ids.json``: the pretraining ids and the excluded ones (with the reason);
2. ``featurized.npz``: the featurized structures;
3. ``checkpoints/``: the DIM run, checkpointed every epoch; run the script
   again to resume it (the run stops by itself when the validation loss has
   plateaued);
4. ``--export DIR``: write the trained encoder and its model card facts.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pretrain_encoder.py --work benchmarks/pretraining
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _fold0_train_ids(data: Path) -> list[str]:
    ids = pd.read_csv(data / "matbench_mp_gap.csv.gz", usecols=["matbench_id"])["matbench_id"]
    with gzip.open(data / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        test = set(json.load(handle)["folds"]["fold_0"]["test"])
    return [i for i in ids if i not in test]


def _eform_test_ids(data: Path) -> list[str]:
    """The mp36k test split of the label-masking benchmark (seeded 80/20, seed 0)."""
    from skdim.benchmark import _train_test_ids

    _, test = _train_test_ids("eform", data, np.random.default_rng(0))
    return sorted(test.tolist())


def select_ids(data: Path, work: Path, n_jobs: int) -> dict:
    """Pretraining ids: fold-0 training set of mp_gap minus the mp36k test structures."""
    from skdim.datasets import load_structures_csv
    from skdim.overlap import shared_structures

    path = work / "ids.json"
    if path.exists():
        return json.loads(path.read_text())
    start = time.perf_counter()
    train_ids = _fold0_train_ids(data)
    test_ids = _eform_test_ids(data)
    print(f"parsing {len(train_ids)} mp_gap fold-0 training structures", flush=True)
    train, _ = load_structures_csv(
        data / "matbench_mp_gap.csv.gz", id_col="matbench_id", ids=train_ids, n_jobs=n_jobs,
        progress=True,
    )
    test, _ = load_structures_csv(
        data / "mp36k.csv.gz", id_col="mp_id", ids=test_ids, n_jobs=n_jobs, progress=True
    )
    print("matching against the mp36k test split", flush=True)
    shared = shared_structures(train.tolist(), test.tolist())
    excluded = [train.index[i] for i in shared]
    keep = [i for i in train.index if i not in set(excluded)]
    selection = {
        "pretrain": keep,
        "excluded": excluded,
        "n_fold0_train": len(train_ids),
        "n_eform_test": len(test_ids),
        "seconds": time.perf_counter() - start,
    }
    path.write_text(json.dumps(selection))
    pd.to_pickle(train.loc[keep], work / "structures.pkl.gz")
    print(f"{len(keep)} structures kept, {len(excluded)} excluded", flush=True)
    return selection


def featurized(work: Path, n_jobs: int) -> tuple[list, dict]:
    from skdim.datasets import load_featurized, save_featurized
    from skdim.featurize import featurize

    path = work / "featurized.npz"
    if not path.exists():
        structures = pd.read_pickle(work / "structures.pkl.gz")
        start = time.perf_counter()
        inputs = featurize(structures, n_jobs=n_jobs, progress=True, on_error="skip")
        keep = [i for i, x in enumerate(inputs) if x is not None]
        save_featurized(
            path,
            [inputs[i] for i in keep],
            ids=[structures.index[i] for i in keep],
            seconds=time.perf_counter() - start,
        )
    return load_featurized(path)


def pretrain(work: Path, inputs: list, args) -> object:
    from skdim import DIMPretrainer

    model = DIMPretrainer(
        engineered_negatives=args.engineered_negatives,
        max_epochs=args.max_epochs,
        random_state=0,
        checkpoint_dir=str(work / "checkpoints"),
        verbose=1,
    )
    start = time.perf_counter()
    model.fit(inputs)
    (work / "fit_seconds.json").write_text(json.dumps({"last_call": time.perf_counter() - start}))
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("SKDIM_DATA", "../shared/data"))
    parser.add_argument("--work", default="benchmarks/pretraining")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--engineered-negatives", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="stop after featurizing")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    select_ids(Path(args.data), work, args.n_jobs)
    inputs, meta = featurized(work, args.n_jobs)
    print(f"{len(inputs)} featurized structures ({platform.node()})", flush=True)
    if not args.prepare_only:
        pretrain(work, inputs, args)


if __name__ == "__main__":
    main()
