"""Learning-rate schedules that resume exactly: every value is a function of the history.

Two skorch callbacks:

- :class:`CosineSchedule` (supervised training): linear warm-up, then cosine
  decay to a small fraction of the peak learning rate over a fixed budget of
  optimizer steps.
- :class:`PlateauSchedule` (DIM pretraining): linear warm-up, then the peak
  learning rate until the monitored loss stops improving; each plateau cuts
  the learning rate, and the plateau after the last cut stops training.

Neither keeps state that the history does not hold: the optimizer step count
and the learning-rate factor are recorded in every epoch's row, so a run
resumed from a checkpoint continues on the same schedule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skorch.callbacks import Callback

__all__ = ["CosineSchedule", "PlateauSchedule", "auto_steps", "plateau_state"]


def auto_steps(n: int) -> int:
    """Optimizer steps of supervised training on ``n`` labelled structures.

    Chosen on the development split (``benchmarks/results/recipe_study.md``).

    Parameters
    ----------
    n : int
        Training structures.

    Returns
    -------
    int

    Examples
    --------
    >>> auto_steps(250)
    1500
    """
    return int(np.clip(6 * n, 500, 4000))


class _StepSchedule(Callback):
    """Sets every parameter group's learning rate before each training batch."""

    def _factor(self, step: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_train_begin(self, net, **kwargs) -> None:
        history = net.history
        self.step_ = int(history[-1, "step"]) if len(history) and "step" in history[-1] else 0
        self.base_lrs_ = []
        for optimizer in _optimizers(net):
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                self.base_lrs_.append(group["initial_lr"])

    def on_batch_begin(self, net, batch=None, training: bool = False, **kwargs) -> None:
        if not training:
            return
        factor = self._factor(self.step_)
        groups = [g for optimizer in _optimizers(net) for g in optimizer.param_groups]
        for group, base in zip(groups, self.base_lrs_):
            group["lr"] = base * factor
        self.step_ += 1

    def on_epoch_end(self, net, **kwargs) -> None:
        net.history.record("step", self.step_)
        net.history.record("lr", self.base_lrs_[0] * self._factor(max(self.step_ - 1, 0)))


class CosineSchedule(_StepSchedule):
    """Linear warm-up over ``warmup`` of ``total_steps``, then cosine decay.

    Parameters
    ----------
    total_steps : int or None, default=None
        Optimizer steps of the whole run; None reads the net's
        ``total_steps_`` (set by the skdim estimators' ``fit``).
    warmup : float, default=0.05
        Fraction of the steps spent warming up linearly from 0.
    final : float, default=0.01
        The last step's learning rate as a fraction of the peak.

    Examples
    --------
    >>> schedule = CosineSchedule(total_steps=100, warmup=0.1, final=0.0)
    >>> schedule.total_ = 100
    >>> [round(schedule._factor(step), 3) for step in (0, 9, 10, 99)]
    [0.1, 1.0, 1.0, 0.0]
    """

    def __init__(self, total_steps: int | None = None, warmup: float = 0.05, final: float = 0.01):
        self.total_steps = total_steps
        self.warmup = warmup
        self.final = final

    def on_train_begin(self, net, **kwargs) -> None:
        super().on_train_begin(net, **kwargs)
        self.total_ = self.total_steps or net.total_steps_

    def _factor(self, step: int) -> float:
        total = getattr(self, "total_", None) or self.total_steps
        warm = max(1, int(round(self.warmup * total)))
        if step < warm:
            return (step + 1) / warm
        span = max(1, total - warm - 1)
        progress = min(1.0, (step - warm) / span)
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * progress))


