"""Pair channels: the names that can be asked for and the channels beyond distance."""

from __future__ import annotations

import numpy as np

from skdim._primitive import Cell

#: Pair feature channels that can be asked for; "distance" must come first.
PAIR_FEATURES = ("distance", "coulomb")
_BOHR = 0.52917721067


def coulomb(cell: Cell, distances: np.ndarray, n_images: int) -> np.ndarray:
    """log(Z_i Z_j / d) with d in Bohr, 0.5 Z^2.4 on the diagonal, clipped to +-10."""
    p = len(cell.frac)
    z_j = np.repeat(cell.mean_z, n_images)
    with np.errstate(divide="ignore"):
        value = cell.mean_z[:, None] * z_j[None] / (distances / _BOHR)
    self_pair = np.arange(p) * n_images
    value[np.arange(p), self_pair] = 0.5 * cell.mean_z**2.4
    return np.clip(np.log(value + 1e-8), -10.0, 10.0)


def pair_channels(
    cell: Cell, distances: np.ndarray, n_images: int, names: tuple[str, ...]
) -> np.ndarray:
    """The (P, J, C) pair features named by ``names`` ("distance" first)."""
    if "coulomb" in names:
        return np.stack([distances, coulomb(cell, distances, n_images)], axis=-1)
    return distances[:, :, None]
