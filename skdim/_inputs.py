"""Validation of what users pass as X and y to the estimators."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymatgen.core import IStructure
from torch.utils.data import Dataset

from skdim.featurize import SiteNetInput


def as_structures(X: Any) -> tuple[Any, str | None]:
    """Normalize X to a list-like of structures (or of SiteNetInputs).

    Accepts a list, tuple, 1-D object array or pandas Series of pymatgen
    Structures, a single-column DataFrame, or the same holding already
    featurized :class:`~skdim.featurize.SiteNetInput` records. A Series is
    returned as is so that its index labels appear in error messages.

    Returns
    -------
    items : list or pandas.Series
    column : str or None
        Column name when X was a single-column DataFrame.

    Raises
    ------
    TypeError, ValueError
        For a single Structure, a numeric array, a multi-column DataFrame,
        an empty X or mixed featurized and raw items.
    """
    column = None
    if isinstance(X, (IStructure, SiteNetInput)):
        raise TypeError("X must be a sequence of structures; wrap a single one in a list")
    if hasattr(X, "columns"):  # pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"X is a DataFrame with {X.shape[1]} columns; pass the structure column only "
                "(e.g. df[['structure']] or df['structure'])"
            )
        column = str(X.columns[0])
        X = X.iloc[:, 0]
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1 or X.dtype != object:
            raise TypeError(
                f"X is a numeric array of shape {X.shape}; skdim estimators take "
                "pymatgen Structures (a list, Series or 1-D object array)"
            )
        X = list(X)
    elif isinstance(X, (list, tuple)):
        X = list(X)
    elif not hasattr(X, "iloc"):
        raise TypeError(f"X must be a list, array or Series of structures, got {type(X)}")
    if len(X) == 0:
        raise ValueError("X is empty: need at least one structure")
    values = X.tolist() if hasattr(X, "iloc") else X
    featurized = [isinstance(x, SiteNetInput) for x in values]
    if any(featurized) and not all(featurized):
        raise TypeError("X mixes featurized inputs (SiteNetInput) and raw structures")
    return X, column


def is_featurized(items: Any) -> bool:
    """True when every item is a SiteNetInput."""
    values = items.tolist() if hasattr(items, "iloc") else items
    return len(values) > 0 and isinstance(values[0], SiteNetInput)


def is_torch_dataset(X: Any) -> bool:
    """True for any torch Dataset (passed through unchanged)."""
    return isinstance(X, Dataset)


def check_targets(y: Any, n_samples: int, *, numeric: bool = True) -> np.ndarray:
    """Targets as an array of length ``n_samples``; 2-D float32 when numeric.

    Raises
    ------
    ValueError
        If y is None, its length differs from X, or (numeric) it holds NaN
        or infinite values (the offending row indices are named).
    """
    if y is None:
        raise ValueError("y is required: this estimator is supervised")
    array = np.asarray(y)
    if len(array) != n_samples:
        raise ValueError(f"X has {n_samples} structures but y has {len(array)} values")
    if not numeric:
        return array
    array = array.astype(np.float32)
    array = array.reshape(n_samples, -1)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        labels = list(y.index[bad[:5]]) if hasattr(y, "index") else bad[:5].tolist()
        raise ValueError(f"y has {len(bad)} NaN or infinite values, at rows {labels}")
    return array
