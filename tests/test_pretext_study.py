"""The pretext study's splits: fixed, and never touching a test set."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import pretext_study as study  # noqa: E402 (a script of benchmarks/, not of the package)


def test_gvrh_split_is_fixed_and_recorded(data_home):
    split = study.gvrh_split(data_home)
    assert len(split["test"]) == 1000 and not set(split["test"]) & set(split["train"])
    assert len(split["test"]) + len(split["train"]) == 3191
    recorded = json.loads((ROOT / "benchmarks" / "splits" / "gvrh_split.json").read_text())
    assert recorded == split


@pytest.mark.parametrize("task", ["eform", "gap", "gvrh"])
def test_development_splits_never_touch_a_test_set(data_home, task):
    split = study.development_split(task, data_home)
    labelled = [set(block) for block in split["labelled"].values()]
    used = set(split["eval"]).union(*labelled)
    assert len(split["eval"]) == study.N_EVAL[task]
    assert all(len(block) == 1000 for block in labelled)
    assert not set(split["eval"]) & set().union(*labelled)
    if task == "gvrh":
        test = set(study.gvrh_split(data_home)["test"])
    else:
        cached = ROOT / "benchmarks" / "cache" / "full_v2" / f"{task}_split.json"
        task_split = json.loads(cached.read_text())
        test = set(task_split["test"])
        assert not used & set(task_split["pretrain"])  # nor pretrained on in the benchmark
        import numpy as np
        from _masking_split import _train_test_ids

        test |= set(_train_test_ids(task, data_home, np.random.default_rng(0))[1].tolist())
    assert not used & test
    assert study.development_split(task, data_home) == split  # seeded
