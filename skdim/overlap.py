"""Find the crystals two data sets share, to keep test structures out of pretraining.

Materials Project data sets overlap (about 91 % of ``mp36k`` is in
``matbench_mp_gap``), under different ids and from different database
snapshots, so ids cannot be compared. Two structures are taken to be the same
material when

1. their *structure keys*, the reduced formulas, are equal, and
2. pymatgen's :class:`~pymatgen.analysis.structure_matcher.StructureMatcher`
   (default tolerances: primitive cells compared, volumes scaled) confirms
   the match, which tells polymorphs apart.

The key is the formula alone, not the formula and the number of sites: the
two snapshots sometimes store one material in cells of different sizes. Of
the 5,787 ``matbench_mp_gap`` fold-0 training structures that match the
``mp36k`` benchmark test split, 120 are stored with another number of sites.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

__all__ = ["shared_structures", "structure_key"]


def structure_key(structure: Structure) -> str:
    """The key two copies of one material share: the reduced formula.

    Parameters
    ----------
    structure : pymatgen Structure

    Returns
    -------
    str

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> structure_key(nacl), structure_key(nacl * (2, 1, 1))
    ('NaCl', 'NaCl')
    """
    return structure.composition.reduced_formula


def shared_structures(
    candidates: Sequence[Structure],
    reference: Sequence[Structure],
    *,
    matcher: StructureMatcher | None = None,
) -> list[int]:
    """Positions of the candidates that match a reference structure.

    Parameters
    ----------
    candidates : sequence of Structure
        Structures to screen (e.g. a pretraining set).
    reference : sequence of Structure
        Structures that must not appear among the candidates (e.g. a test set).
    matcher : StructureMatcher or None, default=None
        The confirming matcher; None uses pymatgen's default tolerances.

    Returns
    -------
    list of int
        Sorted positions in ``candidates`` whose structure key equals a
        reference structure's key and that the matcher confirms.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> nacl = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> strained = Structure(Lattice.cubic(5.7), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> layered = Structure(Lattice.tetragonal(3.0, 9.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.2]])
    >>> shared_structures([layered, strained, nacl * (1, 1, 2)], [nacl])
    [1, 2]
    """
    matcher = matcher or StructureMatcher()
    by_key: dict[str, list[Structure]] = defaultdict(list)
    for structure in reference:
        by_key[structure_key(structure)].append(structure)
    shared = []
    for position, structure in enumerate(candidates):
        same_key = by_key.get(structure_key(structure), ())
        if any(matcher.fit(structure, other) for other in same_key):
            shared.append(position)
    return shared
