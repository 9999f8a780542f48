"""Supercell geometry: the near-cubic supercell matrix and minimum-image distances."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from skdim._cell import _SHIFTS, _dot, lll_reduce
from skdim._primitive import Cell, inv3

#: Entries of the supercell matrix this close above k + 1/2 round up.
_HALF_TOL = 1e-6


def cubic_supercell_matrix(lattice: np.ndarray, n_sites: int, max_atoms: int) -> np.ndarray:
    """Integer scaling matrix of the near-cubic supercell of the original Site-Net.

    The lattice is sheared to orthogonal axes through its RQ decomposition,
    then the currently shortest sheared axis is grown one cell at a time while
    the supercell holds at most ``max_atoms`` atoms.

    Parameters
    ----------
    lattice : ndarray of shape (3, 3)
        Lattice vectors as rows.
    n_sites : int
        Sites in the cell.
    max_atoms : int
        Most atoms allowed in the supercell.

    Returns
    -------
    ndarray of shape (3, 3), int
        Upper-triangular matrix M with the image counts on its diagonal; the
        supercell lattice is ``M @ lattice``.

    Examples
    --------
    A simple cubic cell with one atom grows to a 3 x 3 x 3 supercell of 27
    atoms, the largest cube under 30 atoms:

    >>> import numpy as np
    >>> cubic_supercell_matrix(4.0 * np.eye(3), n_sites=1, max_atoms=30)
    array([[3, 0, 0],
           [0, 3, 0],
           [0, 0, 3]])
    """
    shear, lengths = _orthogonal_shear(lattice)
    counts = [1, 1, 1]
    while True:
        key = [round(n * length, 6) for n, length in zip(counts, lengths)]
        axis = key.index(min(key))  # ties go to the first axis
        if (
            counts[0] * counts[1] * counts[2] // counts[axis] * (counts[axis] + 1) * n_sites
            > max_atoms
        ):
            break
        counts[axis] += 1
    # Round half up, with a tolerance: on symmetric lattices n * shear lands on
    # k + 1/2 exactly, and plain rounding would let float noise pick the
    # supercell (so a rotated copy of the crystal could get another one).
    return np.floor(np.array(counts)[:, None] * shear + (0.5 + _HALF_TOL)).astype(int)


def _orthogonal_shear(lattice: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Unit upper-triangular S with orthogonal rows in S @ lattice, and their lengths.

    This is the RQ decomposition lattice = R @ Q written out: the rows of
    S @ lattice are a, b, c with the components along the later rows removed,
    and their lengths are |R_kk|.
    """
    (a, b, c) = (list(map(float, row)) for row in lattice)
    cc = _dot(c, c)
    s23 = -_dot(b, c) / cc
    b_perp = [b[k] + s23 * c[k] for k in range(3)]
    bb = _dot(b_perp, b_perp)
    s12 = -_dot(a, b_perp) / bb
    s13 = -_dot(a, c) / cc + s12 * s23
    a_perp = [a[k] + s12 * b[k] + s13 * c[k] for k in range(3)]
    shear = np.array([[1.0, s12, s13], [0.0, 1.0, s23], [0.0, 0.0, 1.0]])
    return shear, [_dot(a_perp, a_perp) ** 0.5, bb**0.5, cc**0.5]


def image_offsets(matrix: np.ndarray) -> np.ndarray:
    """Integer cell offsets of the images in the supercell, shape (n_images, 3)."""
    return _offset_grid(int(matrix[0, 0]), int(matrix[1, 1]), int(matrix[2, 2]))


@lru_cache(maxsize=256)
def _offset_grid(n1: int, n2: int, n3: int) -> np.ndarray:
    grid = np.indices((n1, n2, n3)).reshape(3, -1).T.astype(float)
    grid.flags.writeable = False
    return grid


def min_image_distances(cell: Cell, matrix: np.ndarray) -> np.ndarray:
    """Minimum-image distances (P, P * n_images) under the supercell's periodicity.

    Column ``j = s * n_images + t`` is image t of unit-cell site s. Pair
    vectors are wrapped into the LLL-reduced supercell and compared with their
    26 neighbouring images, as pymatgen does. Arrays are laid out so that the
    minimum over images runs across rows (fast in numpy), not along short rows.
    """
    p = len(cell.frac)
    super_lattice = lll_reduce(matrix @ cell.lattice)
    to_super = cell.lattice @ inv3(super_lattice)  # unit-cell -> supercell fractions
    sites = cell.frac @ to_super
    targets = (sites[:, None, :] + image_offsets(matrix) @ to_super).reshape(-1, 3)
    diff = (targets[None, :, :] - sites[:, None, :]).reshape(-1, 3)
    diff -= np.round(diff)
    cart = diff @ super_lattice
    images = _SHIFTS @ super_lattice
    # |v + I|^2 = |v|^2 + 2 v.I + |I|^2, minimised over the 27 images I (I = 0 included)
    shifts = (2.0 * images) @ cart.T
    shifts += np.einsum("ij,ij->i", images, images)[:, None]
    dist2 = np.einsum("ij,ij->i", cart, cart)
    dist2 += shifts.min(axis=0)
    np.maximum(dist2, 0.0, out=dist2)
    return np.sqrt(dist2, out=dist2).reshape(p, -1)
