"""Shared parts of the matminer adapters: entries, batched rows, errors, citations."""

from __future__ import annotations

import traceback
from typing import Any

import numpy as np
import pandas as pd

from skdim.featurize import featurize

SITENET_BIBTEX = (
    "@article{moran2023sitenet, title={Site-Net: using global self-attention and "
    "real-space supercells to capture long-range interactions in crystal structures}, "
    "author={Moran, Michael and Gaultois, Michael W and Gusev, Vladimir V and "
    "Rosseinsky, Matthew J}, journal={Digital Discovery}, volume={2}, "
    "pages={1297--1310}, year={2023}, doi={10.1039/D3DD00005B}}"
)


def check_flags(ignore_errors: bool, return_errors: bool) -> None:
    """Refuse ``return_errors`` without ``ignore_errors``, as matminer does."""
    if return_errors and not ignore_errors:
        raise ValueError("Please set ignore_errors to True to use return_errors")


def entries_of(entries: Any) -> list:
    """Structures from what matminer passes: list, Series, 2-D array, DataFrame, 1-tuples."""
    if isinstance(entries, pd.DataFrame):
        entries = entries.iloc[:, 0]
    if isinstance(entries, pd.Series):
        return entries.tolist()
    if isinstance(entries, np.ndarray) and entries.ndim == 2:
        return list(entries[:, 0])
    return [e[0] if isinstance(e, (tuple, list, np.ndarray)) else e for e in entries]


def batched_rows(
    structures: list,
    settings: dict,
    transform: Any,
    width: int,
    *,
    ignore_errors: bool,
    return_errors: bool,
    pbar: Any,
) -> list[list]:
    """``transform`` of the featurized structures in one call; NaN rows for failures.

    Parameters
    ----------
    structures : list
        Structures to featurize with ``settings`` (keyword arguments of
        :func:`skdim.featurize.featurize`).
    settings : dict
        Featurization settings.
    transform : callable
        Featurized inputs to an array of ``width`` columns.
    width : int
        Number of features.
    ignore_errors, return_errors, pbar
        As in matminer's ``featurize_many``.

    Returns
    -------
    list of lists
        One row per structure (with its error message last with
        ``return_errors``).
    """
    inputs = featurize(
        structures,
        progress=bool(pbar),
        on_error="skip" if ignore_errors else "raise",
        **settings,
    )
    errors = [""] * len(structures)
    for i, x in enumerate(inputs):
        if x is None:
            errors[i] = error_of(structures[i], settings)
    valid = [i for i, x in enumerate(inputs) if x is not None]
    rows = np.full((len(structures), width), np.nan)
    if valid:
        rows[valid] = transform([inputs[i] for i in valid])
    result = rows.tolist()
    if return_errors:
        result = [row + [error] for row, error in zip(result, errors)]
    return result


def error_of(structure: Any, settings: dict) -> str:
    """The error message featurizing one structure raises."""
    try:
        featurize([structure], **settings)
    except (TypeError, ValueError):
        return traceback.format_exc(limit=0).strip()
    return ""
