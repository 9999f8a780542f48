"""Extra arms of the label-masking benchmark: CHGNet features and the transfer source.

benchmarks/chgnet_features.py and benchmarks/transfer_source.py are scripts of
the source repository, imported here from benchmarks/ as tests/test_benchmark.py
does.
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import chgnet_features as chg  # noqa: E402 (a script of benchmarks/, not of the package)

pytest.importorskip("chgnet", reason="CHGNet features need the [benchmark] extra")


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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the good ids alone: no warning
        chg.chgnet_features(structures.iloc[:3], path)


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
