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
"""

from __future__ import annotations

import itertools
import json
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from torch.utils.data import Dataset

from skdim._shards import (
    MANIFEST,
    combine_statistics,
    open_manifest,
    read_record,
    shard_stem,
    write_json,
    write_shard,
)
from skdim.featurize import DEFAULT_SITE_PROPERTIES, SiteNetInput, _check_params

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
    max_atoms: int = 50,
    supercell: str = "cubic",
    site_properties: Sequence[str] = DEFAULT_SITE_PROPERTIES,
    pair_features: Sequence[str] = ("distance",),
    max_sites: int | None = 500,
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
    left untouched and only the missing ones are computed. A complete store is
    returned as is. Other settings or another shard size raise ValueError.

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
     'store.json']
    >>> workdir.cleanup()
    """
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    settings = _check_params(max_atoms, supercell, site_properties, pair_features, max_sites)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest = open_manifest(path, settings, shard_size)
    if manifest["complete"]:
        return FeaturizedStore(path)
    for stale in path.glob("*.tmp"):
        stale.unlink()
    done = {int(p.stem.split("-")[1]) for p in path.glob("shard-*.npz")}
    chunks = _chunks(structures, shard_size)
    tasks = (
        delayed(write_shard)(path, k, k * shard_size, items, settings, on_error, fmt)
        for k, items in chunks
        if k not in done
    )
    from tqdm.auto import tqdm

    with tqdm(disable=not progress, desc="featurize", unit="structure") as bar:
        bar.update(len(done) * shard_size)
        try:
            parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        except ValueError:  # backends without result callbacks (multiprocessing, ray)
            parallel = Parallel(n_jobs=n_jobs)
        for count in parallel(tasks):
            bar.update(count)
    if chunks.count == 0:
        raise ValueError("no structures to featurize")
    manifest.update(complete=True, n_shards=chunks.count)
    write_json(path / MANIFEST, manifest)
    return FeaturizedStore(path)


class _chunks:
    """(k, inputs of shard k) from any iterable; ``count`` is set once it is exhausted."""

    def __init__(self, items: Iterable[Any], size: int):
        self.items = iter(items.to_numpy() if hasattr(items, "iloc") else items)
        self.size, self.count = size, 0

    def __iter__(self):
        while chunk := list(itertools.islice(self.items, self.size)):
            yield self.count, chunk
            self.count += 1


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

    Train and embed without holding the features in memory:

    >>> from skdim import DIMPretrainer
    >>> model = DIMPretrainer(**store.featurization).fit(store)  # doctest: +SKIP
    >>> embeddings = model.transform(store)  # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike, y: Any = None, *, max_open_files: int = 64
    ) -> None:
        self.path = Path(path)
        manifest_file = self.path / MANIFEST
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{self.path} is not a featurized store (no {MANIFEST})")
        manifest = json.loads(manifest_file.read_text())
        if not manifest["complete"]:
            raise ValueError(
                f"{self.path} is incomplete; rerun featurize_to_store with the same input"
            )
        self.featurization = {
            k: tuple(v) if isinstance(v, list) else v for k, v in manifest["featurization"].items()
        }
        self.max_open_files = max_open_files
        shards = []
        for k in range(manifest["n_shards"]):
            with np.load(shard_stem(self.path, k).with_suffix(".npz")) as data:
                shards.append({name: data[name] for name in data.files})
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

    def __len__(self) -> int:
        return len(self.n_sites)

    def __getitem__(self, index: int) -> tuple[SiteNetInput, Any]:
        widths = tuple(len(self.featurization[k]) for k in ("site_properties", "pair_features"))
        x = read_record(
            self._file(int(self.shard[index])),
            int(self.offset[index]),
            int(self.n_sites[index]),
            int(self.n_neighbors[index]),
            widths,
        )
        return x, None if self.y is None else self.y[index]

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
        if len(self._files) >= self.max_open_files:
            os.close(self._files.popitem(last=False)[1])
        self._files[shard] = os.open(shard_stem(self.path, shard).with_suffix(".bin"), os.O_RDONLY)
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
        return state
