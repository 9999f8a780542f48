"""Loaders of skdim.datasets on the real files in ../shared/data, and the feature cache."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Structure

from skdim.datasets import (
    get_data_home,
    load_featurized,
    load_matbench_mp_gap,
    load_structure_folder,
    load_structures_csv,
    save_featurized,
)
from skdim.featurize import featurize

BAD_CIF = "data_broken\n_cell_length_a 4.0\nthis is not a CIF\n"


def test_mp100(mp100, data_home):
    structures, targets = mp100
    raw = pd.read_csv(data_home / "mp100.csv.gz")
    assert len(structures) == 100 and structures.index.name == "mp_id"
    assert list(structures.index) == list(raw["mp_id"])
    assert all(isinstance(s, Structure) for s in structures)
    assert list(targets.columns) == ["e_form_per_atom", "band_gap"]
    np.testing.assert_array_equal(targets["band_gap"], raw["band_gap"])
    assert list(targets.index) == list(structures.index)
    first = Structure.from_str(raw["cif"][0], fmt="cif")
    assert structures.iloc[0].composition == first.composition
    assert structures.iloc[0].lattice.abc == pytest.approx(first.lattice.abc)
    X, y = load_structures_csv(data_home / "mp100.csv.gz", target="e_form_per_atom")
    assert isinstance(y, pd.Series) and y.name == "e_form_per_atom"
    np.testing.assert_array_equal(y, raw["e_form_per_atom"])


def test_csv_subset_by_ids(data_home):
    path = data_home / "mp36k_demo3k.csv.gz"
    raw = pd.read_csv(path).set_index("mp_id")
    ids = list(raw.index[[2999, 5, 1000]])  # any order is kept
    X, y = load_structures_csv(path, target=["band_gap", "volume"], ids=ids)
    assert list(X.index) == ids and list(y.index) == ids
    np.testing.assert_array_equal(y["volume"], raw.loc[ids, "volume"])
    for mp_id, s in X.items():
        assert s.volume == pytest.approx(raw.loc[mp_id, "volume"], rel=1e-3)
    X, _ = load_structures_csv(path, id_col="id", ids=[6, 18])
    assert list(X.index) == [6, 18]


def test_csv_errors(data_home, tmp_path):
    path = data_home / "mp100.csv.gz"
    with pytest.raises(ValueError, match="no column 'structure'"):
        load_structures_csv(path, structure_col="structure")
    with pytest.raises(ValueError, match="no id column 'nope'"):
        load_structures_csv(path, id_col="nope")
    with pytest.raises(KeyError, match="unknown ids.*mp-0"):
        load_structures_csv(path, ids=["mp-0", "mp-1"])
    with pytest.raises(KeyError, match="nope"):
        load_structures_csv(path, target="nope")
    raw = pd.read_csv(path).head(3)
    raw.loc[1, "cif"] = BAD_CIF
    bad = tmp_path / "bad.csv"
    raw.to_csv(bad, index=False)
    with pytest.raises(ValueError, match=f"could not parse structure '{raw.mp_id[1]}'"):
        load_structures_csv(bad)
    raw.loc[2, "mp_id"] = raw.loc[0, "mp_id"]
    raw.to_csv(bad, index=False)
    with pytest.raises(ValueError, match="not unique"):
        load_structures_csv(bad)


def test_cif_folder(data_home):
    X, y = load_structure_folder(data_home / "cod_cif10")
    table = pd.read_csv(data_home / "cod_cif10" / "id_prop.csv", header=None, dtype={0: str})
    assert len(X) == 10 and list(X.index) == list(table[0])
    assert list(y.index) == list(X.index)
    np.testing.assert_array_equal(y, np.arange(1.0, 11.0))  # the dummy labels
    assert all(isinstance(s, Structure) and len(s) > 0 for s in X)
    first = Structure.from_file(data_home / "cod_cif10" / f"{X.index[0]}.cif")
    assert X.iloc[0].composition == first.composition


def test_poscar_folder(data_home):
    folder = data_home / "jarvis_poscar50"
    X, y = load_structure_folder(folder)
    table = pd.read_csv(folder / "id_prop.csv", header=None)
    assert len(X) == len(y) == 50
    # ids are file names without the extension, though id_prop.csv names the files
    assert list(X.index) == [name.removesuffix(".vasp") for name in table[0]]
    assert X.index[0].startswith("POSCAR-JVASP-") and list(y.index) == list(X.index)
    np.testing.assert_allclose(y, table[1])
    for name in X.index[:5]:
        assert X[name].composition == Structure.from_file(folder / f"{name}.vasp").composition
    without, _ = load_structure_folder(folder, id_prop=None)  # every file, the same ids
    assert set(X.index) <= set(without.index)


def test_folder_without_id_prop_and_errors(data_home, tmp_path):
    for name in sorted(p.name for p in (data_home / "cod_cif10").glob("*.cif"))[:3]:
        shutil.copy(data_home / "cod_cif10" / name, tmp_path / name)
    X, y = load_structure_folder(tmp_path, id_prop=None)
    assert y is None and list(X.index) == sorted(p.stem for p in tmp_path.glob("*.cif"))
    (tmp_path / "id_prop.csv").write_text(f"{X.index[1]}.cif,2.0\n{X.index[0]},1.0\n")
    with_labels, y = load_structure_folder(tmp_path)  # the same ids, either way named
    assert list(with_labels.index) == [X.index[1], X.index[0]] and list(y) == [2.0, 1.0]
    shutil.copy(tmp_path / f"{X.index[0]}.cif", tmp_path / f"{X.index[0]}.vasp")
    with pytest.raises(ValueError, match="several files have the id"):
        load_structure_folder(tmp_path, id_prop=None)
    (tmp_path / f"{X.index[0]}.vasp").unlink()
    (tmp_path / "broken.cif").write_text(BAD_CIF)
    (tmp_path / "id_prop.csv").write_text(f"{X.index[0]},1.0\nbroken,2.0\n")
    with pytest.raises(ValueError, match="could not parse structure 'broken.cif'"):
        load_structure_folder(tmp_path)
    (tmp_path / "id_prop.csv").write_text("missing,1.0\n")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_structure_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_structure_folder(tmp_path / "nope")


@pytest.fixture(scope="module")
def mp_gap_folds(data_home):
    with gzip.open(data_home / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        return json.load(handle)["folds"]


@pytest.mark.parametrize("fold", [3])
def test_matbench_mp_gap_fold(data_home, mp_gap_folds, fold):
    X_train, y_train, X_test, y_test = load_matbench_mp_gap(
        data_home, fold=fold, n_train=40, n_test=20, random_state=fold
    )
    assert (len(X_train), len(y_train), len(X_test), len(y_test)) == (40, 40, 20, 20)
    test_list = set(mp_gap_folds[f"fold_{fold}"]["test"])
    assert set(X_test.index) <= test_list
    assert not set(X_train.index) & test_list  # train: the other folds
    assert not set(X_train.index) & set(X_test.index)
    assert list(y_train.index) == list(X_train.index) and list(y_test.index) == list(X_test.index)
    assert all(i.startswith("mb-mp-gap-") for i in X_train.index)
    assert (y_train >= 0).all() and (y_test >= 0).all()
    # row i holds matbench_id mb-mp-gap-{i+1:06d}: check the labels against the file
    gaps = pd.read_csv(data_home / "matbench_mp_gap.csv.gz", usecols=["gap_pbe"])["gap_pbe"]
    rows = [int(i.rsplit("-", 1)[1]) - 1 for i in y_test.index]
    np.testing.assert_array_equal(y_test, gaps.iloc[rows])
    again = load_matbench_mp_gap(data_home, fold=fold, n_train=40, n_test=20, random_state=fold)
    assert list(again[0].index) == list(X_train.index)  # seeded


def test_matbench_fold_error(data_home):
    with pytest.raises(ValueError, match="fold must be one of 0-4"):
        load_matbench_mp_gap(data_home, fold=5, n_train=1, n_test=1)


def test_get_data_home(data_home, monkeypatch, tmp_path):
    assert get_data_home(data_home) == data_home
    monkeypatch.setenv("SKDIM_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_data_home(tmp_path / "missing")
    monkeypatch.setenv("SKDIM_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_data_home()
    monkeypatch.delenv("SKDIM_DATA")
    with pytest.raises(FileNotFoundError, match="SKDIM_DATA"):
        get_data_home()


def test_featurized_round_trip(mp100, tmp_path):
    structures = mp100[0].iloc[:15]
    inputs = featurize(structures, max_atoms=50, pair_features=("distance", "coulomb"))
    metadata = {"ids": list(structures.index), "max_atoms": 50, "note": "round trip"}
    path = tmp_path / "features.npz"
    save_featurized(path, inputs, **metadata)
    loaded, meta = load_featurized(path)
    assert meta == metadata and len(loaded) == len(inputs)
    for a, b in zip(inputs, loaded):
        assert a.n_images == b.n_images and isinstance(b.n_images, int)
        for u, v in zip(a[:4], b[:4]):
            assert u.dtype == v.dtype and u.shape == v.shape
            assert u.tobytes() == v.tobytes()  # bit-identical
    with pytest.raises(ValueError, match="None"):
        save_featurized(tmp_path / "skipped.npz", [inputs[0], None])
