"""File format of the featurized store: shards written atomically, records read by pread.

Layout of a store directory::

    store.json          settings, shard size, completion flag and, once
                        complete, the sha256 of every shard file and of
                        every shard's input
    shard-00000.bin     one record per structure: atomic numbers (int64, P),
                        neighbour sites (int64, J), site features (float32,
                        P x F), pair features (float32, P x J x C)
    shard-00000.npz     n_sites, n_images, byte offsets, input positions,
                        skipped inputs and their reasons, per-shard feature
                        statistics, the sha256 of the ``.bin`` file and the
                        fingerprint of the shard's input (see
                        :func:`input_fingerprint`); a shard is finished when
                        this file exists
    store.lock          held by the run that writes the store

Both shard files are written under a ``.tmp`` name, synced and renamed, the
``.npz`` last, so an interrupted run never leaves a shard that looks finished.
Every error reading a shard names its file.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from skdim.datasets import _parse_one
from skdim.featurize import SiteNetInput, featurize_structure

FORMAT_VERSION = 2
MANIFEST = "store.json"
#: Held by the run that featurizes into the store.
LOCK_FILE = "store.lock"
_DTYPES = (np.int64, np.int64, np.float32, np.float32)
#: Errors that make ``on_error="skip"`` skip a structure. Besides invalid input
#: (TypeError, ValueError), a few of the 10^5 structures of matbench_mp_gap make
#: the cell reduction fail (RuntimeError, ArithmeticError); one bad crystal must
#: not stop a run over a million.
_SKIPPABLE = (TypeError, ValueError, ArithmeticError, RuntimeError)


def shard_stem(path: Path, k: int) -> Path:
    """``path/shard-0000k`` (add ``.bin`` or ``.npz``)."""
    return path / f"shard-{k:05d}"


def open_manifest(path: Path, settings: dict, shard_size: int) -> dict:
    """The store's manifest, created if missing; ValueError if its settings differ."""
    manifest = {
        "format_version": FORMAT_VERSION,
        "featurization": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "shard_size": int(shard_size),
        "complete": False,
    }
    if (path / MANIFEST).is_file():
        found = json.loads((path / MANIFEST).read_text())
        fields = ("format_version", "featurization", "shard_size")
        if any(found.get(k) != manifest[k] for k in fields):
            mine = {k: manifest[k] for k in fields}
            theirs = {k: found.get(k) for k in fields}
            raise ValueError(f"{path} holds a store with {theirs}, not {mine}")
        return found
    write_json(path / MANIFEST, manifest)
    return manifest


def input_fingerprint(items: Iterable[Any]) -> str:
    """sha256 of a shard's inputs: structure texts, or the cells of Structures.

    A Structure counts by its lattice, species with occupancies and fractional
    coordinates (what featurization reads); a text by its characters. Cheap
    next to featurization, so a resumed run can check that a finished shard
    came from the same inputs without featurizing them again.

    Parameters
    ----------
    items : iterable of pymatgen Structure or str
        The inputs of one shard.

    Returns
    -------
    str
        Hex digest.

    Examples
    --------
    >>> input_fingerprint(["a CIF text"]) == input_fingerprint(["a CIF text"])
    True
    >>> input_fingerprint(["a CIF text"]) == input_fingerprint(["another CIF text"])
    False
    """
    digest = hashlib.sha256()
    for item in items:
        data = _input_bytes(item)
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class Chunks:
    """(k, inputs of shard k) from any iterable; ``count`` is set once it is exhausted.

    Parameters
    ----------
    items : iterable
        The inputs (a pandas Series by its values).
    size : int
        Inputs per shard.
    """

    def __init__(self, items: Iterable[Any], size: int):
        self.items = iter(items.to_numpy() if hasattr(items, "iloc") else items)
        self.size, self.count = size, 0

    def __iter__(self) -> Iterator[tuple[int, list]]:
        while chunk := list(itertools.islice(self.items, self.size)):
            yield self.count, chunk
            self.count += 1


