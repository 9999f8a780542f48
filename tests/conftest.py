"""Shared fixtures: real structures from ../shared/data and tiny ones built in code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SKDIM_DATA", str(ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def seeds_fixed():
    np.random.seed(0)  # noqa: NPY002 (tests that forget a seed stay repeatable)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_home() -> Path:
    path = Path(os.environ["SKDIM_DATA"])
    if not path.is_dir():
        message = f"shared data not found at {path} (set SKDIM_DATA)"
        if os.environ.get("CI", "").lower() == "true":  # in CI, missing data is a failure
            pytest.fail(message + "; CI=true: the data tests must run", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def mp100(data_home):
    """The 100 Materials Project structures and their labels."""
    from skdim.datasets import load_structures_csv

    return load_structures_csv(data_home / "mp100.csv.gz")


@pytest.fixture(scope="session")
def demo3k(data_home):
    """The 3,000-structure demo set (structures, labels)."""
    from skdim.datasets import load_structures_csv

    return load_structures_csv(data_home / "mp36k_demo3k.csv.gz", n_jobs=2)


@pytest.fixture(scope="session")
def nacl() -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


@pytest.fixture(scope="session")
def toy_structures(nacl) -> list[Structure]:
    """A handful of small, varied crystals built in code."""
    cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    zno = Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.25, 5.2),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]],
    )
    li2o = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )
    return [nacl, cscl, si, zno, li2o]


#: Small, fast settings shared by estimator tests.
FAST = {"max_epochs": 2, "batch_pairs": 8000, "verbose": 0, "random_state": 0}


@pytest.fixture(scope="session")
def small(mp100):
    """40 small real structures (<= 20 sites) with formation energies and gaps."""
    structures, labels = mp100
    keep = [i for i, s in enumerate(structures) if len(s) <= 20][:40]
    return structures.iloc[keep], labels.iloc[keep]


@pytest.fixture(scope="session")
def fitted_pretrainer(small):
    from skdim import DIMPretrainer

    structures, _ = small
    return DIMPretrainer(**FAST).fit(structures)


@pytest.fixture(scope="session")
def fitted_regressor(small):
    from skdim import SiteNetRegressor

    structures, labels = small
    return SiteNetRegressor(**FAST).fit(structures, labels["e_form_per_atom"])
