"""SiteFeatureStats: Site-Net's input site features pooled over sites (no network).

The scikit-learn contract checks shared with the other estimators are in
tests/test_sklearn_api.py; the matminer adapter in tests/test_matminer.py.
"""

import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skdim import SiteFeatureStats
from skdim.featurize import DEFAULT_SITE_PROPERTIES, featurize, featurize_structure
from skdim.site_stats import site_feature_stats

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _former_input_stats(inputs: list) -> np.ndarray:
    """``benchmarks/_masking_features.py::input_stats`` before it called the package.

    Its body, verbatim: the reference the benchmark's reported numbers came from.
    """
    rows = []
    for x in inputs:
        sites = np.asarray(x.site_features, dtype=np.float64)
        rows.append(np.concatenate([sites.mean(0), sites.std(0), sites.min(0), sites.max(0)]))
    return np.asarray(rows, dtype=np.float32)


def test_same_numbers_as_the_former_benchmark_implementation(mp100):
    """Package and benchmark give the numbers the label-masking results were computed with."""
    sys.path.insert(0, str(BENCHMARKS))
    from _masking_features import input_stats

    structures, _ = mp100
    structures = structures.iloc[:48]
    inputs = featurize(structures, max_atoms=50)  # as the benchmark featurizes
    reference = _former_input_stats(inputs)
    assert reference.shape == (48, 32)
    table = SiteFeatureStats().fit_transform(structures)  # from the structures themselves
    assert table.dtype == np.float64
    np.testing.assert_array_equal(table.astype(np.float32), reference)
    from_inputs = SiteFeatureStats().fit_transform(inputs)
    np.testing.assert_array_equal(from_inputs, table)
    benchmark = input_stats(inputs)  # the benchmark's function, now the package's
    assert benchmark.dtype == np.float32
    np.testing.assert_array_equal(benchmark, reference)


def test_values_pool_every_site_of_the_primitive_cell(toy_structures):
    nacl, cscl, si, zno, li2o = toy_structures
    stats = SiteFeatureStats(site_properties=("Number",)).fit([li2o])
    # Li2O: primitive cell Li, Li, O (Z = 3, 3, 8): each site counts once
    z = np.array([3.0, 3.0, 8.0])
    expected = [[z.mean(), z.std(), 3.0, 8.0]]
    np.testing.assert_allclose(stats.transform([li2o]), expected)
    np.testing.assert_allclose(stats.transform([cscl]), [[36.0, 19.0, 17.0, 55.0]])
    table = SiteFeatureStats().fit_transform(toy_structures)
    assert table.shape == (5, 4 * len(DEFAULT_SITE_PROPERTIES))
    for row, structure in zip(table, toy_structures):
        sites = featurize_structure(structure).site_features.astype(np.float64)
        mean, std, low, high = np.split(row, 4)
        np.testing.assert_allclose(mean, sites.mean(0))
        np.testing.assert_allclose(std, sites.std(0))
        np.testing.assert_array_equal(low, sites.min(0))
        np.testing.assert_array_equal(high, sites.max(0))
    assert table[2, 8:16].max() == 0  # silicon: one element, no spread


