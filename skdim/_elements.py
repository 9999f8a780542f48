"""Elemental property table (Magpie data) for site features.

The table ``magpie_elements.csv`` is built once from matminer's Magpie data by
``tools/build_element_table.py``. Missing values are filled with the mean of
that property over the elements that have one, which is what matminer's
``MagpieData(impute_nan=True)`` (and so ``SiteElementalProperty``) does; a
feature is therefore never NaN.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np

#: The 8 Magpie properties of the original Site-Net, in its order.
DEFAULT_SITE_PROPERTIES = (
    "Number",
    "AtomicWeight",
    "Row",
    "Column",
    "FirstIonizationEnergy",
    "Electronegativity",
    "AtomicRadius",
    "Density",
)

#: Largest atomic number with data.
MAX_Z = 118


@lru_cache(maxsize=1)
def _full_table() -> tuple[tuple[str, ...], np.ndarray]:
    with files("skdim").joinpath("magpie_elements.csv").open() as handle:
        header = handle.readline().strip().split(",")
        rows = [line.rstrip("\n").split(",") for line in handle]
    names = tuple(header[2:])  # skip Z, symbol
    values = np.array([[float(v) if v else np.nan for v in r[2:]] for r in rows])
    values = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
    table = np.vstack([np.full(len(names), np.nan), values])  # row index = Z
    return names, table


def available_properties() -> tuple[str, ...]:
    """Names of all Magpie elemental properties that can be used as site features.

    Returns
    -------
    tuple of str
        Property names, for the ``site_properties`` parameter of the
        featurization functions and the estimators.

    Examples
    --------
    >>> from skdim.featurize import available_properties
    >>> names = available_properties()
    >>> len(names), "Electronegativity" in names
    (64, True)
    """
    return _full_table()[0]


@lru_cache(maxsize=32)
def property_table(properties: tuple[str, ...]) -> np.ndarray:
    """Return a float64 array of shape (MAX_Z + 1, len(properties)) indexed by Z.

    Row 0 is NaN (no element); every other entry is finite.
    """
    names, table = _full_table()
    unknown = [p for p in properties if p not in names]
    if unknown:
        raise ValueError(
            f"unknown site properties {unknown}; choose from skdim.featurize."
            "available_properties()"
        )
    return table[:, [names.index(p) for p in properties]]