class PlateauSchedule(_StepSchedule):
    """Warm-up, then cut the learning rate on each plateau; stop after the last cut.

    After every epoch the monitored loss (the self-supervised validation loss
    for DIM) is compared with the best so far. ``patience`` epochs without an
    improvement of more than ``threshold`` (relative) make a plateau: the
    learning rate is multiplied by ``factor``, up to ``cuts`` times, and the
    next plateau ends training.

    Parameters
    ----------
    patience : int, default=3
        Epochs without improvement that make a plateau.
    factor : float, default=0.3
        Learning-rate multiplier at each plateau.
    cuts : int, default=2
        Plateaus that cut the learning rate before one stops training.
    threshold : float, default=1e-3
        Smallest relative improvement that counts.
    warmup_steps : int, default=200
        Optimizer steps of linear warm-up at the start (at most one epoch).
    monitor : str, default="valid_loss"
        History key; ``train_loss`` is used when it is missing (no validation).
    """

    def __init__(
        self,
        patience: int = 3,
        factor: float = 0.3,
        cuts: int = 2,
        threshold: float = 1e-3,
        warmup_steps: int = 200,
        monitor: str = "valid_loss",
    ):
        self.patience = patience
        self.factor = factor
        self.cuts = cuts
        self.threshold = threshold
        self.warmup_steps = warmup_steps
        self.monitor = monitor

    def on_train_begin(self, net, **kwargs) -> None:
        super().on_train_begin(net, **kwargs)
        # never longer than one epoch, so that short runs train at full rate
        self.warm_ = min(self.warmup_steps, getattr(net, "steps_per_epoch_", self.warmup_steps))
        self.cuts_made_, self.stop_ = plateau_state(
            self._losses(net), self.patience, self.cuts, self.threshold
        )

    def _losses(self, net) -> list[float]:
        rows = list(net.history)
        key = self.monitor if any(self.monitor in row for row in rows) else "train_loss"
        return [float(row[key]) for row in rows if key in row]

    def _factor(self, step: int) -> float:
        warmup = getattr(self, "warm_", self.warmup_steps)
        warm = min(1.0, (step + 1) / warmup) if warmup else 1.0
        return warm * self.factor**self.cuts_made_

    def on_epoch_end(self, net, **kwargs) -> None:
        super().on_epoch_end(net, **kwargs)
        self.cuts_made_, self.stop_ = plateau_state(
            self._losses(net), self.patience, self.cuts, self.threshold
        )
        net.history.record("lr_cuts", self.cuts_made_)
        net.history.record("stopped", self.stop_)

    def on_epoch_begin(self, net, **kwargs) -> None:
        # Stop here rather than at the end of the last epoch, so that every
        # end-of-epoch callback (checkpoint, printed row) has seen that epoch.
        if self.stop_:
            del net.history[-1]  # the row skorch has just opened for this epoch
            if net.verbose > 1:  # at verbose=1 the progress line says why it stopped
                print(
                    f"Stopping: no improvement of the monitored loss for {self.patience} "
                    f"epochs after {self.cuts} learning-rate cuts."
                )
            raise KeyboardInterrupt  # skorch's way to end fit early and cleanly


def plateau_state(
    losses: Sequence[float], patience: int, cuts: int, threshold: float
) -> tuple[int, bool]:
    """Learning-rate cuts made and whether to stop, after these epoch losses.

    Parameters
    ----------
    losses : sequence of float
        The monitored loss of every epoch so far.
    patience, cuts, threshold
        As in :class:`PlateauSchedule`.

    Returns
    -------
    cuts_made : int
    stop : bool

    Examples
    --------
    >>> plateau_state([3.0, 2.0, 2.0, 2.0], patience=2, cuts=1, threshold=0.0)
    (1, False)
    >>> plateau_state([3.0, 2.0, 2.0, 2.0, 2.0, 2.0], patience=2, cuts=1, threshold=0.0)
    (1, True)
    """
    best, wait, made = math.inf, 0, 0
    for loss in losses:
        if not math.isfinite(best) or loss < best - threshold * abs(best):
            best, wait = loss, 0
            continue
        wait += 1
        if wait >= patience:
            if made == cuts:
                return made, True
            made, wait = made + 1, 0
    return made, False


def _optimizers(net) -> list:
    return [getattr(net, name + "_") for name in net._optimizers]
