"""What training prints: progress lines, the epoch table, a bar over an epoch's batches.

``verbose`` levels of the estimators (see :func:`progress_callbacks`):

- 0: nothing;
- 1 (default): featurization progress (:mod:`skdim._counter`), and a line
  about every tenth of the training run (:class:`TrainingProgress`):
  optimizer steps done / total, the losses, time elapsed and time left;
- 2: adds skorch's epoch table, a row per epoch (:class:`EpochTable`);
- 3: adds a progress bar over each epoch's batches, on a terminal only
  (:class:`EpochProgressBar`).

Written to a file or a pipe, everything is whole lines: no carriage
returns, block characters or colours (the epoch table is coloured only on a
terminal, see :func:`use_colour`). skorch's ProgressBar guesses an epoch's
length from ``batch_size``; skdim's batches are cut by a budget of pairs, so
the bar and the lines ask the estimator's batch sampler how many batches the
coming epoch has.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from skorch.callbacks import Callback, EarlyStopping, PrintLog, ProgressBar
from skorch.utils import Ansi

from skdim._counter import (
    _isatty,
    _restore_warnings,
    _warnings_above,
    format_duration,
    interactive,
)
from skdim._schedule import PlateauSchedule

__all__ = [
    "EpochProgressBar",
    "EpochTable",
    "TrainingProgress",
    "progress_callbacks",
    "seconds_left",
    "use_colour",
]


def use_colour(stream: Any = None) -> bool:
    """Whether to print ANSI colours: the stream is a terminal and ``NO_COLOR`` is not set.

    Parameters
    ----------
    stream : file-like or None, default=None
        The stream printed to; None is the current ``sys.stdout``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import io
    >>> use_colour(io.StringIO())
    False
    """
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR"):  # https://no-color.org
        return False
    return _isatty(stream)


def seconds_left(
    elapsed: float, warm_up: float, steps_timed: int, steps_left: int
) -> float | None:
    """Time left at the rate of the steps after the warm-up; None before there is one.

    The first training step (and the first validation batch) of a fit include
    ``torch.compile``'s warm-up, tens of seconds on a CPU: their time is taken
    out of the elapsed time, and the first step out of the count.

    Parameters
    ----------
    elapsed : float
        Seconds since training began.
    warm_up : float
        Seconds spent in the batches left out of the rate.
    steps_timed : int
        Steps done besides those batches.
    steps_left : int
        Steps still to do.

    Returns
    -------
    float or None
        None while no step besides the warm-up has been timed.

    Examples
    --------
    The first of 100 steps took 40 s (compiling), the next nine 1 s each:

    >>> seconds_left(elapsed=49.0, warm_up=40.0, steps_timed=9, steps_left=90)
    90.0
    >>> seconds_left(elapsed=40.0, warm_up=40.0, steps_timed=0, steps_left=99) is None
    True
    """
    if steps_timed < 1:
        return None
    return max(0.0, elapsed - warm_up) / steps_timed * max(0, steps_left)


class TrainingProgress(Callback):
    """A line about every tenth of a fit's optimizer steps, and the last: steps, losses, time.

    Each line holds the steps done and the run's total, the epoch, the
    training (and validation) loss, the time elapsed and the time left.
    The time left is measured after the first step and the first validation
    batch, which include ``torch.compile``'s warm-up (:func:`seconds_left`);
    before a rate exists it reads "estimating". Where a plateau schedule or
    early stopping can end the run sooner, the total is the most steps it can
    take, the time left the most it can take, and the header says so; a run
    that stops early ends with a line saying why.

    Where an epoch is longer than a tenth of the run, a tenth reached within
    it gives a line with the epoch's training loss so far; otherwise lines
    come at the end of an epoch. The total is the steps done plus the coming
    epoch's batches and as many per remaining epoch, so the last line's total
    is the steps that were taken.

    Parameters
    ----------
    sink : callable or None, default=None
        Called with each line; None prints it to standard output (flushed).
    clock : callable, default=time.perf_counter
        Seconds, for the elapsed time and the time left.
    """

    def __init__(
        self,
        sink: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.sink = sink
        self.clock = clock

    def on_train_begin(self, net, **kwargs) -> None:
        history = net.history
        if len(history) and "step" in history[-1]:
            done = int(history[-1, "step"])
        else:
            done = sum("train_loss" in b for row in history for b in row.get("batches", ()))
            done = -(-done // _processes(net))
        self.done_ = done
        self.start_ = self.clock()
        self.warm_up_ = 0.0
        self.timed_ = 0
        self.first_ = {True: True, False: True}  # the first training / validation batch
        self.total_ = None
        self.shown_ = None  # the step of the last line
        self.finished_ = False

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs) -> None:
        batches = _train_batches(net, dataset_train)
        # (history length before the loop, epochs of the loop): see SiteNetMixin.fit_loop
        start, epochs = getattr(net, "loop_epochs_", (len(net.history) - 1, net.max_epochs or 1))
        self.epochs_ = start + epochs
        self.epoch_batches_, self.epoch_done_ = batches, 0
        self.total_ = self.done_ + batches * (1 + max(0, self.epochs_ - len(net.history)))
        if self.shown_ is None:
            self.shown_ = self.done_
            self._header(net, dataset_train, dataset_valid)

    def on_batch_begin(self, net, training: bool = False, **kwargs) -> None:
        self.batch_start_ = self.clock()

    def on_batch_end(self, net, training: bool = False, **kwargs) -> None:
        if self.first_[training]:
            self.first_[training] = False
            self.warm_up_ += self.clock() - self.batch_start_
        elif training:
            self.timed_ += 1
        if not training:
            return
        self.done_ += 1
        self.epoch_done_ += 1
        self.total_ = max(self.total_, self.done_)
        # within an epoch only if epochs are long (over a tenth of the run); else at its end
        long_epochs = 10 * self.epoch_batches_ > self.total_
        if long_epochs and self.epoch_done_ < self.epoch_batches_ and self._due():
            self._line(net, within_epoch=True)

    def on_epoch_end(self, net, **kwargs) -> None:
        # the epoch's batches may differ from the count asked for (a custom dataset)
        remaining = max(0, self.epochs_ - len(net.history))
        self.total_ = self.done_ + remaining * max(1, self.epoch_done_)
        self.finished_ = remaining == 0
        if self._due() or self.finished_:
            self._line(net, end="done" if self.finished_ else None)

    def on_train_end(self, net, **kwargs) -> None:
        if self.total_ is None or self.finished_:
            return
        reason = f"stopped early: {_stop_reason(net)}"
        if self.shown_ == self.done_:  # this step's line is out already
            self._write(f"step {self.done_:,}/{self.total_:,}: {reason}")
        else:
            self._line(net, end=reason)

    def _due(self) -> bool:
        """Whether the steps done reach a tenth of the total that no line has shown."""
        if self.done_ <= self.shown_:
            return False
        return (10 * self.done_) // self.total_ > (10 * self.shown_) // self.total_

    def _header(self, net, dataset_train, dataset_valid) -> None:
        bounded = _may_stop_early(net)
        steps = f"{'at most ' if bounded else ''}{self.total_:,} optimizer steps"
        if self.done_:
            steps += f", {self.done_:,} done before"
        text = f"{type(net).__name__}: {steps} ({self.epochs_:,} epochs)"
        if dataset_train is not None:
            text += f" on {len(dataset_train):,} structures"
        if dataset_valid is not None:
            text += f", {len(dataset_valid):,} held out for validation"
        self._write(text + (f"; {bounded}" if bounded else ""))

    def _line(self, net, within_epoch: bool = False, end: str | None = None) -> None:
        """Write a line; ``end`` (e.g. "done") takes the place of the time left."""
        self.shown_ = self.done_
        elapsed = self.clock() - self.start_
        history = net.history
        row = history[-1] if len(history) else {}
        if within_epoch:
            values = [b["train_loss"] for b in row.get("batches", ()) if "train_loss" in b]
            losses = [f"train_loss {sum(values) / len(values):.4g} (epoch so far)"]
        else:
            losses = [f"{k} {row[k]:.4g}" for k in ("train_loss", "valid_loss") if k in row]
        epoch = len(history) if within_epoch or "train_loss" in row else len(history) - 1
        if end is None:
            left = seconds_left(elapsed, self.warm_up_, self.timed_, self.total_ - self.done_)
            bound = "at most " if _may_stop_early(net) else ""
            end = (
                "estimating time left" if left is None else f"{bound}{format_duration(left)} left"
            )
        parts = [f"step {self.done_:,}/{self.total_:,}", f"epoch {epoch:,}/{self.epochs_:,}"]
        self._write("  ".join([*parts, *losses, f"{format_duration(elapsed)} elapsed, {end}"]))

    def _write(self, text: str) -> None:
        if self.sink is None:
            print(text, flush=True)
        else:
            self.sink(text)


def _processes(net) -> int:
    """Processes that share each epoch's batches (data-parallel training)."""
    return getattr(getattr(net, "accelerator", None), "num_processes", 1) or 1


