"""The checks of a pretrained encoder (benchmarks/): splits that never touch the test set."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _study_split  # noqa: E402 (scripts of benchmarks/, not of the package)
import pretrained_embeddings  # noqa: E402
from _masking_split import _train_test_ids  # noqa: E402


def test_embedding_check_labels_come_from_training_and_tests_from_the_test_split(data_home):
    train, test = _train_test_ids("eform", data_home, np.random.default_rng(0))
    labelled, test_ids = pretrained_embeddings._split(data_home, 250, 1000, 3)
    assert len(test_ids) == len(set(test_ids)) == 1000
    assert set(test_ids) <= set(test)
    for subset in labelled.values():
        assert len(subset) == len(set(subset)) == 250
        assert set(subset) <= set(train)
        assert not set(subset) & set(test_ids)
    assert labelled[0] != labelled[1]  # one draw per seed
    again = pretrained_embeddings._split(data_home, 250, 1000, 3)
    assert again == (labelled, test_ids)


def test_study_split_keeps_protocol_one(data_home):
    split = _study_split.study_split("eform", data_home)
    train, test = _train_test_ids("eform", data_home, np.random.default_rng(0))
    assert len(split["test"]) == 500 and set(split["test"]) <= set(test)
    pool = {i for ids in split["labelled"].values() for i in ids}
    assert len(pool) <= 1500 and pool <= set(train)  # one shared pool, seeds overlap
    assert all(len(ids) == 1000 for ids in split["labelled"].values())
    assert pool <= set(split["pretrain"]) and len(split["pretrain"]) == 5000


def test_input_stats_pool_each_site_feature_over_sites():
    from _masking_features import input_stats

    class Crystal:  # the one field the reference reads
        def __init__(self, sites):
            self.site_features = np.asarray(sites, dtype=np.float32)

    table = input_stats([Crystal([[1, 0], [3, 4]]), Crystal([[2, 5]])])
    assert table.shape == (2, 8)  # mean, std, min, max of 2 features
    np.testing.assert_allclose(table[0], [2, 2, 1, 2, 1, 0, 3, 4])
    np.testing.assert_allclose(table[1], [2, 5, 0, 0, 2, 5, 2, 5])


def test_budget_table_compares_only_complete_cells():
    import pandas as pd
    import recipe_study

    rows = pd.DataFrame(
        [
            ("eform", 250, 0, "cosine_500", 0.30),
            ("eform", 250, 0, "cosine_1500", 0.20),
            ("gap", 250, 0, "cosine_500", 0.80),
            ("gap", 250, 0, "cosine_1500", 1.00),
            ("gap", 250, 1, "cosine_500", 0.90),  # cosine_1500 unfinished: left out
        ],
        columns=["task", "n", "seed", "variant", "dev_mae"],
    )
    wide = rows.pivot_table(index=["task", "n", "seed"], columns="variant", values="dev_mae")
    lines = recipe_study._budget_table(wide)
    assert "| 250 | cosine_500 | 50.0 % (1) | 0.0 % (1) | 25.0 % (2) |" in lines
    assert "| 250 | cosine_1500 | 0.0 % (1) | 25.0 % (1) | 12.5 % (2) |" in lines