def check_same_input(path: Path, manifest: dict, items: Iterable[Any], shard_size: int) -> None:
    """Refuse another input than the one a complete store was featurized from.

    Parameters
    ----------
    path : Path
        The store directory.
    manifest : dict
        Its complete ``store.json``.
    items : iterable
        The input given now (only fingerprinted, never featurized).
    shard_size : int
        Inputs per shard.

    Raises
    ------
    ValueError
        Naming the first shard whose input differs, or the counts of shards.
    """
    expected = [shard["input_sha256"] for shard in manifest["shards"]]
    chunks = Chunks(items, shard_size)
    for k, chunk in chunks:
        if k >= len(expected):
            what = f"this input has more than the {len(expected)} shards it holds"
            break
        if input_fingerprint(chunk) != expected[k]:
            what = (
                f"{shard_stem(path, k).with_suffix('.npz')} was featurized from other inputs "
                f"than inputs {k * shard_size} to {k * shard_size + len(chunk) - 1} given now"
            )
            break
    else:
        if chunks.count == len(expected):
            return
        what = f"this input has {chunks.count} shards, not the {len(expected)} it holds"
    raise ValueError(
        f"{path} is a complete store of another input: {what}. Use a new directory for "
        "this input, or delete the store to featurize it again."
    )


def _input_bytes(item: Any) -> bytes:
    if isinstance(item, str):
        return b"text:" + item.encode("utf-8", "surrogatepass")
    lattice = getattr(item, "lattice", None)
    if lattice is not None and hasattr(item, "frac_coords") and hasattr(item, "sites"):
        species = ";".join(
            ",".join(f"{sp}:{occupancy!r}" for sp, occupancy in site.species.items())
            for site in item.sites
        )
        return b"".join(
            [
                b"structure:",
                np.ascontiguousarray(lattice.matrix, np.float64).tobytes(),
                np.ascontiguousarray(item.frac_coords, np.float64).tobytes(),
                species.encode(),
            ]
        )
    return f"{type(item).__module__}.{type(item).__qualname__}:{item!s}".encode()


