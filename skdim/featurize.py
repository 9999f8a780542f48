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

When skdim's primitive-cell search fails on a structure (translations that do
not agree, an ``ArithmeticError``), pymatgen's ``get_primitive_structure`` is
used for it instead, with a :class:`~skdim._primitive.PrimitiveFallbackWarning`
naming the structure.

This module holds the public functions and the featurization of one
structure; the steps live in private modules: reading and validating a
structure and reducing it to its primitive cell (``skdim._primitive``, on
``skdim._cell``), the supercell and its minimum-image distances
(``skdim._supercell``), the pair channels (``skdim._pairs``), the settings
checks (``skdim._featurize_settings``) and the parallel driver
(``skdim._parallel``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from pymatgen.core import IStructure

from skdim import _parallel
from skdim._cell import niggli_reduce
from skdim._elements import DEFAULT_SITE_PROPERTIES, available_properties, property_table
from skdim._featurize_settings import DEFAULTS, FeaturizedInputs, check_params
from skdim._pairs import PAIR_FEATURES, pair_channels
from skdim._parallel import MIN_PER_WORKER  # noqa: F401 (a setting documented here)
from skdim._primitive import (  # MIN_DISTANCE: a limit documented here
    MIN_DISTANCE,  # noqa: F401
    check_closest,
    check_lattice,
    check_min_distance,
    primitive_or_fallback,
    read_structure,
    reduce_cell,
    to_primitive,
)
from skdim._supercell import cubic_supercell_matrix, min_image_distances

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
    cell = to_primitive(read_structure(structure, "structure", table))
    return type(structure)(cell.lattice, cell.numbers.tolist(), cell.frac)


def _featurize_one(
    structure: Any,
    where: str,
    max_atoms: int,
    supercell: str,
    site_properties: tuple[str, ...],
    pair_features: tuple[str, ...],
    max_sites: int | None,
) -> SiteNetInput:
    table = property_table(site_properties)
    niggli = read_structure(structure, where, table)
    niggli = reduce_cell(niggli, niggli_reduce(niggli.lattice))
    check_lattice(niggli, where)
    cell = primitive_or_fallback(niggli, structure, where, table)
    if cell is not niggli:
        check_lattice(cell, where)
    p = len(cell.frac)
    if max_sites is not None and p > max_sites:
        if cell is niggli:
            check_min_distance(cell, where)
        raise ValueError(f"{where}: primitive cell has {p} sites > max_sites={max_sites}")
    if supercell == "cubic":
        matrix = cubic_supercell_matrix(cell.lattice, p, max_atoms)
    else:
        matrix = np.eye(3, dtype=int)
    n_images = int(matrix[0, 0] * matrix[1, 1] * matrix[2, 2])  # upper triangular
    distances = min_image_distances(cell, matrix)
    if cell is niggli:  # not checked yet; sites are in input order
        check_closest(distances, n_images, where)
    pairs = pair_channels(cell, distances, n_images, pair_features)
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


def featurize_structure(
    structure: IStructure,
    *,
    max_atoms: int = DEFAULTS.max_atoms,
    supercell: str = DEFAULTS.supercell,
    site_properties: Sequence[str] = DEFAULTS.site_properties,
    pair_features: Sequence[str] = DEFAULTS.pair_features,
    max_sites: int | None = DEFAULTS.max_sites,
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
    params = check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    return _featurize_one(structure, "structure", **params)


def featurize(
    structures: Iterable[IStructure],
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
    on_error: str = "raise",
    max_atoms: int = DEFAULTS.max_atoms,
    supercell: str = DEFAULTS.supercell,
    site_properties: Sequence[str] = DEFAULTS.site_properties,
    pair_features: Sequence[str] = DEFAULTS.pair_features,
    max_sites: int | None = DEFAULTS.max_sites,
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
        Show progress: a bar on a terminal, a few whole lines otherwise.
    on_error : {"raise", "skip"}, default="raise"
        With "skip", an invalid structure gives ``None`` in its place and a
        single warning lists the skipped indices and reasons.
    max_atoms, supercell, site_properties, pair_features, max_sites
        As in :func:`featurize_structure`.

    Returns
    -------
    list of SiteNetInput (or None for skipped structures)
        A list that also records these settings (``.featurization``): an
        estimator refuses it when its own settings differ.

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
    params = check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    inputs = _parallel.run(
        _featurize_one, structures, params, n_jobs=n_jobs, progress=progress, on_error=on_error
    )
    return FeaturizedInputs(inputs, featurization=params)
