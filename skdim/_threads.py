"""How many CPU threads a training step uses: as many as there are idle cores.

Site-Net's steps are many small operations. On an idle machine two threads
run them about twice as fast as one (``benchmarks/results/nn.md``), but when
another process keeps a core busy, OpenMP threads spin-waiting for each other
made training 10-50x slower. So skdim does not keep torch's default (one
thread per core): it counts the cores that other processes leave idle, from
the one-minute load average minus its own threads, when training starts and
again before every epoch, and uses that many threads (at least one).

Setting ``OMP_NUM_THREADS`` turns this off: torch's own setting is kept.

A model must not depend on the load, so the numbers must not depend on the
thread count: skdim's layers avoid torch's per-thread partial sums
(:class:`skdim.nn.layers.Linear`, :class:`skdim.nn.layers.LayerNorm`), and
skdim asks Intel MKL, torch's CPU BLAS, for its reproducible mode
(``MKL_CBWR=AUTO,STRICT``, which costs nothing measurable here) before the
first matrix product. Where that mode is not in effect (torch computed a
product before skdim was imported, or another BLAS whose results vary with
the thread count), a quick probe finds out and skdim keeps torch's thread
count instead of following the load. Bitwise identity across thread counts
is verified on the CPUs the README names (*Threads*); on others (an Intel
Xeon with AVX-512, say) other kernels can move the last bits (~1e-6).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch
from skorch.callbacks import Callback

__all__ = ["ThreadPolicy", "idle_threads", "thread_count_is_invisible", "thread_policy"]

# read by MKL at its first call, not at import: set before skdim computes anything
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def idle_threads(own_threads: int = 0, load: float | None = None, cores: int | None = None) -> int:
    """Threads to use: the cores that other processes leave idle (at least 1).

    Parameters
    ----------
    own_threads : int, default=0
        Threads this process has been running (counted in the load average).
    load : float or None, default=None
        The one-minute load average; None reads it from the system.
    cores : int or None, default=None
        Cores available to this process; None asks the system.

    Returns
    -------
    int

    Examples
    --------
    >>> idle_threads(load=0.1, cores=2)  # an idle machine
    2
    >>> idle_threads(own_threads=2, load=3.0, cores=2)  # another busy process
    1
    """
    cores = cores or _cores()
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available on this platform
            return cores
    others = max(0.0, load - own_threads)
    return int(max(1, min(cores, round(cores - others))))


#: (rows, inner, columns) of the products :func:`thread_count_is_invisible`
#: probes: a few rows (a crystal-level layer), whose result varies with the
#: thread count in MKL's default mode, and tens to hundreds of rows (a layer
#: over a batch's sites), which vary in its compatible mode
#: (``MKL_CBWR=COMPATIBLE``) where a few rows did not.
_PROBED_PRODUCTS = ((6, 128, 64), (64, 128, 136), (819, 128, 64))


@functools.cache
def thread_count_is_invisible() -> bool:
    """Whether matrix products give the same bits on one thread and on two.

    Probes products of the shapes in ``_PROBED_PRODUCTS``, which vary with the
    thread count when MKL is not in its strict reproducible mode. A pass
    covers these products only, not every kernel of a training step: on CPUs
    other than those the README's *Threads* names, a fit can still differ in
    the last bits between thread counts.

    Returns
    -------
    bool
    """
    generator = torch.Generator().manual_seed(0)
    draw = functools.partial(torch.randn, generator=generator)
    products = [(draw(rows, inner), draw(inner, cols)) for rows, inner, cols in _PROBED_PRODUCTS]
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append([x @ w for x, w in products])
    finally:
        torch.set_num_threads(before)
    return all(torch.equal(a, b) for a, b in zip(*results))


def _managed() -> bool:
    return "OMP_NUM_THREADS" not in os.environ and thread_count_is_invisible()


@contextlib.contextmanager
def thread_policy() -> Iterator[None]:
    """Use :func:`idle_threads` threads inside the block, torch's setting after it."""
    if not _managed():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(idle_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ThreadPolicy(Callback):
    """Re-count the idle cores before every epoch (see :func:`idle_threads`)."""

    def on_epoch_begin(self, net, **kwargs) -> None:
        if _managed():
            own = torch.get_num_threads()
            torch.set_num_threads(idle_threads(own_threads=own))
            net.history.record("threads", torch.get_num_threads())
