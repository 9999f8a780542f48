"""Checks on structure files that pymatgen would read without complaint, or unhelpfully."""

from __future__ import annotations

from pathlib import Path

__all__ = ["check_poscar_counts", "read_structure_file"]


def read_structure_file(file: Path) -> str:
    """A structure file's text; a binary file is refused by name."""
    try:
        return file.read_bytes().decode()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file} is not a text structure file (byte {error.start} is not UTF-8): "
            "remove it from the folder or convert it"
        ) from None


def check_poscar_counts(text: str, label: object) -> None:
    """Refuse a POSCAR whose atom counts differ from its coordinate lines.

    pymatgen reads as many coordinate lines as the counts add up to and
    ignores the rest, so one count too low would silently drop an atom.
    The coordinates end at a blank line (velocities may follow) or at the end.
    """
    lines = text.splitlines()
    row = 6 if len(lines) > 6 and not _all_ints(lines[5]) else 5  # species names, or none
    if len(lines) <= row + 1 or not _all_ints(lines[row]):
        return  # not a POSCAR layout this check knows: pymatgen reports it
    expected = sum(int(n) for n in lines[row].split())
    start = row + 1
    if lines[start].strip()[:1] in ("s", "S"):  # Selective dynamics
        start += 1
    found = 0
    for line in lines[start + 1 :]:
        if len(line.split()) < 3 or not _all_floats(line.split()[:3]):
            break
        found += 1
    if found != expected:
        raise ValueError(
            f"could not parse structure {label!r}: its counts line (line {row + 1}: "
            f"{lines[row].strip()!r}) adds up to {expected} atoms, but {found} coordinate "
            "lines follow"
        )


def _all_ints(line: str) -> bool:
    return bool(line.split()) and all(word.isdigit() for word in line.split())


def _all_floats(words: list[str]) -> bool:
    try:
        [float(word) for word in words]
    except ValueError:
        return False
    return True
