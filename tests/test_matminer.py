import numpy as np
import pandas as pd
import pytest

from skdim.matminer import DIMFeaturizer


def test_featurize_dataframe(small, fitted_pretrainer):
    structures, _ = small
    frame = pd.DataFrame({"structure": structures.tolist()}, index=structures.index)
    featurizer = DIMFeaturizer(fitted_pretrainer)
    out = featurizer.featurize_dataframe(frame, "structure", pbar=False)
    labels = featurizer.feature_labels()
    assert labels[0] == "skdim_dim0" and len(labels) == 128
    np.testing.assert_allclose(
        out[labels].to_numpy(), fitted_pretrainer.transform(structures), atol=1e-6
    )
    assert featurizer.featurize(structures.iloc[0]) == pytest.approx(
        out[labels].iloc[0].tolist(), abs=1e-6
    )


def test_batched_inference_single_call(small, fitted_pretrainer, monkeypatch):
    structures, _ = small
    calls = []
    original = fitted_pretrainer.transform
    monkeypatch.setattr(
        fitted_pretrainer, "transform", lambda X: calls.append(len(X)) or original(X)
    )
    DIMFeaturizer(fitted_pretrainer).featurize_many(structures.tolist(), pbar=False)
    assert calls == [len(structures)]


def test_errors_are_ignored_and_returned(small, fitted_pretrainer):
    structures, _ = small
    entries = [structures.iloc[0], "not a structure", structures.iloc[1]]
    featurizer = DIMFeaturizer(fitted_pretrainer)
    with pytest.raises(TypeError):
        featurizer.featurize_many(entries, pbar=False)
    rows = featurizer.featurize_many(entries, ignore_errors=True, return_errors=True, pbar=False)
    assert np.isnan(rows[1][:-1]).all() and "not a pymatgen Structure" in rows[1][-1]
    assert np.isfinite(rows[0][:-1]).all() and rows[0][-1] == ""


def test_contract(small, fitted_pretrainer, tmp_path):
    featurizer = DIMFeaturizer(fitted_pretrainer)
    featurizer.set_n_jobs(8)
    assert featurizer.n_jobs == 1
    assert any("10.1039/D4DD00202D" in c for c in featurizer.citations())
    assert featurizer.implementors()
    fitted_pretrainer.save(tmp_path / "dim")
    from_path = DIMFeaturizer(str(tmp_path / "dim")).fit(small[0])
    assert from_path.transform(small[0].tolist()).shape == (len(small[0]), 128)


def test_fit_pretrains_without_labels(small):
    structures, _ = small
    featurizer = DIMFeaturizer(pretrainer_params={"max_epochs": 1, "random_state": 0})
    featurizer.fit(structures.tolist())
    assert featurizer.transform(structures.tolist()).shape == (len(structures), 128)
    with pytest.raises(ValueError, match="no pretrained model"):
        DIMFeaturizer().featurize(structures.iloc[0])


# ---------------------------------------------------------- SiteStatsFeaturizer
def test_site_stats_featurize_dataframe_matches_the_transformer(small):
    from skdim import SiteFeatureStats
    from skdim.matminer import SiteStatsFeaturizer

    structures, _ = small
    frame = pd.DataFrame({"structure": structures.tolist()}, index=structures.index)
    featurizer = SiteStatsFeaturizer()
    out = featurizer.featurize_dataframe(frame, "structure", pbar=False)
    labels = featurizer.feature_labels()
    assert labels[0] == "skdim_mean_Number" and len(labels) == 32
    expected = SiteFeatureStats().fit_transform(structures)
    np.testing.assert_array_equal(out[labels].to_numpy(), expected)
    assert featurizer.featurize(structures.iloc[3]) == expected[3].tolist()
    assert featurizer.fit(structures.tolist()) is featurizer  # nothing to fit
    narrow = SiteStatsFeaturizer(site_properties=("Number",))
    assert narrow.transform(structures.tolist()).shape == (len(structures), 4)


def test_site_stats_errors_are_ignored_and_returned(small):
    from skdim.matminer import SiteStatsFeaturizer

    structures, _ = small
    entries = [structures.iloc[0], "not a structure", structures.iloc[1]]
    featurizer = SiteStatsFeaturizer()
    with pytest.raises(TypeError, match=r"structures\[1\]"):
        featurizer.featurize_many(entries, pbar=False)
    with pytest.raises(ValueError, match="ignore_errors"):
        featurizer.featurize_many(entries, return_errors=True, pbar=False)
    rows = featurizer.featurize_many(entries, ignore_errors=True, return_errors=True, pbar=False)
    assert np.isnan(rows[1][:-1]).all() and "not a pymatgen Structure" in rows[1][-1]
    assert np.isfinite(rows[0][:-1]).all() and rows[0][-1] == ""
    assert featurizer.featurize_many([], pbar=False) == []


def test_site_stats_contract():
    from skdim.matminer import SiteStatsFeaturizer

    featurizer = SiteStatsFeaturizer()
    citations = featurizer.citations()
    assert any("10.1039/D3DD00005B" in c for c in citations)
    assert any("10.1038/npjcompumats.2016.28" in c for c in citations)
    assert featurizer.implementors()
    assert featurizer.get_params() == {
        "site_properties": featurizer.site_properties,
        "max_sites": 500,
    }
