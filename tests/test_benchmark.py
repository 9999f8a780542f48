"""The label-masking benchmark's split and report (benchmarks/label_masking.py)."""

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import label_masking as benchmark  # noqa: E402 (a script of benchmarks/, not of the package)

PROFILE = {"n_pretrain": 300, "ns": [5, 20], "seeds": 2, "pool": 60, "n_test": 30}


@pytest.mark.parametrize("task", ["gap", "eform"])
def test_split_is_nested_disjoint_and_uses_training_data_only(task, data_home):
    split = benchmark._task_split(task, data_home, PROFILE)
    test = set(split["test"])
    assert len(test) == 30
    if task == "gap":
        with gzip.open(data_home / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
            assert test <= set(json.load(handle)["folds"]["fold_0"]["test"])
    labelled = split["labelled"]
    assert sorted(labelled) == [0, 1]
    pool = set()
    for ids in labelled.values():
        assert len(ids) == 20 == len(set(ids))  # N=5 is the first 5 of the N=20 subset
        assert not test & set(ids)
        pool |= set(ids)
    assert len(pool) <= 60
    assert labelled[0] != labelled[1]
    assert pool <= set(split["pretrain"]) and not test & set(split["pretrain"])
    assert len(split["pretrain"]) == 300
    assert benchmark._task_split(task, data_home, PROFILE) == split  # seeded


def test_report_gives_median_iqr_and_relative_gain(tmp_path):
    rows = pd.DataFrame(
        [
            ("gap", n, seed, arm, mae)
            for n in (50, 100)
            for seed, noise in enumerate((0.0, 0.1, 0.2))
            for arm, mae in (("sitenet_dim", 0.5 + noise), ("xrd_rf", 1.0 + noise), ("mean", 2.0))
        ],
        columns=["task", "n", "seed", "arm", "mae"],
    )
    rows.to_csv(tmp_path / "label_masking_quick.csv", index=False)
    args = argparse.Namespace(profile="quick", plots=False)
    benchmark._summarize(args, tmp_path)
    report = (tmp_path / "label_masking_quick.md").read_text()
    assert "| sitenet_dim | **0.600 [0.550-0.650]** | **0.600 [0.550-0.650]** |" in report
    assert "| xrd_rf | 1.100 [1.050-1.150] |" in report
    assert "N=50: best DIM arm 0.600 vs best other 1.100 (xrd_rf), +45.5%" in report
    assert np.isfinite(rows["mae"]).all()


def test_longer_pretraining_arms_are_dim_arms_in_their_own_families(tmp_path):
    arms = {"sitenet_dim_long": 0.4, "dim_long_rf": 0.45, "dim_rf": 0.9, "magpie_ssf_rf": 0.5}
    rows = pd.DataFrame(
        [
            ("eform", 50, seed, arm, mae + seed / 100)
            for seed in range(3)
            for arm, mae in arms.items()
        ],
        columns=["task", "n", "seed", "arm", "mae"],
    )
    rows.to_csv(tmp_path / "label_masking_quick.csv", index=False)
    benchmark._summarize(argparse.Namespace(profile="quick", plots=False), tmp_path)
    report = (tmp_path / "label_masking_quick.md").read_text()
    assert "N=50: best DIM arm 0.410 vs best other 0.510 (magpie_ssf_rf), +19.6%" in report
    assert "| Site-Net fine-tuned from DIM pretrained 3x longer | 0.410 |" in report
    assert "| DIM embeddings, pretrained 3x longer | 0.460 (rf) |" in report
    assert "| DIM embeddings | 0.910 (rf) |" in report
    assert "| Site-Net fine-tuned from DIM |  |" in report  # no such arm


def test_cli_exposes_the_benchmark():
    from skdim.cli import build_parser

    args = build_parser().parse_args(["benchmark", "--full", "--tasks", "gap"])
    assert args.profile == "full" and args.tasks == ["gap"]
    assert args.handler.__name__ == "_benchmark"


@pytest.mark.parametrize("task", ["gap", "eform"])
def test_development_split_avoids_test_labelled_and_pretraining_ids(task, data_home):
    split = benchmark._task_split(task, data_home, PROFILE)
    dev = benchmark._development_ids(task, data_home, split, 40)
    train, test = benchmark._train_test_ids(task, data_home, np.random.default_rng(0))
    assert len(dev) == 40 == len(set(dev))
    assert set(dev) <= set(train) and not set(dev) & set(test)
    assert not set(dev) & set(split["pretrain"])
    assert benchmark._development_ids(task, data_home, split, 40) == dev  # seeded


def test_cli_without_a_source_checkout_says_where_the_benchmark_is(monkeypatch, tmp_path, capsys):
    from skdim import cli

    monkeypatch.setattr(cli, "_BENCHMARK", tmp_path / "label_masking.py")
    cli._benchmark_module.cache_clear()
    try:
        assert cli.main(["benchmark", "--quick"]) == 2
    finally:
        cli._benchmark_module.cache_clear()
    assert "python benchmarks/label_masking.py" in capsys.readouterr().err
