"""The parallel driver of featurization: chunks, worker processes, errors, progress.

:func:`run` applies a featurizer of one structure to many, in input order, in
worker processes (joblib) when there are enough structures to pay for them;
invalid structures raise or are skipped with one warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

from joblib import Parallel, delayed, effective_n_jobs
from pymatgen.core import IStructure

#: Fewest structures per worker process: smaller inputs are featurized serially,
#: since starting workers costs more than it saves.
MIN_PER_WORKER = 500


def run(
    featurize_one: Callable[..., Any],
    structures: Iterable[Any],
    params: dict,
    *,
    n_jobs: int | None,
    progress: bool,
    on_error: str,
) -> list[Any]:
    """``featurize_one(structure, where, **params)`` of every structure, in order.

    ``featurize_one`` must be importable by name (it is sent to the workers).
    With ``on_error="skip"`` an invalid structure gives None and one warning
    lists the skipped ones.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    values = _as_list(structures)
    labels = _labels(structures, len(values))
    items = [(i, labels[i], s) for i, s in enumerate(values)]
    workers = n_workers(n_jobs, len(items))
    size = max(1, min(256, len(items) // (8 * workers)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    tasks = (delayed(_featurize_chunk)(chunk, on_error, params, featurize_one) for chunk in chunks)
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
            stacklevel=3,
        )
    return [None if isinstance(r, str) else r for r in results]


def _describe(index: int, label: Any) -> str:
    return f"structures[{index}]" + ("" if label is None else f" (id {label!r})")


def _featurize_chunk(items, on_error, params, featurize_one):
    out = []
    for index, label, structure in items:
        try:
            out.append(featurize_one(structure, _describe(index, label), **params))
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


def n_workers(n_jobs: int | None, n_items: int) -> int:
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
    from skdim._counter import counter  # a bar on a terminal, whole lines elsewhere

    return counter(total, "featurize", "structure", enabled=enabled)
