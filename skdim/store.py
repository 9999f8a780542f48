"""On-disk sharded store of featurized crystals, for data sets that do not fit in memory.

:func:`featurize_to_store` featurizes structures (or CIF texts, parsed in the
workers) shard by shard with joblib, so the work runs on local processes or on
a cluster through any joblib backend (Dask, Ray). Each shard is written to a
temporary name and renamed, so an interrupted run leaves only whole shards; a
rerun with the same input skips them. :class:`FeaturizedStore` is a torch
Dataset over the store that keeps per-structure sizes and offsets in memory
and reads each item with one ``os.pread``, so peak memory does not grow with
the number of structures (no memory map, whose pages would count as
resident). The file layout is described in :mod:`skdim._shards`.

Every shard file is checksummed (sha256) when it is written; the store checks
the small index files when it is opened and each ``.bin`` file the first time
a process reads from it. Each shard also records a fingerprint of its input,
and resuming with another input is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from torch.utils.data import Dataset

from skdim._featurize_settings import DEFAULTS
from skdim._featurize_settings import check_params as _check_params
from skdim._shards import (
    FORMAT_VERSION,
    LOCK_FILE,
    MANIFEST,
    Chunks,
    check_same_input,
    combine_statistics,
    file_sha256,
    input_fingerprint,
    open_manifest,
    read_index,
    read_record,
    record_nbytes,
    shard_stem,
    write_json,
    write_shard,
)
from skdim.featurize import SiteNetInput

__all__ = ["FeaturizedStore", "featurize_to_store", "iter_csv_texts"]


def iter_csv_texts(
    path: str | os.PathLike, column: str = "cif", *, nrows: int | None = None
) -> Iterator[str]:
    """Stream one text column of a (gzipped) CSV file without loading the file.

    Parameters
    ----------
    path : path-like
        CSV file, e.g. ``matbench_mp_gap.csv.gz``.
    column : str, default="cif"
        Column with the structure texts.
    nrows : int or None, default=None
        Read only the first ``nrows`` rows.

    Yields
    ------
    str
        One structure text per row.

    Examples
    --------
    >>> import os
    >>> texts = iter_csv_texts(os.environ["SKDIM_DATA"] + "/mp100.csv.gz", nrows=2)
    >>> [text.startswith("# generated using pymatgen") for text in texts]
    [True, True]
    """
    with pd.read_csv(path, usecols=[column], nrows=nrows, chunksize=4096) as reader:
        for chunk in reader:
            yield from chunk[column].tolist()


def featurize_to_store(
    structures: Iterable[Any],
    path: str | os.PathLike,
    *,
    shard_size: int = 1000,
    n_jobs: int | None = 1,
    on_error: str = "skip",
    fmt: str = "cif",
    progress: bool = False,
    max_atoms: int = DEFAULTS.max_atoms,
    supercell: str = DEFAULTS.supercell,
    site_properties: Sequence[str] = DEFAULTS.site_properties,
    pair_features: Sequence[str] = DEFAULTS.pair_features,
    max_sites: int | None = DEFAULTS.max_sites,
) -> FeaturizedStore:
    """Featurize structures into a sharded on-disk store (resumable).

    Parameters
    ----------
    structures : iterable of pymatgen Structure or str
        Structures, or structure file texts (parsed in the workers, so a
        stream such as :func:`iter_csv_texts` never holds all of them). Shard
        k holds inputs ``k * shard_size`` to ``(k + 1) * shard_size - 1``.
    path : path-like
        Store directory (created if needed).
    shard_size : int, default=1000
        Inputs per shard, the unit of work, of writing and of resuming.
    n_jobs : int or None, default=1
        joblib workers; with ``joblib.parallel_config(backend="dask")`` (or
        "ray") the shards are featurized on a cluster (workers must see
        ``path``).
    on_error : {"skip", "raise"}, default="skip"
        Skip invalid structures (their input positions and reasons are kept
        in the shard, see :attr:`FeaturizedStore.skipped`) or raise.
    fmt : str, default="cif"
        Format of text inputs (as in ``Structure.from_str``).
    progress : bool, default=False
        Show a progress bar over inputs.
    max_atoms, supercell, site_properties, pair_features, max_sites
        Featurization settings, as in :func:`skdim.featurize.featurize_structure`.

    Returns
    -------
    FeaturizedStore

    Notes
    -----
    Rerunning with the same input and settings resumes: finished shards are
    left untouched and only the missing ones are computed. Each finished
    shard's input is compared with the input given now (a sha256 of the
    texts, or of the Structures' cells): another input raises ValueError
    naming the shard, instead of mixing both inputs. A complete store is
    returned as it is once ``structures`` are checked to be its input (by
    these fingerprints; nothing is featurized again). Other settings or
    another shard size raise ValueError.

    One run at a time writes to a store: a second run into the same
    directory waits for the first (its lock file is ``store.lock``) and
    then finds the shards it wrote.

    Examples
    --------
    >>> import tempfile
    >>> from pymatgen.core import Lattice, Structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> workdir = tempfile.TemporaryDirectory()
    >>> path = workdir.name + "/store"
    >>> store = featurize_to_store([cscl, po, "not a CIF"], path, shard_size=2, max_atoms=30)
    >>> len(store), store.n_sites.tolist(), store.skipped.index.tolist()
    (2, [2, 1], [2])
    >>> sorted(p.name for p in store.path.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['shard-00000.bin', 'shard-00000.npz', 'shard-00001.bin', 'shard-00001.npz',
     'store.json', 'store.lock']
    >>> workdir.cleanup()
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    settings = _check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(path / LOCK_FILE):  # another run into this store: wait, then check
        return _featurize_locked(
            structures, path, settings, shard_size, n_jobs, on_error, fmt, progress
        )


def _featurize_locked(
    structures: Iterable[Any],
    path: Path,
    settings: dict,
    shard_size: int,
    n_jobs: int | None,
    on_error: str,
    fmt: str,
    progress: bool,
) -> FeaturizedStore:
    """:func:`featurize_to_store`, once this process holds the store's lock."""
    manifest = open_manifest(path, settings, shard_size)
    if manifest["complete"]:
        check_same_input(path, manifest, structures, shard_size)
        return FeaturizedStore(path)
    for stale in path.glob("*.tmp"):
        stale.unlink()
    done = {
        int(p.stem.split("-")[1]): str(read_index(p)[0]["input_sha256"])
        for p in path.glob("shard-*.npz")
    }
    chunks = Chunks(structures, shard_size)
    tasks = (
        delayed(write_shard)(path, k, k * shard_size, items, settings, on_error, fmt)
        for k, items in chunks
        if not _finished(path, k, k * shard_size, items, done)
    )
    from skdim._counter import counter

    with counter(None, "featurize", "structure", enabled=progress) as bar:
        bar.update(len(done) * shard_size)
        try:
            parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        except ValueError:  # backends without result callbacks (multiprocessing, ray)
            parallel = Parallel(n_jobs=n_jobs)
        for count in parallel(tasks):
            bar.update(count)
    if chunks.count == 0:
        raise ValueError("no structures to featurize")
    beyond = sorted(k for k in done if k >= chunks.count)
    if beyond:
        raise ValueError(
            f"{shard_stem(path, beyond[0]).with_suffix('.npz')} was featurized by an earlier "
            f"run, but this input has only {chunks.count} shards: it is another input. "
            f"Rerun with the original input, or use a new directory instead of {path}."
        )
    shards = []
    for k in range(chunks.count):
        index, npz_sha256 = read_index(shard_stem(path, k).with_suffix(".npz"))
        shards.append(
            {
                "npz_sha256": npz_sha256,
                "bin_sha256": str(index["bin_sha256"]),
                "input_sha256": str(index["input_sha256"]),
            }
        )
    manifest.update(complete=True, n_shards=chunks.count, shards=shards)
    write_json(path / MANIFEST, manifest)
    return FeaturizedStore(path)


def _finished(path: Path, k: int, start: int, items: list, done: dict[int, str]) -> bool:
    """Whether shard k is already written; ValueError if it was from another input."""
    if k not in done:
        return False
    if input_fingerprint(items) != done[k]:
        raise ValueError(
            f"{shard_stem(path, k).with_suffix('.npz')} was featurized from another input "
            f"than inputs {start} to {start + len(items) - 1} given now: resuming would mix "
            "two inputs in one store. Rerun with the original input, or use a new "
            f"directory instead of {path}."
        )
    return True


class FeaturizedStore(Dataset):
    """Torch dataset over a store written by :func:`featurize_to_store`.

    Pass it to ``DIMPretrainer(**store.featurization).fit(store)`` or
    ``transform(store)``: the estimators use :attr:`n_sites`,
    :attr:`n_neighbors` and :meth:`feature_scaling` and never hold the
    features in memory. Items are ``(SiteNetInput, target or None)``.

    Parameters
    ----------
    path : path-like
        Store directory.
    y : array-like of shape (n,) or None, default=None
        Targets in store order (align labels with ``y[store.source_index]``).
    max_open_files : int, default=64
        Shard files kept open at once.
    verify : bool, default=False
        Check the checksum of every ``.bin`` shard file now (one read of the
        whole store) rather than the first time this process reads from each.

    Attributes
    ----------
    featurization : dict
        Featurization settings of the store.
    n_sites, n_neighbors : ndarray of int64
        P and J of every structure.
    source_index : ndarray of int64
        Position of every structure in the featurized input.
    skipped : pandas.Series
        Reasons for the inputs that were skipped, indexed by input position.
    content_sha256 : str or None
        sha256 of the featurization settings and of the checksums of all
        ``.bin`` shard files listed in ``store.json``: two stores with the
        same value hold the same features in the same order (None for a store
        written without checksums).

    Examples
    --------
    >>> import tempfile
    >>> from pymatgen.core import Lattice, Structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> workdir = tempfile.TemporaryDirectory()
    >>> _ = featurize_to_store([cscl, cscl], workdir.name + "/store", max_atoms=30)
    >>> store = FeaturizedStore(workdir.name + "/store", y=[1.0, 2.0])
    >>> x, y = store[1]
    >>> x.n_sites, x.n_neighbors, float(y), store.featurization["max_atoms"]
    (2, 24, 2.0, 30)
    >>> workdir.cleanup()

    Damaged files are reported by name: the ``.npz`` index files are
    checked against the sha256 in ``store.json`` when the store is opened,
    the size of each ``.bin`` file too, and the sha256 of a ``.bin`` file the
    first time the process reads from it (forked DataLoader workers inherit
    the shards already checked; :meth:`verify` checks all of them).

    Train and embed without holding the features in memory:

    >>> from skdim import DIMPretrainer
    >>> model = DIMPretrainer(**store.featurization).fit(store)  # doctest: +SKIP
    >>> embeddings = model.transform(store)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        y: Any = None,
        *,
        max_open_files: int = 64,
        verify: bool = False,
    ) -> None:
        self.path = Path(path)
        manifest = _read_manifest(self.path)
        self.featurization = {
            k: tuple(v) if isinstance(v, list) else v for k, v in manifest["featurization"].items()
        }
        self.max_open_files = max_open_files
        widths = tuple(len(self.featurization[k]) for k in ("site_properties", "pair_features"))
        records = manifest.get("shards") or [{}] * manifest["n_shards"]
        self._bins = [shard_stem(self.path, k).with_suffix(".bin") for k in range(len(records))]
        shards = []
        for k, record in enumerate(records):
            index, _ = read_index(
                shard_stem(self.path, k).with_suffix(".npz"), record.get("npz_sha256")
            )
            _check_size(
                self._bin(k),
                int(record_nbytes(index["n_sites"], index["n_images"], widths).sum()),
            )
            shards.append(index)
        self._bin_sha256 = [record.get("bin_sha256") for record in records]
        content = [manifest["featurization"], self._bin_sha256]
        self.content_sha256 = (
            hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
            if manifest.get("shards")
            else None
        )
        self._verified: set[int] = set()
        column = lambda name: np.concatenate([s[name] for s in shards])  # noqa: E731
        self.n_sites = column("n_sites")
        self.n_neighbors = self.n_sites * column("n_images")
        self.offset = column("offset")
        self.shard = np.repeat(np.arange(len(shards)), [len(s["offset"]) for s in shards])
        self.source_index = column("source")
        self.skipped = pd.Series(column("reasons"), index=column("skipped"), dtype=object)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.n_sites):
            raise ValueError(f"{len(self.n_sites)} structures but {len(self.y)} targets")
        self._scaling = combine_statistics(shards)
        self._files: OrderedDict[int, int] = OrderedDict()
        self._pid = os.getpid()
        if verify:
            self.verify()

    def __len__(self) -> int:
        return len(self.n_sites)

    def __getitem__(self, index: int) -> tuple[SiteNetInput, Any]:
        widths = tuple(len(self.featurization[k]) for k in ("site_properties", "pair_features"))
        shard = int(self.shard[index])
        x = read_record(
            self._file(shard),
            int(self.offset[index]),
            int(self.n_sites[index]),
            int(self.n_neighbors[index]),
            widths,
            name=self._bin(shard),
        )
        return x, None if self.y is None else self.y[index]

    def verify(self) -> None:
        """Check the sha256 of every ``.bin`` shard file not yet checked by this process.

        Call it before iterating with a forked DataLoader to check each file
        once, in the parent, rather than once in every worker.

        Raises
        ------
        ValueError
            Naming the first damaged file.
        """
        for shard in range(len(self._bin_sha256)):
            self._verify(shard)

    def _bin(self, shard: int) -> Path:
        return self._bins[shard]

    def _verify(self, shard: int) -> None:
        expected = self._bin_sha256[shard]
        if shard in self._verified or expected is None:
            return
        if file_sha256(self._bin(shard)) != expected:
            raise ValueError(
                f"{self._bin(shard)} does not match its sha256 in {MANIFEST}: the file is "
                "damaged; featurize the input again into a new directory"
            )
        self._verified.add(shard)

    def feature_scaling(self) -> dict[str, np.ndarray]:
        """Mean and std of site and pair features, as :func:`skdim.data.feature_scaling`.

        Returns
        -------
        dict of ndarray
            ``site_mean``, ``site_std`` (F,) and ``pair_mean``, ``pair_std``
            (C,), float32, merged from the per-shard statistics.
        """
        return {name: value.copy() for name, value in self._scaling.items()}

    def _file(self, shard: int) -> int:
        if self._pid != os.getpid():  # a forked DataLoader worker: open its own files
            self._files, self._pid = OrderedDict(), os.getpid()
        if shard in self._files:
            self._files.move_to_end(shard)
            return self._files[shard]
        self._verify(shard)
        if len(self._files) >= self.max_open_files:
            os.close(self._files.popitem(last=False)[1])
        self._files[shard] = os.open(self._bin(shard), os.O_RDONLY)
        return self._files[shard]

    def close(self) -> None:
        """Close the open shard files (they are reopened on the next read)."""
        if getattr(self, "_pid", None) == os.getpid():  # not a half-built object
            for descriptor in self._files.values():
                os.close(descriptor)
        self._files = OrderedDict()

    __del__ = close

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"] = OrderedDict()
        state["_verified"] = set()  # another process checks the files it reads
        return state


def _read_manifest(path: Path) -> dict:
    """``store.json`` of a complete store; errors name the file."""
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{path} is not a featurized store (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_file.read_text())
        complete, version = manifest["complete"], manifest["format_version"]
        n_shards = manifest["n_shards"] if complete else 0
        dict(manifest["featurization"])
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest_file} is damaged ({type(error).__name__}: {error})") from None
    if not complete:
        raise ValueError(f"{path} is incomplete; rerun featurize_to_store with the same input")
    if version == 1:
        warnings.warn(
            f"{path} was written by an older skdim without checksums; its files are not "
            "verified (featurize it again to add them)",
            stacklevel=3,
        )
    elif version != FORMAT_VERSION:
        raise ValueError(
            f"{path} is a store of format {version}; this skdim reads formats 1 and "
            f"{FORMAT_VERSION}. Featurize the input again."
        )
    elif len(manifest.get("shards") or []) != n_shards:
        raise ValueError(f"{manifest_file} is damaged: it lists no checksum for some shards")
    return manifest


def _check_size(file: Path, expected: int) -> None:
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise FileNotFoundError(f"{file} is missing; the store is damaged") from None
    if size != expected:
        raise ValueError(
            f"{file} has {size} bytes, not the {expected} its index lists: it is truncated "
            "or damaged; featurize the input again into a new directory"
        )