def file_sha256(file: Path) -> str:
    """sha256 of a file, read in 4 MiB blocks.

    Parameters
    ----------
    file : Path
        The file.

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def read_index(file: Path, expected_sha256: str | None = None) -> tuple[dict, str]:
    """The arrays of a shard's ``.npz`` index and the file's sha256.

    Parameters
    ----------
    file : Path
        The ``shard-0000k.npz`` file.
    expected_sha256 : str or None, default=None
        Checksum recorded in ``store.json``; checked when given.

    Returns
    -------
    index : dict of ndarray
    sha256 : str

    Raises
    ------
    ValueError
        Naming the file, if it does not match its checksum or cannot be read.
    """
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{file} is missing; the store is damaged") from None
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256:
        raise ValueError(
            f"{file} does not match its sha256 in {MANIFEST}: the file is damaged; "
            "featurize the input again into a new directory"
        )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}, sha256
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"{file} is truncated or not a shard index ({type(error).__name__}: {error}); "
            "delete it to featurize that shard again"
        ) from None


def record_nbytes(
    n_sites: np.ndarray, n_images: np.ndarray, widths: tuple[int, int]
) -> np.ndarray:
    """Bytes of each record in a ``.bin`` file (see :func:`read_record`).

    Parameters
    ----------
    n_sites, n_images : ndarray of int64
        P and the number of supercell images of each structure.
    widths : (int, int)
        Site and pair feature widths F and C.

    Returns
    -------
    ndarray of int64
    """
    p = np.asarray(n_sites, np.int64)
    j = p * np.asarray(n_images, np.int64)
    return 8 * (p + j) + 4 * (p * widths[0] + p * j * widths[1])


def write_json(target: Path, value: dict) -> None:
    """Replace ``target`` atomically with ``value`` as JSON."""
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, target)


def _featurize_item(item: Any, where: str, settings: dict, fmt: str) -> SiteNetInput:
    if isinstance(item, str):
        item = _parse_one(item, fmt, where)
    return featurize_structure(item, **settings)


def write_shard(
    path: Path, k: int, start: int, items: list, settings: dict, on_error: str, fmt: str
) -> int:
    """Featurize one shard and write it atomically; returns the number of inputs.

    The ``.npz`` records the sha256 of the ``.bin`` file and the fingerprint
    of ``items`` (:func:`input_fingerprint`).
    """
    stem = shard_stem(path, k)
    fingerprint = input_fingerprint(items)
    inputs, source, skipped, reasons = [], [], [], []
    for position, item in enumerate(items, start):
        try:
            inputs.append(_featurize_item(item, f"structures[{position}]", settings, fmt))
            source.append(position)
        except _SKIPPABLE as error:
            if on_error == "raise":
                raise
            skipped.append(position)
            reasons.append(f"{type(error).__name__}: {error}")
    temporary = stem.with_suffix(".bin.tmp")
    offsets, digest = [], hashlib.sha256()
    with open(temporary, "wb") as handle:
        for x in inputs:
            offsets.append(handle.tell())
            for array, dtype in zip(_fields(x), _DTYPES):
                data = np.ascontiguousarray(array, dtype).tobytes()
                handle.write(data)
                digest.update(data)
        _sync(handle)
    os.replace(temporary, stem.with_suffix(".bin"))
    index = {
        "n_sites": np.array([x.n_sites for x in inputs], np.int64),
        "n_images": np.array([x.n_images for x in inputs], np.int64),
        "offset": np.array(offsets, np.int64),
        "source": np.array(source, np.int64),
        "skipped": np.array(skipped, np.int64),
        "reasons": np.array(reasons, dtype=str),
        "bin_sha256": np.array(digest.hexdigest()),
        "input_sha256": np.array(fingerprint),
    }
    for name, rows in _feature_rows(inputs, settings).items():
        mean = rows.mean(axis=0) if len(rows) else np.zeros(rows.shape[1])
        index.update({f"{name}_count": len(rows), f"{name}_mean": mean})
        index[f"{name}_m2"] = ((rows - mean) ** 2).sum(axis=0)
    temporary = stem.with_suffix(".npz.tmp")
    with open(temporary, "wb") as handle:
        np.savez(handle, **index)
        _sync(handle)
    os.replace(temporary, stem.with_suffix(".npz"))
    return len(items)


def _fields(x: SiteNetInput) -> tuple[np.ndarray, ...]:
    return x.atomic_numbers, x.neighbor_site, x.site_features, x.pair_features


def _feature_rows(inputs: list[SiteNetInput], settings: dict) -> dict[str, np.ndarray]:
    n_site, n_pair = len(settings["site_properties"]), len(settings["pair_features"])
    sites = [x.site_features for x in inputs] or [np.zeros((0, n_site))]
    pairs = [x.pair_features.reshape(-1, n_pair) for x in inputs] or [np.zeros((0, n_pair))]
    return {
        "site": np.concatenate(sites).astype(np.float64),
        "pair": np.concatenate(pairs).astype(np.float64),
    }


def _sync(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def read_record(
    descriptor: int,
    offset: int,
    p: int,
    j: int,
    widths: tuple[int, int],
    name: str | os.PathLike = "shard file",
) -> SiteNetInput:
    """The SiteNetInput of P sites and J neighbours stored at ``offset``.

    ``name`` (the file) is named in the ValueError raised on a short read.
    """
    shapes = ((p,), (j,), (p, widths[0]), (p, j, widths[1]))
    sizes = [int(np.prod(shape)) for shape in shapes]
    nbytes = 8 * (sizes[0] + sizes[1]) + 4 * (sizes[2] + sizes[3])
    data = os.pread(descriptor, nbytes, offset)
    if len(data) != nbytes:
        raise ValueError(f"{name} is truncated: {len(data)} of {nbytes} bytes at offset {offset}")
    arrays, start = [], 0
    for shape, size, dtype in zip(shapes, sizes, _DTYPES):
        arrays.append(np.frombuffer(data, dtype, size, start).reshape(shape))
        start += size * np.dtype(dtype).itemsize
    return SiteNetInput(arrays[0], arrays[2], arrays[3], arrays[1], n_images=j // p)


def combine_statistics(shards: list[dict]) -> dict[str, np.ndarray]:
    """Merge per-shard (count, mean, M2) into mean and std (Chan et al.'s parallel update)."""
    scaling = {}
    for name in ("site", "pair"):
        count, mean, m2 = 0, 0.0, 0.0
        for s in shards:
            n_b, mean_b, m2_b = int(s[f"{name}_count"]), s[f"{name}_mean"], s[f"{name}_m2"]
            if n_b == 0:
                continue
            delta, total = mean_b - mean, count + n_b
            mean = mean + delta * n_b / total
            m2 = m2 + m2_b + delta**2 * count * n_b / total
            count = total
        std = np.sqrt(m2 / max(count, 1))
        scaling[f"{name}_mean"] = np.asarray(mean, np.float32)
        scaling[f"{name}_std"] = np.where(std > 1e-8, std, 1.0).astype(np.float32)
    return scaling
