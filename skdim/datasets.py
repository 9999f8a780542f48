"""Loaders for crystal data sets kept on local disk, and a cache for featurized data.

Nothing here downloads: files are read from a path given as an argument or
from the directory in the ``SKDIM_DATA`` environment variable.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from pymatgen.core import Structure

from skdim._structure_files import check_poscar_counts, read_structure_file
from skdim.featurize import SiteNetInput

__all__ = [
    "get_data_home",
    "load_featurized",
    "load_matbench_mp_gap",
    "load_structure_folder",
    "load_structures_csv",
    "parse_structures",
    "save_featurized",
]

_STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")
_ID_COLUMNS = ("matbench_id", "mp_id", "id")  # a CSV file's row ids, in the order looked for


def get_data_home(path: str | os.PathLike | None = None) -> Path:
    """Directory holding the data files: ``path``, else ``$SKDIM_DATA``.

    Parameters
    ----------
    path : path-like or None, default=None
        The directory; None reads the ``SKDIM_DATA`` environment variable.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    FileNotFoundError
        If neither is given or the directory does not exist.

    Examples
    --------
    >>> import os
    >>> from skdim.datasets import get_data_home
    >>> home = get_data_home()  # the directory in $SKDIM_DATA
    >>> home == get_data_home(os.environ["SKDIM_DATA"])
    True
    >>> (home / "mp100.csv.gz").is_file()
    True
    """
    path = path if path is not None else os.environ.get("SKDIM_DATA")
    if path is None:
        raise FileNotFoundError(
            "no data directory: pass path=... or set the SKDIM_DATA environment variable"
        )
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {path} does not exist")
    return path


def _parse_one(text: str, fmt: str, label: object) -> Structure:
    if fmt == "poscar":
        check_poscar_counts(text, label)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CIF rounding notices, one per file
            return Structure.from_str(text, fmt=fmt)
    except Exception as error:  # pymatgen raises many types on bad files
        raise ValueError(f"could not parse structure {label!r}: {error}") from error


def _parse_chunk(texts, fmt, labels):
    return [_parse_one(t, fmt, label) for t, label in zip(texts, labels)]


def parse_structures(
    texts: Sequence[str],
    labels: Sequence[object],
    *,
    fmt: str = "cif",
    n_jobs: int | None = 1,
    progress: bool = False,
) -> list[Structure]:
    """Parse structure files given as strings, in order, optionally in parallel.

    Parameters
    ----------
    texts : sequence of str
        File contents.
    labels : sequence
        One id per text, used in error messages.
    fmt : {"cif", "poscar"}, default="cif"
        File format.
    n_jobs : int or None, default=1
        Worker processes (joblib); -1 uses all cores.
    progress : bool, default=False
        Show progress: a bar on a terminal, a few whole lines otherwise.

    Returns
    -------
    list of Structure

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> texts = [cscl.to(fmt="cif"), cscl.to(fmt="poscar")]
    >>> [s.composition.reduced_formula for s in parse_structures(texts[:1], ["a"])]
    ['CsCl']
    >>> parse_structures(texts[1:], ["b"], fmt="poscar")[0].lattice.a
    4.12
    """
    from skdim._counter import counter

    size = max(1, min(500, len(texts) // (8 * max(1, abs(n_jobs or 1)))))
    starts = range(0, len(texts), size)
    tasks = (delayed(_parse_chunk)(texts[i : i + size], fmt, labels[i : i + size]) for i in starts)
    structures: list[Structure] = []
    with counter(len(texts), "parse", "structure", enabled=progress and len(texts) > 0) as bar:
        for chunk in Parallel(n_jobs=n_jobs, return_as="generator")(tasks):
            structures.extend(chunk)
            bar.update(len(chunk))
    return structures


def load_structures_csv(
    path: str | os.PathLike,
    structure_col: str = "cif",
    target: str | Sequence[str] | None = None,
    *,
    id_col: str | None = None,
    ids: Sequence[object] | None = None,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> tuple[pd.Series, pd.Series | pd.DataFrame]:
    """Load a CSV file with one CIF text per row, as in ``shared/data/*.csv.gz``.

    Parameters
    ----------
    path : path-like
        CSV file (optionally gzip-compressed).
    structure_col : str, default="cif"
        Column holding the CIF text.
    target : str, list of str or None, default=None
        Label column(s) to return; None returns every column except the
        structure and id columns.
    id_col : str or None, default=None
        Column of material ids; by default the first of ``matbench_id``,
        ``mp_id``, ``id`` that exists (else the row number).
    ids : sequence or None, default=None
        Parse only these ids (in this order); saves time on large files.
    n_jobs : int or None, default=1
        Parallel CIF parsing.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    structures : pandas.Series of Structure
        Indexed by material id.
    targets : pandas.Series or pandas.DataFrame
        Indexed by the same ids.

    Examples
    --------
    >>> from skdim.datasets import get_data_home, load_structures_csv
    >>> X, y = load_structures_csv(get_data_home() / "mp100.csv.gz", target="e_form_per_atom")
    >>> len(X), X.index[0], type(X.iloc[0]).__name__
    (100, 'mp-10114', 'Structure')
    >>> round(float(y.loc["mp-10114"]), 3)  # formation energy, eV/atom
    -0.575

    Only some rows, in the order given:

    >>> X, labels = load_structures_csv(
    ...     get_data_home() / "mp100.csv.gz", ids=["mp-1019110", "mp-10114"])
    >>> list(X.index), list(labels.columns)
    (['mp-1019110', 'mp-10114'], ['e_form_per_atom', 'band_gap'])
    """
    return _structures_from_frame(
        pd.read_csv(path), str(path), structure_col, target, id_col, ids, n_jobs, progress
    )


def _structures_from_frame(frame, path, structure_col, target, id_col, ids, n_jobs, progress):
    if structure_col not in frame:
        raise ValueError(f"{path} has no column {structure_col!r}: {list(frame.columns)}")
    if id_col is None:
        id_col = next((c for c in _ID_COLUMNS if c in frame), None)
    if id_col is not None:
        if id_col not in frame:
            raise ValueError(f"{path} has no id column {id_col!r}")
        frame = frame.set_index(id_col)
    if frame.index.has_duplicates:
        raise ValueError(f"{path}: ids in {id_col!r} are not unique")
    if ids is not None:
        missing = pd.Index(ids).difference(frame.index)
        if len(missing):
            raise KeyError(f"{path}: unknown ids {list(missing[:5])}")
        frame = frame.loc[list(ids)]
    if target is not None:  # before parsing, which is the slow part
        wanted = (
            [target] if isinstance(target, str) or not isinstance(target, Sequence) else target
        )
        absent = [c for c in wanted if c not in frame]
        if absent:
            labels = [c for c in frame.columns if c not in (structure_col, "id")]
            raise KeyError(
                f"{path} has no target column {absent[0]!r}; its label columns are "
                f"{', '.join(map(str, labels)) or 'none'}"
            )
    structures = parse_structures(
        frame[structure_col].tolist(), frame.index.tolist(), n_jobs=n_jobs, progress=progress
    )
    if target is None:
        target = [c for c in frame.columns if c not in (structure_col, "id")]
    if isinstance(target, str) or not isinstance(target, Sequence):
        targets = frame[target]
    else:
        targets = frame[list(target)]
    return pd.Series(structures, index=frame.index, name="structure", dtype=object), targets


def load_structure_folder(
    path: str | os.PathLike,
    id_prop: str | None = "id_prop.csv",
    *,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> tuple[pd.Series, pd.Series | None]:
    """Load a folder of CIF or POSCAR files with a CGCNN-style ``id_prop.csv``.

    ``id_prop.csv`` has no header: column 0 names the structure file (with or
    without its extension), column 1 is the target value.

    A structure's id is its file name without the ``.cif``, ``.vasp`` or
    ``.poscar`` extension, with or without ``id_prop.csv``: ``1000041.cif``
    is ``1000041``, ``POSCAR-JVASP-10.vasp`` is ``POSCAR-JVASP-10``, ``POSCAR``
    stays ``POSCAR``. Two files with the same id (``a.cif`` and ``a.vasp``)
    are an error.

    Parameters
    ----------
    path : path-like
        The folder.
    id_prop : str or None, default="id_prop.csv"
        Name of the id/target file; None loads every ``*.cif``, ``*.vasp``,
        ``*.poscar`` and ``POSCAR*`` file without targets.
    n_jobs : int or None, default=1
        Parallel parsing.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    structures : pandas.Series of Structure
        Indexed by id (the file name without its extension).
    targets : pandas.Series or None
        Indexed by the same ids (None when ``id_prop`` is None).

    Examples
    --------
    >>> from skdim.datasets import get_data_home, load_structure_folder
    >>> X, y = load_structure_folder(get_data_home() / "cod_cif10")
    >>> len(X), X.index[0], float(y.iloc[0])
    (10, '1000041', 1.0)

    POSCAR files work the same way; ``id_prop=None`` loads every structure file
    of the folder, without targets:

    >>> X, y = load_structure_folder(get_data_home() / "jarvis_poscar50")
    >>> len(X), X.index[0]  # id_prop.csv names it POSCAR-JVASP-90856.vasp
    (50, 'POSCAR-JVASP-90856')
    >>> X, y = load_structure_folder(get_data_home() / "cod_cif10", id_prop=None)
    >>> len(X), X.index[0], y is None
    (10, '1000041', True)
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a directory")
    if id_prop is not None:
        table = pd.read_csv(folder / id_prop, header=None, dtype={0: str})
        files = [_structure_file(folder, i) for i in table[0]]
    else:
        files = sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() in _STRUCTURE_SUFFIXES or p.name.startswith("POSCAR")
        )
    ids = [_file_id(f.name) for f in files]
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(duplicated):
        raise ValueError(
            f"{folder}: several files have the id {duplicated[0]!r} (ids are file names "
            "without their extension); rename one"
        )
    targets = None
    if id_prop is not None:
        targets = pd.Series(table[1].to_numpy(), index=pd.Index(ids, name="id"), name="target")
    formats = ["cif" if f.suffix.lower() == ".cif" else "poscar" for f in files]
    structures = []
    for fmt in ("cif", "poscar"):
        chosen = [k for k, f in enumerate(formats) if f == fmt]
        if not chosen:
            continue
        texts = [read_structure_file(files[k]) for k in chosen]
        parsed = parse_structures(
            texts, [files[k].name for k in chosen], fmt=fmt, n_jobs=n_jobs, progress=progress
        )
        structures.extend(zip(chosen, parsed))
    ordered = [s for _, s in sorted(structures, key=lambda pair: pair[0])]
    return pd.Series(ordered, index=pd.Index(ids, name="id"), dtype=object), targets


def _structure_file(folder: Path, file_id: str) -> Path:
    for name in (file_id, *(file_id + suffix for suffix in _STRUCTURE_SUFFIXES)):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no structure file for id {file_id!r} in {folder}")


def _file_id(name: str) -> str:
    """A structure file's id: its name without a .cif, .vasp or .poscar extension."""
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and stem and f".{suffix.lower()}" in _STRUCTURE_SUFFIXES else name


def load_matbench_mp_gap(
    path: str | os.PathLike | None = None,
    fold: int = 0,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    random_state: int = 0,
    n_jobs: int | None = 1,
    progress: bool = False,
) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Load one official matbench ``mp_gap`` fold (PBE band gap, eV).

    Reads ``matbench_mp_gap.csv.gz`` and ``matbench_mp_gap_official_folds.json.gz``
    from ``path`` (or ``$SKDIM_DATA``). Train is every entry not in the fold's
    test list, as in matbench.

    Parameters
    ----------
    path : path-like or None, default=None
        Data directory.
    fold : int, default=0
        Fold number, 0-4.
    n_train, n_test : int or None, default=None
        Random subsample sizes (drawn before parsing, so they save time).
    random_state : int, default=0
        Seed for the subsamples.
    n_jobs : int or None, default=1
        Parallel CIF parsing (all 106,113 take about 10 minutes on one core).
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    X_train, y_train, X_test, y_test : pandas.Series
        Structures and band gaps indexed by ``matbench_id``.

    Examples
    --------
    Reading the 53 MB file takes several seconds, so this is not run as a test:

    >>> from skdim.datasets import load_matbench_mp_gap
    >>> X_train, y_train, X_test, y_test = load_matbench_mp_gap(
    ...     fold=0, n_train=1000, n_test=500)  # doctest: +SKIP
    >>> len(X_train), len(X_test)  # doctest: +SKIP
    (1000, 500)
    """
    home = get_data_home(path)
    with gzip.open(home / "matbench_mp_gap_official_folds.json.gz", "rt") as handle:
        folds = json.load(handle)["folds"]
    if f"fold_{fold}" not in folds:
        raise ValueError(f"fold must be one of 0-{len(folds) - 1}, got {fold}")
    csv = home / "matbench_mp_gap.csv.gz"
    frame = pd.read_csv(csv)
    test_ids = pd.Index(folds[f"fold_{fold}"]["test"])
    train_ids = pd.Index(frame["matbench_id"]).difference(test_ids, sort=False)
    rng = np.random.default_rng(random_state)
    if n_train is not None:
        train_ids = train_ids[np.sort(rng.choice(len(train_ids), n_train, replace=False))]
    if n_test is not None:
        test_ids = test_ids[np.sort(rng.choice(len(test_ids), n_test, replace=False))]
    ids = train_ids.append(test_ids)
    structures, gaps = _structures_from_frame(
        frame, str(csv), "cif", "gap_pbe", "matbench_id", ids, n_jobs, progress
    )
    n = len(train_ids)
    return structures.iloc[:n], gaps.iloc[:n], structures.iloc[n:], gaps.iloc[n:]


def save_featurized(
    path: str | os.PathLike, inputs: Sequence[SiteNetInput], **metadata: object
) -> None:
    """Save featurized structures to one compressed ``.npz`` file.

    Parameters
    ----------
    path : path-like
        Output file.
    inputs : sequence of SiteNetInput
        As returned by :func:`skdim.featurize.featurize`.
    **metadata
        JSON-serializable facts to keep with the data (ids, settings ...).

    See Also
    --------
    load_featurized : Read the file back.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.featurize import featurize
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> inputs = featurize([cscl, cscl], max_atoms=20)
    >>> path = Path(tempfile.mkdtemp()) / "cscl.npz"
    >>> save_featurized(path, inputs, ids=["a", "b"], max_atoms=20)
    >>> loaded, metadata = load_featurized(path)
    >>> metadata
    {'ids': ['a', 'b'], 'max_atoms': 20}
    >>> bool((loaded[1].pair_features == inputs[1].pair_features).all())
    True
    """
    if any(x is None for x in inputs):
        raise ValueError("inputs contain None (skipped structures); drop them first")
    np.savez_compressed(
        path,
        atomic_numbers=np.concatenate([x.atomic_numbers for x in inputs]),
        site_features=np.concatenate([x.site_features for x in inputs]),
        pair_features=np.concatenate(
            [x.pair_features.reshape(-1, x.pair_features.shape[-1]) for x in inputs]
        ),
        neighbor_site=np.concatenate([x.neighbor_site for x in inputs]),
        n_sites=np.array([x.n_sites for x in inputs]),
        n_images=np.array([x.n_images for x in inputs]),
        metadata=np.array(json.dumps(metadata)),
    )


def load_featurized(path: str | os.PathLike) -> tuple[list[SiteNetInput], dict]:
    """Load what :func:`save_featurized` wrote.

    Parameters
    ----------
    path : path-like
        A ``.npz`` file written by :func:`save_featurized`.

    Returns
    -------
    inputs : list of SiteNetInput
        The featurized structures, in the order they were saved.
    metadata : dict
        The keyword arguments given to :func:`save_featurized`.

    Examples
    --------
    See :func:`save_featurized`.
    """
    with np.load(path, allow_pickle=False) as data:
        n_sites, n_images = data["n_sites"], data["n_images"]
        site_start = np.r_[0, np.cumsum(n_sites)]
        pair_start = np.r_[0, np.cumsum(n_sites * n_sites * n_images)]
        neighbor_start = np.r_[0, np.cumsum(n_sites * n_images)]
        atomic, sites, pairs = data["atomic_numbers"], data["site_features"], data["pair_features"]
        neighbors = data["neighbor_site"]
        inputs = []
        for k, (p, m) in enumerate(zip(n_sites, n_images)):
            block = pairs[pair_start[k] : pair_start[k + 1]].reshape(p, p * m, -1)
            inputs.append(
                SiteNetInput(
                    atomic_numbers=atomic[site_start[k] : site_start[k + 1]],
                    site_features=sites[site_start[k] : site_start[k + 1]],
                    pair_features=block,
                    neighbor_site=neighbors[neighbor_start[k] : neighbor_start[k + 1]],
                    n_images=int(m),
                )
            )
        return inputs, json.loads(str(data["metadata"]))
