"""A crystal's primitive cell as plain arrays: reading, validity checks, reduction.

:class:`Cell` holds what featurization needs of a structure (lattice,
fractional coordinates, atomic numbers, site features). :func:`read_structure`
validates a pymatgen structure and reads it; :func:`primitive_of` finds the
primitive, Niggli-reduced cell with skdim's own search (:mod:`skdim._cell`).

When that search meets translations that do not agree (an ``ArithmeticError``,
seen on a few nearly-degenerate disordered cells), :func:`primitive_or_fallback`
falls back on pymatgen's ``get_primitive_structure`` and says so in a
:class:`PrimitiveFallbackWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from pymatgen.core import DummySpecies, IStructure

from skdim._cell import det3, find_primitive, niggli_reduce, wrap
from skdim._elements import MAX_Z

#: Two atoms closer than this (Angstrom), periodic images of one site included,
#: make a structure invalid (the shortest distance in the shipped data sets is 0.76 A,
#: an H-H bond).
MIN_DISTANCE = 0.6


class PrimitiveFallbackWarning(UserWarning):
    """skdim's primitive-cell search failed on a structure; pymatgen's was used instead."""


class Cell(NamedTuple):
    lattice: np.ndarray  # (3, 3), vectors as rows
    frac: np.ndarray  # (P, 3)
    numbers: np.ndarray  # (P,) majority atomic number
    mean_z: np.ndarray  # (P,) occupancy-weighted atomic number
    site_features: np.ndarray  # (P, F)


def read_structure(structure: Any, where: str, table: np.ndarray) -> Cell:
    """Validate a structure and pull out plain arrays (input cell)."""
    if not isinstance(structure, IStructure):
        raise TypeError(f"{where} is a {type(structure).__name__}, not a pymatgen Structure")
    n_sites = len(structure)
    if n_sites == 0:
        raise ValueError(f"{where} has no sites")
    lattice = np.array(structure.lattice.matrix, float)
    frac = np.array(structure.frac_coords, float)
    if not np.isfinite(lattice.sum() + frac.sum()):  # NaN and inf propagate
        raise ValueError(f"{where} has NaN or infinite lattice or coordinates")
    if abs(det3(lattice.tolist())) < 1e-3:
        raise ValueError(f"{where} has a degenerate lattice (volume ~ 0)")
    site_of, numbers, weights = [], [], []
    for k, site in enumerate(structure):
        for species, occupancy in site.species.items():
            z = getattr(species, "Z", 0)
            if isinstance(species, DummySpecies) or not 1 <= z <= MAX_Z:
                raise ValueError(f"{where}: no element data for species {species} on site {k}")
            site_of.append(k)
            numbers.append(z)
            weights.append(occupancy)
    if len(numbers) == n_sites and min(weights) == 1:  # one species per site, fully occupied
        numbers = np.array(numbers)
        return Cell(lattice, wrap(frac), numbers, numbers.astype(float), table[numbers])
    site_of, numbers, weights = np.array(site_of), np.array(numbers), np.array(weights, float)
    total = np.bincount(site_of, weights, minlength=n_sites)
    if (total <= 0).any():
        raise ValueError(f"{where} has a site with zero occupancy")
    # A site occupied less than fully holds a vacancy for the rest, with all
    # properties 0 (no atom): its features are the occupancy-weighted sum of
    # its species' properties. Over-occupied sites (rounding) are normalized.
    share = weights / np.maximum(total, 1.0)[site_of]
    features = np.zeros((n_sites, table.shape[1]))
    np.add.at(features, site_of, share[:, None] * table[numbers])
    # majority species: first species of largest occupancy on each site
    order = np.lexsort((np.arange(len(numbers)), -weights, site_of))
    first = np.r_[True, site_of[order][1:] != site_of[order][:-1]]
    majority = numbers[order][first]
    mean_z = np.bincount(site_of, share * numbers, minlength=n_sites)
    return Cell(lattice, wrap(frac), majority, mean_z, features)


def check_min_distance(cell: Cell, where: str) -> None:
    n_sites = len(cell.frac)
    if n_sites == 1:
        return
    diff = (cell.frac[:, None] - cell.frac[None]).reshape(-1, 3)
    diff -= np.round(diff)
    cart = diff @ cell.lattice
    dist2 = np.einsum("ij,ij->i", cart, cart)
    dist2[:: n_sites + 1] = np.inf
    k = int(dist2.argmin())
    if dist2[k] < MIN_DISTANCE**2:
        i, j = sorted(divmod(k, n_sites))
        raise ValueError(
            f"{where}: sites {i} and {j} are {np.sqrt(dist2[k]):.3g} A apart (< {MIN_DISTANCE} A)"
        )


def check_lattice(cell: Cell, where: str) -> None:
    """Refuse a cell whose sites are too close to their own periodic images.

    The rows of a Niggli-reduced lattice include its shortest vector, which is
    the distance between a site and its nearest image.
    """
    lengths = np.sqrt(np.einsum("ij,ij->i", cell.lattice, cell.lattice))
    shortest = float(lengths.min())
    if shortest < MIN_DISTANCE:
        raise ValueError(
            f"{where}: periodic images of a site are {shortest:.3g} A apart "
            f"(< {MIN_DISTANCE} A): the lattice is too small for its atoms"
        )


def check_closest(distances: np.ndarray, n_images: int, where: str) -> None:
    """Like :func:`check_min_distance`, on the minimum-image distances of a cell."""
    p = len(distances)
    if p == 1:
        return
    closest = distances.reshape(p, p, n_images).min(axis=2) if n_images > 1 else distances.copy()
    closest.flat[:: p + 1] = np.inf
    k = int(closest.argmin())
    if closest.flat[k] < MIN_DISTANCE:
        i, j = sorted(divmod(k, p))
        raise ValueError(
            f"{where}: sites {i} and {j} are {closest.flat[k]:.3g} A apart (< {MIN_DISTANCE} A)"
        )


def reduce_cell(cell: Cell, lattice: np.ndarray, keep: np.ndarray | None = None) -> Cell:
    """Express the (kept) sites of ``cell`` in another basis of its lattice."""
    change = cell.lattice @ inv3(lattice)
    if keep is None:
        return cell._replace(lattice=lattice, frac=wrap(cell.frac @ change))
    frac = wrap(cell.frac[keep] @ change)
    return Cell(lattice, frac, cell.numbers[keep], cell.mean_z[keep], cell.site_features[keep])


def inv3(m: np.ndarray) -> np.ndarray:
    """Inverse of a 3x3 matrix in plain floats."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    co = (e * i - f * h, f * g - d * i, d * h - e * g)
    det = a * co[0] + b * co[1] + c * co[2]
    return (
        np.array(
            [
                [co[0], c * h - b * i, b * f - c * e],
                [co[1], a * i - c * g, c * d - a * f],
                [co[2], b * g - a * h, a * e - b * d],
            ]
        )
        / det
    )