def test_polymorphs_get_the_same_row(toy_structures):
    """A documented limit: the features depend on the composition alone."""
    wurtzite = toy_structures[3]
    rocksalt = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.28), ["Zn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    assert len(featurize_structure(wurtzite).atomic_numbers) == 4  # 2 formula units
    assert len(featurize_structure(rocksalt).atomic_numbers) == 2
    table = SiteFeatureStats().fit_transform([wurtzite, rocksalt])
    np.testing.assert_allclose(table[0], table[1], rtol=1e-12)


def test_input_forms_give_the_same_table(small):
    structures, _ = small
    stats = SiteFeatureStats()
    expected = stats.fit_transform(structures)
    np.testing.assert_array_equal(stats.transform(structures.tolist()), expected)
    np.testing.assert_array_equal(stats.transform(structures.to_numpy()), expected)
    np.testing.assert_array_equal(stats.transform(structures.to_frame("structure")), expected)
    other_supercell = featurize(structures, max_atoms=20, supercell="cubic")
    np.testing.assert_array_equal(stats.transform(other_supercell), expected)


def test_feature_names_and_pandas_output(small):
    structures, _ = small
    stats = SiteFeatureStats().fit(structures.to_frame("structure"))
    names = stats.get_feature_names_out()
    assert len(names) == 32 and len(set(names)) == 32
    assert names[0] == "mean_Number" and names[8] == "std_Number"
    assert names[-1] == "max_Density"
    assert stats.n_features_in_ == 1 and stats.feature_names_in_.tolist() == ["structure"]
    frame = stats.set_output(transform="pandas").transform(structures)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(names) and list(frame.index) == list(structures.index)
    assert not hasattr(SiteFeatureStats().fit(structures), "feature_names_in_")


def test_site_properties_choose_the_columns(small):
    structures, _ = small
    stats = SiteFeatureStats(site_properties=["Electronegativity", "Number"])
    table = stats.fit_transform(structures)
    assert table.shape == (len(structures), 8)
    assert stats.get_feature_names_out()[:2].tolist() == [
        "mean_Electronegativity",
        "mean_Number",
    ]
    default = SiteFeatureStats().fit_transform(structures)
    np.testing.assert_array_equal(table[:, 1], default[:, 0])  # mean atomic number


def test_bad_input_is_refused_naming_the_item(small, nacl):
    structures, _ = small
    good = structures.iloc[0]
    stats = SiteFeatureStats().fit([good])
    with pytest.raises(TypeError, match=r"structures\[1\] is a str, not a pymatgen Structure"):
        stats.transform([good, "not a structure", good])
    with pytest.raises(ValueError, match=r"X\[2\] is None"):
        stats.transform([good, good, None])
    squeezed = Structure(Lattice.cubic(4.0), ["Na", "Na"], [[0, 0, 0], [0, 0, 0.05]])
    series = pd.Series([good, squeezed], index=["mp-good", "mp-bad"])
    with pytest.raises(ValueError, match=r"structures\[1\] \(id 'mp-bad'\).*apart"):
        stats.transform(series)
    narrow = featurize([nacl], site_properties=("Number",))
    with pytest.raises(ValueError, match=r"featurized X\[0\] has 1 site features.*expects 8"):
        stats.transform(narrow)
    with pytest.raises(ValueError, match=r"featurized X\[0\] has 1 site features"):
        SiteFeatureStats().fit(narrow)
    with pytest.raises(TypeError, match="numeric array"):
        stats.transform(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="wrap a single one in a list"):
        stats.transform(good)
    with pytest.raises(ValueError, match="unknown site properties"):
        SiteFeatureStats(site_properties=("NoSuchProperty",)).fit([good])
    with pytest.raises(ValueError, match="max_sites"):
        SiteFeatureStats(max_sites=0).fit([good])
    big = structures.iloc[[i for i, s in enumerate(structures) if len(s) > 4][:1]]
    with pytest.raises(ValueError, match=r"structures\[0\].*> max_sites=2"):
        SiteFeatureStats(max_sites=2).fit_transform(big)
    with pytest.raises(NotFittedError):
        SiteFeatureStats().transform([good])
    with pytest.raises(ValueError, match=r"X\[1\] has 3 site features, X\[0\] has 2"):
        site_feature_stats([_Sites([[1, 2]]), _Sites([[1, 2, 3]])])
    with pytest.raises(ValueError, match=r"X\[0\]: site features must be a 2-D array"):
        site_feature_stats([_Sites(np.zeros((0, 2)))])


class _Sites:
    def __init__(self, sites):
        self.site_features = np.asarray(sites, dtype=np.float32)


def test_clone_params_and_persistence(small, tmp_path):
    structures, _ = small
    stats = SiteFeatureStats(site_properties=("Number", "Row"), n_jobs=1)
    assert stats.get_params() == {
        "site_properties": ("Number", "Row"),
        "max_sites": 500,
        "n_jobs": 1,
    }
    stats.fit(structures)
    copy = clone(stats)
    assert not hasattr(copy, "site_properties_")
    assert copy.get_params() == stats.get_params()
    copy.set_params(site_properties=("Number",))
    assert copy.fit_transform(structures).shape == (len(structures), 4)
    assert stats.transform(structures).shape == (len(structures), 8)  # the original unchanged
    joblib.dump(stats, tmp_path / "stats.joblib")
    loaded = joblib.load(tmp_path / "stats.joblib")
    np.testing.assert_array_equal(loaded.transform(structures), stats.transform(structures))
    again = pickle.loads(pickle.dumps(stats))
    assert again.get_feature_names_out().tolist() == stats.get_feature_names_out().tolist()


def test_set_params_after_fit_needs_a_refit(small):
    structures, _ = small
    stats = SiteFeatureStats().fit(structures)
    stats.set_params(site_properties=("Number",))
    assert stats.transform(structures).shape[1] == 32  # the fitted properties
    assert stats.fit(structures).transform(structures).shape[1] == 4


def test_pipelines_with_forest_and_ridge_cross_validate(small):
    structures, labels = small
    y = labels["e_form_per_atom"]
    cv = KFold(4, shuffle=True, random_state=0)
    forest = make_pipeline(SiteFeatureStats(), RandomForestRegressor(20, random_state=0))
    ridge = make_pipeline(SiteFeatureStats(), StandardScaler(), RidgeCV(np.logspace(-3, 3, 13)))
    for model in (forest, ridge):
        scores = -cross_val_score(model, structures, y, cv=cv, scoring="neg_mean_absolute_error")
        assert scores.shape == (4,) and np.isfinite(scores).all()
        # better than predicting the training mean: the features carry signal
        mean_mae = np.mean(
            [np.abs(y.iloc[te] - y.iloc[tr].mean()).mean() for tr, te in cv.split(structures)]
        )
        assert scores.mean() < mean_mae
    forest.fit(structures, y)
    assert forest[:-1].get_feature_names_out()[0] == "mean_Number"
