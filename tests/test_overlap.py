"""Shared structures between data sets, and the label-clean pretraining selection."""

import gzip
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from skdim.overlap import shared_structures, structure_key

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ROOT / "benchmarks" / "pretraining" / "ids.json"


def test_copies_in_other_cells_match_and_other_materials_do_not(mp100):
    structures, _ = mp100
    original = structures.iloc[0]
    supercell = original * (2, 1, 1)
    strained = original.copy()
    strained.scale_lattice(original.volume * 1.03)
    others = [s for s in structures.iloc[1:] if structure_key(s) != structure_key(original)]
    candidates = [others[0], supercell, others[1], strained]
    assert shared_structures(candidates, [original]) == [1, 3]


def test_same_formula_other_structure_does_not_match(nacl):
    from pymatgen.core import Lattice, Structure

    cscl_type = Structure(Lattice.cubic(3.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_key(cscl_type) == structure_key(nacl)
    assert shared_structures([cscl_type], [nacl]) == []


def _fold0(data_home):
    with gzip.open(data_home / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        return set(json.load(handle)["folds"]["fold_0"]["test"])


def test_pretraining_selection_is_fold0_training_minus_the_excluded(data_home):
    selection = json.loads(SELECTION.read_text())
    pretrain, excluded = set(selection["pretrain"]), set(selection["excluded"])
    assert len(pretrain) >= 70_000
    assert not pretrain & excluded
    assert not pretrain & _fold0(data_home)  # never a matbench test structure
    assert len(pretrain) + len(excluded) == selection["n_fold0_train"]


@pytest.mark.slow
def test_no_mp36k_test_structure_is_in_the_pretraining_set(data_home):
    """A sample of the eform test split: no pretraining structure of its formula matches it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from label_masking import _train_test_ids

    from skdim.datasets import load_structures_csv

    selection = json.loads(SELECTION.read_text())
    _, test = _train_test_ids("eform", data_home, np.random.default_rng(0))
    assert len(test) == selection["n_eform_test"]
    sample = sorted(np.random.default_rng(7).choice(test, 60, replace=False).tolist())
    tests, _ = load_structures_csv(data_home / "mp36k.csv.gz", id_col="mp_id", ids=sample)
    formulas = {structure_key(s) for s in tests}
    frame = pd.read_csv(data_home / "matbench_mp_gap.csv.gz", usecols=["matbench_id", "cif"])
    frame = frame[frame.matbench_id.isin(set(selection["pretrain"]))]
    pattern = re.compile(r"_chemical_formula_sum\s+'?([^'\n]+)'?")
    formula = frame.cif.map(lambda t: Composition(pattern.search(t).group(1)).reduced_formula)
    candidates = frame.matbench_id[formula.isin(formulas)].tolist()
    assert candidates, "the sample shares no formula with the pretraining set: a weak test"
    structures, _ = load_structures_csv(
        data_home / "matbench_mp_gap.csv.gz", id_col="matbench_id", ids=candidates
    )
    assert shared_structures(structures.tolist(), tests.tolist()) == []