def to_primitive(cell: Cell) -> Cell:
    """Primitive, Niggli-reduced cell."""
    return primitive_of(reduce_cell(cell, niggli_reduce(cell.lattice)))


def primitive_of(cell: Cell, where: str | None = None) -> Cell:
    """Primitive, Niggli-reduced cell of a Niggli-reduced cell.

    Returns ``cell`` itself when it is already primitive. With ``where``, a
    cell that is reduced is first checked for sites that are too close
    (an unreduced one is checked on its final distances, which is cheaper).
    """
    if (cell.mean_z == cell.numbers).all():  # ordered: species = element
        keys = cell.numbers
    else:
        rows = np.column_stack([cell.site_features, cell.mean_z])
        keys = np.unique(rows, axis=0, return_inverse=True)[1].ravel()
    found = find_primitive(cell.lattice, cell.frac, keys)
    if found is None:
        return cell
    if where is not None:
        check_min_distance(cell, where)
    basis, keep, frac = found
    cell = Cell(
        cell.lattice, frac, cell.numbers[keep], cell.mean_z[keep], cell.site_features[keep]
    )
    return reduce_cell(cell, niggli_reduce(basis @ cell.lattice))


def primitive_or_fallback(niggli: Cell, structure: Any, where: str, table: np.ndarray) -> Cell:
    """:func:`primitive_of` a Niggli-reduced cell, or pymatgen's primitive cell if it fails.

    skdim's search raises ``ArithmeticError`` when the translations it finds
    do not agree; pymatgen's ``get_primitive_structure`` then decides, and a
    :class:`PrimitiveFallbackWarning` names the structure (the result may then
    depend on pymatgen's tolerances rather than skdim's).
    """
    try:
        return primitive_of(niggli, where)
    except ArithmeticError as error:
        check_min_distance(niggli, where)
        warnings.warn(
            f"{where}: skdim's primitive-cell search failed ({error or type(error).__name__}); "
            "used pymatgen's get_primitive_structure instead",
            PrimitiveFallbackWarning,
            stacklevel=2,
        )
        primitive = structure.get_primitive_structure()
        return reduce_cell(
            read_structure(primitive, where, table),
            niggli_reduce(np.array(primitive.lattice.matrix)),
        )
