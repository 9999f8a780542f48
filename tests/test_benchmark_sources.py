"""Extra arms of the label-masking benchmark: CHGNet features and the transfer source.

benchmarks/chgnet_features.py and benchmarks/transfer_source.py are scripts of
the source repository, imported here from benchmarks/ as tests/test_benchmark.py
does.
"""

import gzip
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import chgnet_features as chg  # noqa: E402 (scripts of benchmarks/, not of the package)
import transfer_source as ts  # noqa: E402

needs_chgnet = pytest.mark.skipif(
    importlib.util.find_spec("chgnet") is None,
    reason="CHGNet features need chgnet (the [benchmark] extra)",
)


@pytest.fixture(scope="module")
def six(mp100):
    """Six small real structures indexed by id."""
    structures, _ = mp100
    keep = [i for i, s in enumerate(structures) if len(s) <= 12][:6]
    return structures.iloc[keep]


def _isolated_atom() -> Structure:
    """One H atom in a 20 Angstrom box: no neighbour within CHGNet's cutoff."""
    return Structure(Lattice.cubic(20.0), ["H"], [[0, 0, 0]])


# ---------------------------------------------------------------- CHGNet
@needs_chgnet
def test_chgnet_features_shape_finite_and_cache_reuse(six, tmp_path, monkeypatch):
    path = tmp_path / "chgnet.npz"
    frame, seconds = chg.chgnet_features(six, path, batch_size=4)
    assert frame.shape == (6, 64)
    assert list(frame.index) == list(six.index)
    assert list(frame.columns) == [f"chgnet_{k}" for k in range(64)]
    assert np.isfinite(frame.to_numpy()).all()
    assert frame.to_numpy().std(axis=0).max() > 0  # not a constant vector
    assert seconds > 0 and path.exists()

    calls = []
    compute = chg._chunk_features
    monkeypatch.setattr(
        chg,
        "_chunk_features",
        lambda model, chunk, *a: calls.append(chunk) or compute(model, chunk, *a),
    )
    again, seconds_again = chg.chgnet_features(six.iloc[::-1], path)  # same ids, new order
    assert calls == [] and seconds_again == seconds
    pd.testing.assert_frame_equal(again, frame.iloc[::-1], check_exact=False, rtol=1e-6)

    # a subset: nothing computed; new ids: only they are computed and the seconds add up
    sub, _ = chg.chgnet_features(six.iloc[:2], path)
    assert calls == [] and list(sub.index) == list(six.index[:2])
    extra = pd.Series([_cubic("Na", "Cl", 5.6)], index=["rocksalt"])
    bigger, seconds_bigger = chg.chgnet_features(pd.concat([six, extra]), path)
    assert calls == [["rocksalt"]]
    assert seconds_bigger > seconds
    np.testing.assert_allclose(bigger.iloc[:6].to_numpy(), frame.to_numpy(), rtol=1e-6)


