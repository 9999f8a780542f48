"""What training prints: the per-epoch progress bar and the epoch table.

skorch's ProgressBar guesses an epoch's length from ``batch_size``; skdim's
batches are cut by a budget of pairs, so :class:`EpochProgressBar` asks the
estimator's batch sampler how many batches the coming epoch has. skorch's
PrintLog colours the best values with ANSI codes; :class:`EpochTable`
colours them only when standard output is a terminal, so that a log written
to a file stays plain text.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from skorch.callbacks import PrintLog, ProgressBar
from skorch.utils import Ansi

__all__ = ["EpochProgressBar", "EpochTable", "use_colour"]


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
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class EpochProgressBar(ProgressBar):
    """skorch's per-epoch progress bar, with the epoch's true number of batches.

    The total is the number of pair-budget batches the coming training pass
    draws (plus the validation batches), known before the epoch starts.
    """

    def _get_batches_per_epoch_phase(self, net, dataset, training: bool) -> int:
        if dataset is None:
            return 0
        batches = len(net._batch_sampler(dataset, training))
        # data-parallel training splits every pass between the processes
        processes = getattr(getattr(net, "accelerator", None), "num_processes", 1) or 1
        return -(-batches // processes)


class EpochTable(PrintLog):
    """skorch's epoch table, coloured only on a terminal (see :func:`use_colour`)."""

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
