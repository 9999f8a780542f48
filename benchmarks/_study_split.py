"""The labelled subsets the development-split studies were run on (label-masking protocol 1).

``recipe_study.py`` (and ``calibration_study.py``, through it) fit their
variants on the labelled subsets of the label-masking benchmark's first
protocol: three seeds of nested subsets (N = 50 ⊂ 100 ⊂ 250 ⊂ 1000) drawn from
one fixed pool of 1,500 training structures, with a 5,000-structure
pretraining set. The benchmark has moved on (``_masking_split.py``: five
disjoint seeds), but the studies' committed rows were made on these subsets,
so a rerun on a fresh machine must draw exactly them again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _masking_split import _train_test_ids

#: The protocol-1 full profile's split settings.
STUDY_PROFILE = {"n_test": 500, "pool": 1500, "seeds": 3, "ns": [50, 100, 250, 1000],
                 "n_pretrain": 5000}  # fmt: skip


def study_split(task: str, data: Path, seed: int = 0) -> dict:
    """Protocol 1's split of ``task``: test subsample, labelled subsets, pretraining set.

    Parameters
    ----------
    task : {"gap", "eform"}
    data : Path
        The data directory.
    seed : int, default=0

    Returns
    -------
    dict
        ``test`` (ids), ``labelled`` (seed -> ids; prefixes are the nested
        subsets), ``pretrain`` (ids), ``n_train``.
    """
    profile = STUDY_PROFILE
    rng = np.random.default_rng(seed)
    train, test = _train_test_ids(task, data, rng)
    test = test[np.sort(rng.choice(len(test), profile["n_test"], replace=False))]
    pool = train[
        np.sort(np.random.default_rng(999).choice(len(train), profile["pool"], replace=False))
    ]
    labelled = {}
    for s in range(profile["seeds"]):
        pick = np.random.default_rng(1000 + s).choice(len(pool), max(profile["ns"]), replace=False)
        labelled[s] = pool[pick].tolist()  # prefixes give the nested subsets
    union = sorted({i for ids_ in labelled.values() for i in ids_})
    rest = np.setdiff1d(train, union)
    extra = max(0, min(profile["n_pretrain"], len(train)) - len(union))
    pretrain = union + rest[np.sort(rng.choice(len(rest), extra, replace=False))].tolist()
    return {"test": test.tolist(), "labelled": labelled, "pretrain": pretrain,
            "n_train": len(train)}  # fmt: skip