def _cubic(a: str, b: str, size: float) -> Structure:
    return Structure(Lattice.cubic(size), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


@needs_chgnet
def test_chgnet_failure_is_a_nan_row_with_a_warning(six, tmp_path):
    structures = pd.concat([six.iloc[:3], pd.Series([_isolated_atom()], index=["lonely-h"])])
    path = tmp_path / "chgnet.npz"
    with pytest.warns(RuntimeWarning, match="lonely-h"):
        frame, _ = chg.chgnet_features(structures, path)
    assert frame.loc["lonely-h"].isna().all()
    assert np.isfinite(frame.iloc[:3].to_numpy()).all()
    with pytest.warns(RuntimeWarning, match="lonely-h"):  # also when read from the cache
        cached, _ = chg.chgnet_features(structures, path)
    assert cached.loc["lonely-h"].isna().all()
    extra = pd.Series([_cubic("Na", "Cl", 5.6)], index=["rocksalt"])
    with pytest.warns(RuntimeWarning, match="lonely-h"):  # with new ids to compute too
        chg.chgnet_features(pd.concat([structures, extra]), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the good ids alone: no warning
        chg.chgnet_features(structures.iloc[:3], path)


@needs_chgnet
def test_chgnet_failure_inside_a_batch_spares_the_rest(six, tmp_path, monkeypatch):
    reference, _ = chg.chgnet_features(six, tmp_path / "reference.npz", batch_size=6)
    bad_id = six.index[2]
    bad = six.iloc[2].composition.formula
    assert sum(s.composition.formula == bad for s in six) == 1
    predict = chg._predict

    def failing(model, graphs):
        if any(g.composition == bad for g in graphs):
            raise RuntimeError("boom")
        return predict(model, graphs)

    monkeypatch.setattr(chg, "_predict", failing)
    with pytest.warns(RuntimeWarning, match=f"{bad_id}.*boom"):
        frame, _ = chg.chgnet_features(six, tmp_path / "chgnet.npz", batch_size=6)
    assert frame.loc[bad_id].isna().all()
    good = [i for i in six.index if i != bad_id]
    np.testing.assert_allclose(frame.loc[good], reference.loc[good], rtol=1e-4, atol=1e-5)


@needs_chgnet
def test_chgnet_refuses_duplicates_and_other_versions(six, tmp_path):
    with pytest.raises(ValueError, match=repr(six.index[0])):
        chg.chgnet_features(pd.concat([six, six.iloc[:1]]), tmp_path / "a.npz")
    path = tmp_path / "old.npz"
    chg._write_cache(path, ["x"], np.zeros((1, 64)), {"chgnet_version": "0.3.0"})
    with pytest.raises(ValueError, match="old.npz"):
        chg.chgnet_features(six, path)
    meta = {"chgnet_version": chg.CHGNET_VERSION, "chgnet_model": chg.CHGNET_MODEL}
    chg._write_cache(path, ["x"], np.zeros((1, 64)), meta)
    with np.load(path, allow_pickle=False) as data:  # plain arrays, no pickles
        assert json.loads(str(data["metadata"]))["chgnet_model"] == "0.3.0"


# ------------------------------------------------------- transfer source
# Found by matching with skdim.overlap.shared_structures (seed 0 walks): the
# mp36k training structures at walk positions 1 and 10 (source of target
# "gap") are these mp_gap fold-0 test structures; the mp_gap fold-0 training
# structure at walk position 4 (source of target "eform") is mp36k test
# structure mp-12535.
GAP_TEST_TWINS = {"mb-mp-gap-083612": "mp-21689", "mb-mp-gap-061965": "mp-570734"}


@pytest.fixture(scope="module")
def gap_source(data_home, tmp_path_factory):
    """A tiny transfer source for target gap: 12 mp36k structures, 4 steps."""
    cache = tmp_path_factory.mktemp("transfer")
    folder, cost = ts.transfer_source(
        "gap", data_home, cache, list(GAP_TEST_TWINS), max_structures=12, max_steps=4
    )
    return cache, folder, cost


def test_transfer_source_excludes_the_target_test_structures(gap_source, data_home, tmp_path):
    cache, _, cost = gap_source
    selection = json.loads((cache / "gap_transfer_source_ids.json").read_text())
    assert selection["source"] == "eform" and selection["source_label"] == "e_form_per_atom"
    assert selection["excluded"] == ["mp-21689", "mp-570734"]
    assert cost["n_excluded"] == 2 and cost["n_screened"] == 14
    assert len(selection["ids"]) == 12 == len(set(selection["ids"]))
    assert not set(selection["ids"]) & set(selection["excluded"])
    # the source comes from the mp36k training split only
    from label_masking import _train_test_ids

    train, test = _train_test_ids("eform", data_home, np.random.default_rng(0))
    assert set(selection["ids"]) <= set(train) and not set(selection["ids"]) & set(test)
    labels = pd.read_csv(data_home / "mp36k.csv.gz", usecols=["mp_id", "e_form_per_atom"])
    labels = labels.set_index("mp_id")["e_form_per_atom"]
    np.testing.assert_allclose(selection["y"], labels.loc[selection["ids"]])
    # control: without its twin among the target test ids, mp-21689 is kept
    control, _ = ts.select_source(
        "gap", data_home, tmp_path, ["mb-mp-gap-061965"], max_structures=12
    )
    assert control["excluded"] == ["mp-570734"]
    assert "mp-21689" in control["ids"] and control["ids"][:12] == control["ids"]


def test_transfer_source_for_eform_excludes_mp36k_test_twins(data_home, tmp_path):
    selection, structures = ts.select_source("eform", data_home, tmp_path, ["mp-12535"], 5)
    assert selection["source"] == "gap" and selection["source_label"] == "gap_pbe"
    assert selection["excluded"] == ["mb-mp-gap-088460"]
    assert selection["n_screened"] == 6 and len(selection["ids"]) == 5
    with gzip.open(data_home / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        fold0_test = set(json.load(handle)["folds"]["fold_0"]["test"])
    assert not set(selection["ids"]) & fold0_test
    assert list(structures.index) == selection["ids"]


def test_transfer_source_cache_is_reused_or_refused(gap_source, data_home, monkeypatch):
    cache, folder, cost = gap_source
    monkeypatch.setattr(ts, "_parse", _fail)
    from skdim import SiteNetRegressor

    monkeypatch.setattr(SiteNetRegressor, "fit", _fail)
    # a subset of the screened test ids: everything comes from the cache
    again_folder, again = ts.transfer_source(
        "gap", data_home, cache, ["mb-mp-gap-083612"], max_structures=12, max_steps=4
    )
    assert again_folder == folder and again == cost
    with pytest.raises(ValueError, match="mb-mp-gap-000001"):
        ts.transfer_source("gap", data_home, cache, ["mb-mp-gap-000001"], 12, 4)
    with pytest.raises(ValueError, match="max_structures=12"):
        ts.transfer_source("gap", data_home, cache, list(GAP_TEST_TWINS), 13, 4)
    with pytest.raises(ValueError, match="max_steps=4"):
        ts.transfer_source("gap", data_home, cache, list(GAP_TEST_TWINS), 12, 5)


def _fail(*args, **kwargs):
    raise AssertionError("computed again instead of read from the cache")


def test_transfer_source_model_fine_tunes_from_its_folder(gap_source, small):
    from skdim import SiteNetRegressor

    _, folder, cost = gap_source
    assert (folder / "config.json").exists()
    assert cost["source_task"] == "eform" and cost["n_structures"] == 12
    assert cost["max_steps"] == 4 and cost["steps"] == 4 and cost["fit_s"] > 0
    assert cost["featurize_s"] > 0 and cost["select_s"] > 0
    source = SiteNetRegressor.load(folder)
    assert source.featurization_["max_atoms"] == 50
    structures, labels = small
    X, y = structures.iloc[:10], labels["band_gap"].iloc[:10]
    # learning rate 0: the fine-tuned encoder keeps exactly the source's weights
    frozen = SiteNetRegressor(
        pretrained=folder, lr=0.0, lr_schedule="constant", max_steps=1, verbose=0, random_state=0
    ).fit(X, y)
    start, kept = source.module_.encoder.state_dict(), frozen.module_.encoder.state_dict()
    assert start.keys() == kept.keys()
    assert all(torch.equal(start[k], kept[k]) for k in start)
    scratch = SiteNetRegressor(lr=0.0, lr_schedule="constant", max_steps=1, verbose=0)
    scratch.fit(X, y)
    assert not all(
        torch.equal(start[k], v) for k, v in scratch.module_.encoder.state_dict().items()
    )
    tuned = SiteNetRegressor(pretrained=folder, max_steps=3, verbose=0, random_state=0).fit(X, y)
    assert np.isfinite(tuned.predict(structures.iloc[10:14])).all()
