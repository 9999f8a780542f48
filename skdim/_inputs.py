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
        an empty X, a None item (what ``featurize(on_error="skip")`` leaves
        for a skipped structure) or mixed featurized and raw items.
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
    missing = [i for i, x in enumerate(values) if x is None]
    if missing:
        i = missing[0]
        label = f" (id {X.index[i]!r})" if hasattr(X, "iloc") else ""
        more = f"; {len(missing)} items of X are None" if len(missing) > 1 else ""
        raise ValueError(
            f"X[{i}]{label} is None (a structure skipped by featurize(on_error='skip')): "
            f"drop it and its target{more}"
        )
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


def row_labels(y: Any, rows: np.ndarray) -> list:
    """Index labels of ``rows`` of y when it is a pandas object, else the positions."""
    if hasattr(y, "iloc"):
        return list(y.index[rows])
    return np.asarray(rows).tolist()


def align_targets(items: Any, y: Any) -> Any:
    """Targets in the order of X when both are pandas objects with the same labels.

    Parameters
    ----------
    items : list or pandas.Series
        What :func:`as_structures` returned for X.
    y : array-like, pandas Series or DataFrame, or None
        Targets.

    Returns
    -------
    y
        Unchanged unless both are pandas objects whose indices hold the same
        labels in another order: then y reordered to X's index.

    Raises
    ------
    ValueError
        If both are pandas objects and their indices hold different labels
        (a Series is never silently used by position).
    """
    if y is None or not hasattr(items, "iloc") or not hasattr(y, "iloc"):
        return y
    if items.index.equals(y.index):
        return y
    same = (
        len(items.index) == len(y.index)
        and items.index.is_unique
        and y.index.is_unique
        and set(items.index) == set(y.index)
    )
    if same:
        return y.loc[items.index]
    extra = [label for label in y.index if label not in set(items.index)][:3]
    absent = [label for label in items.index if label not in set(y.index)][:3]
    raise ValueError(
        "the index of y does not match the index of X (pandas objects are aligned by "
        f"label, never by position): labels of y not in X {extra}, of X not in y {absent}"
        + ("" if items.index.is_unique and y.index.is_unique else ", or duplicate labels")
        + "; pass y.loc[X.index], or y.to_numpy() to pair them by position"
    )


def check_targets(y: Any, n_samples: int, *, numeric: bool = True) -> np.ndarray:
    """Targets as an array of length ``n_samples``; 2-D float32 when numeric.

    Raises
    ------
    ValueError
        If y is None, its length differs from X, or (numeric) it has more
        than 2 dimensions or holds NaN or infinite values (the offending row
        indices are named).
    """
    if y is None:
        raise ValueError("y is required: this estimator is supervised")
    array = np.asarray(y)
    if array.ndim == 0:
        raise ValueError(f"y is a single value ({array.item()!r}); pass one target per structure")
    if len(array) != n_samples:
        raise ValueError(f"X has {n_samples} structures but y has {len(array)} values")
    if not numeric:
        return array
    if array.ndim > 2 or array.ndim == 2 and array.shape[1] == 0:
        raise ValueError(
            f"y has shape {array.shape}: it must be 1-D (n_samples,) or 2-D (n_samples, n_targets)"
        )
    if np.iscomplexobj(array):
        raise ValueError("y holds complex numbers: targets must be real")
    if array.dtype.kind not in "biuf":
        _check_numeric(y, array)
    too_large = np.abs(array.astype(np.float64)) > np.finfo(np.float32).max
    if too_large.any():
        rows = np.flatnonzero(too_large.reshape(n_samples, -1).any(axis=1))
        raise ValueError(
            f"y has values beyond float32's range (about 3.4e38), at rows "
            f"{row_labels(y, rows[:5])}: rescale the targets"
        )
    array = array.astype(np.float32)
    array = array.reshape(n_samples, -1)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        labels = row_labels(y, bad[:5])
        raise ValueError(f"y has {len(bad)} NaN or infinite values, at rows {labels}")
    return array


def _check_numeric(y: Any, array: np.ndarray) -> None:
    """Refuse targets that are not numbers (strings, objects), naming the first."""
    for row, value in enumerate(array.reshape(len(array), -1)):
        for item in value:
            item = item.item() if isinstance(item, np.generic) else item
            if isinstance(item, (complex, np.complexfloating)):
                raise ValueError(f"y holds complex numbers (row {row_labels(y, [row])[0]!r})")
            try:
                float(item)
            except (TypeError, ValueError):
                raise ValueError(
                    f"y holds {item!r} at row {row_labels(y, [row])[0]!r}, not a number: a "
                    "regressor needs numeric targets (for classes, use SiteNetClassifier)"
                ) from None
