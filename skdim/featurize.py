"""Crystal structures to Site-Net inputs (numpy only, no torch).

Each structure is reduced to its primitive cell (then Niggli-reduced, so the
result does not depend on the cell the user happened to give), a near-cubic
supercell of at most ``max_atoms`` atoms is chosen as in the original Site-Net,
and only the P x J minimum-image pair features that the model reads are
computed: P unique sites of the primitive cell against the J = P x n_images
atoms of the supercell. No supercell ``Structure`` and no J x J matrix is built.

Known limit: when a crystal has fewer symmetries than its lattice (merohedry,
e.g. an R-3 crystal on a -3m lattice), a lattice symmetry that is no crystal
symmetry can turn the (non-cubic) supercell, and which orientation is used
then follows the basis of the input cell. The original Site-Net has the same
limit. Rotating, translating or permuting the input sites does not change the
result (tests/test_featurize.py checks all of these on real crystals).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from pymatgen.core import DummySpecies, IStructure

from skdim._cell import find_primitive, lll_reduce, niggli_reduce, wrap
from skdim._elements import (
    DEFAULT_SITE_PROPERTIES,
    MAX_Z,
    available_properties,
    property_table,
)

__all__ = [
    "DEFAULT_SITE_PROPERTIES",
    "PAIR_FEATURES",
    "SiteNetInput",
    "available_properties",
    "cubic_supercell_matrix",
    "featurize",
    "featurize_structure",
    "primitive_cell",
]

#: Pair feature channels that can be asked for; "distance" must come first.
PAIR_FEATURES = ("distance", "coulomb")
#: Two atoms closer than this (Angstrom), periodic images of one site included,
#: make a structure invalid (the shortest distance in the shipped data sets is 0.76 A,
#: an H-H bond).
MIN_DISTANCE = 0.6
#: Fewest structures per worker process: smaller inputs are featurized serially,
#: since starting workers costs more than it saves.
MIN_PER_WORKER = 500
_BOHR = 0.52917721067
#: Entries of the supercell matrix this close above k + 1/2 round up.
_HALF_TOL = 1e-6
_IMAGES = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])


class SiteNetInput(NamedTuple):
    """Featurized crystal: what the Site-Net encoder reads.

    Attributes
    ----------
    atomic_numbers : ndarray of shape (P,), int
        Atomic number of each unique site of the primitive cell (the majority
        species on a disordered site).
    site_features : ndarray of shape (P, F), float32
        Elemental properties of each unique site (occupancy-weighted mean on
        disordered sites; a site occupied less than fully is a mixture with a
        vacancy, whose properties are all 0, so ``{"Na": 0.3}`` gets 0.3 times
        sodium's). Unscaled: scaling is fitted by the estimators.
    pair_features : ndarray of shape (P, J, C), float32
        Pair features between unique site i and supercell atom j. Channel 0 is
        the minimum-image distance in Angstrom.
    neighbor_site : ndarray of shape (J,), int
        Unit-cell site index of every supercell atom j.
    n_images : int
        Number of primitive cells in the supercell, so J = P * n_images.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.featurize import featurize_structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> x = featurize_structure(cscl, max_atoms=20)
    >>> x.n_sites, x.n_images, x.n_neighbors
    (2, 8, 16)
    >>> x.atomic_numbers.tolist(), x.neighbor_site.tolist()
    ([55, 17], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    >>> float(x.distances[0, 8])  # Cs to its nearest Cl: sqrt(3) * 4.12 / 2
    3.568...
    """

    atomic_numbers: np.ndarray
    site_features: np.ndarray
    pair_features: np.ndarray
    neighbor_site: np.ndarray
    n_images: int

    @property
    def distances(self) -> np.ndarray:
        """Minimum-image distances (P, J) in Angstrom."""
        return self.pair_features[:, :, 0]

    @property
    def n_sites(self) -> int:
        """P, the number of unique sites."""
        return len(self.atomic_numbers)

    @property
    def n_neighbors(self) -> int:
        """J, the number of supercell atoms."""
        return len(self.neighbor_site)


class _Cell(NamedTuple):
    lattice: np.ndarray  # (3, 3), vectors as rows
    frac: np.ndarray  # (P, 3)
    numbers: np.ndarray  # (P,) majority atomic number
    mean_z: np.ndarray  # (P,) occupancy-weighted atomic number
    site_features: np.ndarray  # (P, F)


def _read_structure(structure: Any, where: str, table: np.ndarray) -> _Cell:
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
    if abs(_det3(lattice)) < 1e-3:
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
        return _Cell(lattice, wrap(frac), numbers, numbers.astype(float), table[numbers])
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
    return _Cell(lattice, wrap(frac), majority, mean_z, features)


def _det3(m: np.ndarray) -> float:
    """Determinant of a 3x3 matrix in plain floats (np.linalg is slow on tiny arrays)."""
    (a, b, c), (d, e, f), (g, h, i) = m.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def _check_min_distance(cell: _Cell, where: str) -> None:
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


def _check_lattice(cell: _Cell, where: str) -> None:
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


def _check_closest(distances: np.ndarray, n_images: int, where: str) -> None:
    """Like :func:`_check_min_distance`, on the minimum-image distances of a cell."""
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


def _reduce(cell: _Cell, lattice: np.ndarray, keep: np.ndarray | None = None) -> _Cell:
    """Express the (kept) sites of ``cell`` in another basis of its lattice."""
    change = cell.lattice @ _inv3(lattice)
    if keep is None:
        return cell._replace(lattice=lattice, frac=wrap(cell.frac @ change))
    frac = wrap(cell.frac[keep] @ change)
    return _Cell(lattice, frac, cell.numbers[keep], cell.mean_z[keep], cell.site_features[keep])


def _inv3(m: np.ndarray) -> np.ndarray:
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


def _to_primitive(cell: _Cell) -> _Cell:
    """Primitive, Niggli-reduced cell."""
    return _primitive_of(_reduce(cell, niggli_reduce(cell.lattice)))


def _primitive_of(cell: _Cell, where: str | None = None) -> _Cell:
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
        _check_min_distance(cell, where)
    basis, keep, frac = found
    cell = _Cell(
        cell.lattice, frac, cell.numbers[keep], cell.mean_z[keep], cell.site_features[keep]
    )
    return _reduce(cell, niggli_reduce(basis @ cell.lattice))


def primitive_cell(
    structure: IStructure, site_properties: Sequence[str] = DEFAULT_SITE_PROPERTIES
) -> IStructure:
    """The primitive, Niggli-reduced cell that featurization works on.

    Parameters
    ----------
    structure : pymatgen Structure
        Any cell of the crystal (ordered).
    site_properties : sequence of str
        Properties that distinguish sites (as in featurization).

    Returns
    -------
    Structure
        The reduced primitive cell, with sites in featurization order.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure.from_spacegroup(
    ...     "Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> len(nacl), len(primitive_cell(nacl))  # conventional cell, primitive cell
    (8, 2)
    """
    table = property_table(tuple(site_properties))
    cell = _to_primitive(_read_structure(structure, "structure", table))
    return type(structure)(cell.lattice, cell.numbers.tolist(), cell.frac)


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


def _dot(u: list[float], v: list[float]) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _image_offsets(matrix: np.ndarray) -> np.ndarray:
    """Integer cell offsets of the images in the supercell, shape (n_images, 3)."""
    return _offset_grid(int(matrix[0, 0]), int(matrix[1, 1]), int(matrix[2, 2]))


@lru_cache(maxsize=256)
def _offset_grid(n1: int, n2: int, n3: int) -> np.ndarray:
    grid = np.indices((n1, n2, n3)).reshape(3, -1).T.astype(float)
    grid.flags.writeable = False
    return grid


def _distances(cell: _Cell, matrix: np.ndarray) -> np.ndarray:
    """Minimum-image distances (P, P * n_images) under the supercell's periodicity.

    Column ``j = s * n_images + t`` is image t of unit-cell site s. Pair
    vectors are wrapped into the LLL-reduced supercell and compared with their
    26 neighbouring images, as pymatgen does. Arrays are laid out so that the
    minimum over images runs across rows (fast in numpy), not along short rows.
    """
    p = len(cell.frac)
    super_lattice = lll_reduce(matrix @ cell.lattice)
    to_super = cell.lattice @ _inv3(super_lattice)  # unit-cell -> supercell fractions
    sites = cell.frac @ to_super
    targets = (sites[:, None, :] + _image_offsets(matrix) @ to_super).reshape(-1, 3)
    diff = (targets[None, :, :] - sites[:, None, :]).reshape(-1, 3)
    diff -= np.round(diff)
    cart = diff @ super_lattice
    images = _IMAGES @ super_lattice
    # |v + I|^2 = |v|^2 + 2 v.I + |I|^2, minimised over the 27 images I (I = 0 included)
    shifts = (2.0 * images) @ cart.T
    shifts += np.einsum("ij,ij->i", images, images)[:, None]
    dist2 = np.einsum("ij,ij->i", cart, cart)
    dist2 += shifts.min(axis=0)
    np.maximum(dist2, 0.0, out=dist2)
    return np.sqrt(dist2, out=dist2).reshape(p, -1)


def _coulomb(cell: _Cell, distances: np.ndarray, n_images: int) -> np.ndarray:
    """log(Z_i Z_j / d) with d in Bohr, 0.5 Z^2.4 on the diagonal, clipped to +-10."""
    p = len(cell.frac)
    z_j = np.repeat(cell.mean_z, n_images)
    with np.errstate(divide="ignore"):
        value = cell.mean_z[:, None] * z_j[None] / (distances / _BOHR)
    self_pair = np.arange(p) * n_images
    value[np.arange(p), self_pair] = 0.5 * cell.mean_z**2.4
    return np.clip(np.log(value + 1e-8), -10.0, 10.0)


def _featurize_one(
    structure: Any,
    where: str,
    max_atoms: int,
    supercell: str,
    site_properties: tuple[str, ...],
    pair_features: tuple[str, ...],
    max_sites: int | None,
) -> SiteNetInput:
    niggli = _read_structure(structure, where, property_table(site_properties))
    niggli = _reduce(niggli, niggli_reduce(niggli.lattice))
    _check_lattice(niggli, where)
    try:
        cell = _primitive_of(niggli, where)
    except ArithmeticError:  # inconsistent translations: let pymatgen decide
        _check_min_distance(niggli, where)
        primitive = structure.get_primitive_structure()
        cell = _reduce(
            _read_structure(primitive, where, property_table(site_properties)),
            niggli_reduce(np.array(primitive.lattice.matrix)),
        )
    if cell is not niggli:
        _check_lattice(cell, where)
    p = len(cell.frac)
    if max_sites is not None and p > max_sites:
        if cell is niggli:
            _check_min_distance(cell, where)
        raise ValueError(f"{where}: primitive cell has {p} sites > max_sites={max_sites}")
    if supercell == "cubic":
        matrix = cubic_supercell_matrix(cell.lattice, p, max_atoms)
    else:
        matrix = np.eye(3, dtype=int)
    n_images = int(matrix[0, 0] * matrix[1, 1] * matrix[2, 2])  # upper triangular
    distances = _distances(cell, matrix)
    if cell is niggli:  # not checked yet; sites are in input order
        _check_closest(distances, n_images, where)
    if "coulomb" in pair_features:
        pairs = np.stack([distances, _coulomb(cell, distances, n_images)], axis=-1)
    else:
        pairs = distances[:, :, None]
    arrays = SiteNetInput(
        atomic_numbers=cell.numbers.astype(np.int64),
        site_features=cell.site_features.astype(np.float32),
        pair_features=pairs.astype(np.float32),
        neighbor_site=np.repeat(np.arange(p), n_images),
        n_images=n_images,
    )
    for array in arrays[:4]:
        array.flags.writeable = False
    return arrays


def _check_params(max_atoms, supercell, site_properties, pair_features, max_sites):
    if not isinstance(max_atoms, (int, np.integer)) or max_atoms < 1:
        raise ValueError(f"max_atoms must be a positive integer, got {max_atoms!r}")
    if supercell not in ("cubic", "primitive"):
        raise ValueError(f"supercell must be 'cubic' or 'primitive', got {supercell!r}")
    pair_features = tuple(pair_features)
    if not pair_features or pair_features[0] != "distance":
        raise ValueError(f"pair_features must start with 'distance', got {pair_features}")
    unknown = set(pair_features) - set(PAIR_FEATURES)
    if unknown or len(set(pair_features)) != len(pair_features):
        raise ValueError(f"pair_features must be distinct names from {PAIR_FEATURES}")
    if max_sites is not None and max_sites < 1:
        raise ValueError(f"max_sites must be None or a positive integer, got {max_sites!r}")
    site_properties = tuple(site_properties)
    property_table(site_properties)  # raises on unknown names
    return {
        "max_atoms": int(max_atoms),
        "supercell": supercell,
        "site_properties": site_properties,
        "pair_features": pair_features,
        "max_sites": max_sites,
    }


def featurize_structure(
    structure: IStructure,
    *,
    max_atoms: int = 50,
    supercell: str = "cubic",
    site_properties: Sequence[str] = DEFAULT_SITE_PROPERTIES,
    pair_features: Sequence[str] = ("distance",),
    max_sites: int | None = 500,
) -> SiteNetInput:
    """Featurize one crystal structure for Site-Net.

    Parameters
    ----------
    structure : pymatgen Structure
        Ordered or disordered; oxidation-state-decorated species are read as
        their elements.
    max_atoms : int, default=50
        Most atoms in the supercell. When the primitive cell has more than
        ``max_atoms / 2`` sites no image fits and J = P.
    supercell : {"cubic", "primitive"}, default="cubic"
        "cubic" builds the near-cubic supercell of the original Site-Net;
        "primitive" uses the primitive cell itself (J = P).
    site_properties : sequence of str, default=DEFAULT_SITE_PROPERTIES
        Magpie elemental properties used as site features
        (see :func:`available_properties`).
    pair_features : sequence of str, default=("distance",)
        Pair channels: "distance" (Angstrom, always first) and optionally
        "coulomb" (log of Z_i Z_j / d with d in Bohr, clipped to +-10).
    max_sites : int or None, default=500
        Largest primitive cell accepted. Attention cost grows with P x J, so
        for P > max_atoms / 2 it grows as P^2.

    Returns
    -------
    SiteNetInput

    Raises
    ------
    TypeError
        If ``structure`` is not a pymatgen Structure.
    ValueError
        If the structure is empty, has NaN coordinates, atoms closer than
        0.6 A (``MIN_DISTANCE``; periodic images of a site included), a
        species without element data, or more than ``max_sites`` primitive
        sites.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure.from_spacegroup(
    ...     "Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> x = featurize_structure(nacl, max_atoms=50)
    >>> x.n_sites, x.n_images, x.n_neighbors, x.site_features.shape
    (2, 18, 36, (2, 8))
    """
    params = _check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    return _featurize_one(structure, "structure", **params)


def _describe(index: int, label: Any) -> str:
    return f"structures[{index}]" + ("" if label is None else f" (id {label!r})")


def _featurize_chunk(items, on_error, params):
    out = []
    for index, label, structure in items:
        try:
            out.append(_featurize_one(structure, _describe(index, label), **params))
        except (TypeError, ValueError) as error:  # these name the item already
            if on_error == "raise":
                raise
            out.append(str(error))
        except (ArithmeticError, RuntimeError) as error:  # e.g. Niggli reduction failed
            message = f"{_describe(index, label)}: {type(error).__name__}: {error}"
            if on_error == "raise":
                raise _renamed(error, message) from error
            out.append(message)
    return out


def _renamed(error: Exception, message: str) -> Exception:
    """An exception of the same type as ``error`` (if it can be built) with ``message``."""
    try:
        return type(error)(message)
    except Exception:  # an exception class with another signature
        return RuntimeError(message)


def featurize(
    structures: Iterable[IStructure],
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    on_error: str = "raise",
    max_atoms: int = 50,
    supercell: str = "cubic",
    site_properties: Sequence[str] = DEFAULT_SITE_PROPERTIES,
    pair_features: Sequence[str] = ("distance",),
    max_sites: int | None = 500,
) -> list[SiteNetInput | None]:
    """Featurize many structures, in input order, optionally in parallel.

    Parameters
    ----------
    structures : iterable of pymatgen Structure
        A list, tuple, object array or pandas Series (its index labels then
        appear in error messages).
    n_jobs : int or None, default=1
        Worker processes (joblib); -1 uses all cores. Workers are started
        only for at least ``MIN_PER_WORKER`` (500) structures each: smaller
        inputs are featurized in this process (same results, same order).
    progress : bool, default=False
        Show a tqdm progress bar.
    on_error : {"raise", "skip"}, default="raise"
        With "skip", an invalid structure gives ``None`` in its place and a
        single warning lists the skipped indices and reasons.
    max_atoms, supercell, site_properties, pair_features, max_sites
        As in :func:`featurize_structure`.

    Returns
    -------
    list of SiteNetInput (or None for skipped structures)

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> inputs = featurize([cscl, po], max_atoms=30)
    >>> [(x.n_sites, x.n_neighbors) for x in inputs]
    [(2, 24), (1, 27)]

    With ``on_error="skip"``, a structure that cannot be featurized gives
    ``None`` and a warning instead of an error:

    >>> import warnings
    >>> broken = Structure(Lattice.cubic(4.0), ["Na", "Na"], [[0, 0, 0], [0, 0, 0.001]])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     inputs = featurize([po, broken], on_error="skip")
    >>> inputs[1] is None
    True
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    params = _check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    values = _as_list(structures)
    labels = _labels(structures, len(values))
    items = [(i, labels[i], s) for i, s in enumerate(values)]
    workers = _n_workers(n_jobs, len(items))
    size = max(1, min(256, len(items) // (8 * workers)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    tasks = (delayed(_featurize_chunk)(chunk, on_error, params) for chunk in chunks)
    results: list[Any] = []
    bar = _progress_bar(len(items), progress)
    for chunk_result in Parallel(n_jobs=workers, return_as="generator")(tasks):
        results.extend(chunk_result)
        bar.update(len(chunk_result))
    bar.close()
    skipped = [(i, r) for i, r in enumerate(results) if isinstance(r, str)]
    if skipped:
        shown = "; ".join(reason for _, reason in skipped[:5])
        warnings.warn(
            f"skipped {len(skipped)} of {len(results)} structures: {shown}"
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=2,
        )
    return [None if isinstance(r, str) else r for r in results]


def _n_workers(n_jobs: int | None, n_items: int) -> int:
    """Worker processes worth starting: at most one per ``MIN_PER_WORKER`` items."""
    if n_jobs == 1:
        return 1
    return max(1, min(effective_n_jobs(n_jobs), n_items // MIN_PER_WORKER))


def _as_list(structures: Iterable[Any]) -> list[Any]:
    if hasattr(structures, "iloc"):  # pandas Series
        return list(structures.to_numpy())
    if isinstance(structures, IStructure):
        raise TypeError("featurize takes a sequence of structures; use featurize_structure")
    return list(structures)


def _labels(structures: Any, n: int) -> list[Any]:
    """Index labels of a pandas Series, or None when there are none worth showing."""
    if not hasattr(structures, "iloc") or list(structures.index) == list(range(n)):
        return [None] * n
    return list(structures.index)


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="featurize", unit="structure")