def _train_batches(net, dataset) -> int:
    """Training batches of this process in the coming epoch."""
    if dataset is None:
        return 0
    return -(-len(net._batch_sampler(dataset, True)) // _processes(net))


def _may_stop_early(net) -> str:
    """What can end the run before its last step (empty: nothing)."""
    callbacks = dict(getattr(net, "callbacks_", ()))
    reasons = []
    if any(isinstance(cb, PlateauSchedule) for cb in callbacks.values()):
        reasons.append("the plateau schedule")
    if any(isinstance(cb, EarlyStopping) for cb in callbacks.values()):
        reasons.append("early stopping")
    if not reasons:
        return ""
    return f"{' or '.join(reasons)} can stop it earlier"


def _stop_reason(net) -> str:
    rows = net.history
    if len(rows) and rows[-1].get("stopped", False):
        loss = "validation" if "valid_loss" in rows[-1] else "training"
        return f"the {loss} loss stopped improving (plateau schedule)"
    for cb in dict(getattr(net, "callbacks_", ())).values():
        if isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience:
            return f"no improvement of {cb.monitor} for {cb.patience} epochs (early stopping)"
    return "interrupted"


class EpochProgressBar(ProgressBar):
    """skorch's per-epoch progress bar, with the epoch's true number of batches, on a terminal.

    The total is the number of pair-budget batches the coming training pass
    draws (plus the validation batches), known before the epoch starts. Off a
    terminal (see :func:`interactive`) it draws nothing; while it is drawn, a
    warning is written above it.
    """

    def _get_batches_per_epoch_phase(self, net, dataset, training: bool) -> int:
        if dataset is None:
            return 0
        batches = len(net._batch_sampler(dataset, training))
        # data-parallel training splits every pass between the processes
        processes = getattr(getattr(net, "accelerator", None), "num_processes", 1) or 1
        return -(-batches // processes)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs) -> None:
        """Open the epoch's bar, on a terminal only."""
        self.pbar_ = None
        if interactive():
            super().on_epoch_begin(net, dataset_train, dataset_valid, **kwargs)
            self.saved_ = _warnings_above(self.pbar_)

    def on_batch_end(self, net, **kwargs) -> None:
        """Advance the bar, if there is one."""
        if self.pbar_ is not None:
            super().on_batch_end(net, **kwargs)

    def on_epoch_end(self, net, **kwargs) -> None:
        """Close the bar, if there is one."""
        if self.pbar_ is not None:
            super().on_epoch_end(net, **kwargs)
            _restore_warnings(self.saved_)


class EpochTable(PrintLog):
    """skorch's epoch table, printed at ``verbose >= 2``, coloured only on a terminal.

    Another ``sink`` than ``print`` gets every row whatever ``verbose`` is
    (skorch's rule).
    """

    def _sink(self, text: str, verbose: int) -> None:
        if self.sink is not print or verbose > 1:
            self.sink(text)

    def format_row(self, row: dict, key: str, color: str) -> Any:
        """Format one cell as skorch does, without colour codes off a terminal.

        Parameters
        ----------
        row : dict
            The epoch's history row.
        key : str
            The column.
        color : str
            The ANSI colour of the column's best values.

        Returns
        -------
        str or object
            The cell.
        """
        if self.sink is print and use_colour():
            return super().format_row(row, key, color)
        cell = super().format_row(row, key, color="")
        return cell.replace(Ansi.ENDC.value, "") if isinstance(cell, str) else cell


def progress_callbacks(verbose: int) -> list[tuple[str, Callback]]:
    """The progress callbacks of a ``verbose`` level (the table is skorch's ``print_log``).

    Parameters
    ----------
    verbose : int
        0 nothing, 1 progress lines, 2 also the epoch table, 3 also a bar
        over each epoch's batches on a terminal.

    Returns
    -------
    list of (str, Callback)
    """
    callbacks: list[tuple[str, Callback]] = []
    if verbose >= 1:
        callbacks.append(("progress", TrainingProgress()))
    if verbose >= 3:
        callbacks.append(("progress_bar", EpochProgressBar()))
    return callbacks
