"""Progress counts of parsing and featurizing: a bar on a terminal, whole lines elsewhere.

:func:`counter` gives a tqdm bar where one can be drawn (a terminal, a
notebook) and a :class:`PlainCounter` otherwise: written to a file or a
pipe, progress is whole lines, without carriage returns, block characters
or colours. While a bar is drawn on a terminal, a warning is written above
it, on its own line, not inside it.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["PlainCounter", "counter", "format_duration", "interactive"]


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def interactive(stream: Any = None) -> bool:
    """Whether a progress bar may be drawn: a terminal, or a notebook's tqdm widget.

    Parameters
    ----------
    stream : file-like or None, default=None
        The stream the bar would be drawn on; None is the current ``sys.stderr``.

    Returns
    -------
    bool
        False for files, pipes and captured output: they get whole lines.

    Examples
    --------
    >>> import io
    >>> interactive(io.StringIO())
    False
    """
    from tqdm.autonotebook import tqdm as chosen  # tqdm's notebook bar in a notebook
    from tqdm.std import tqdm as text

    return _isatty(sys.stderr if stream is None else stream) or chosen is not text


def format_duration(seconds: float) -> str:
    """``M:SS`` or ``H:MM:SS``.

    Parameters
    ----------
    seconds : float

    Returns
    -------
    str

    Examples
    --------
    >>> format_duration(7.4), format_duration(75), format_duration(3725)
    ('0:07', '1:15', '1:02:05')
    """
    minutes, secs = divmod(int(round(max(0.0, seconds))), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class PlainCounter:
    """A count of work done, written as whole lines (for files, pipes and captured output).

    A line when another tenth is done and at least ``every`` seconds have
    passed since the last one (without a total: every ``6 * every`` seconds),
    and one when it closes; a fast job thus writes one line.

    Parameters
    ----------
    total : int or None
        The count when done, if known.
    desc : str
        What is counted, e.g. "featurize".
    unit : str
        The unit, singular ("structure").
    stream : file-like or None, default=None
        Where to write; None is the current ``sys.stderr``.
    every : float, default=5.0
        Fewest seconds between two lines.
    clock : callable, default=time.perf_counter
        Seconds, for the elapsed time.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with PlainCounter(3, "parse", "structure", stream=out, clock=lambda: 0.0) as bar:
    ...     bar.update(3)
    >>> print(out.getvalue(), end="")
    parse: 3/3 structures in 0:00
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        stream: Any = None,
        every: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.desc, self.unit = total, desc, unit
        self.stream, self.every, self.clock = stream, every, clock
        self.n = 0
        self.start_ = self.last_ = clock()
        self.tenth_ = 0
        self.closed_ = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; write a line if another tenth is done and it is time.

        Parameters
        ----------
        n : int, default=1
        """
        self.n += n
        now = self.clock()
        if self.total:
            tenth = min(10, 10 * self.n // self.total)
            if tenth > self.tenth_ and self.n < self.total and now - self.last_ >= self.every:
                self.tenth_, self.last_ = tenth, now
                left = (now - self.start_) / self.n * (self.total - self.n)
                self._write(
                    f"{self._count()}, {self._elapsed(now)} elapsed, {format_duration(left)} left"
                )
        elif now - self.last_ >= 6 * self.every:
            self.last_ = now
            self._write(f"{self._count()}, {self._elapsed(now)} elapsed")

    def close(self) -> None:
        """Write the closing line (once)."""
        if not self.closed_:
            self.closed_ = True
            self._write(f"{self._count()} in {self._elapsed(self.clock())}")

    def _count(self) -> str:
        total = f"/{self.total:,}" if self.total else ""
        return f"{self.desc}: {self.n:,}{total} {self.unit}{'' if self.n == 1 else 's'}"

    def _elapsed(self, now: float) -> str:
        return format_duration(now - self.start_)

    def _write(self, text: str) -> None:
        print(text, file=sys.stderr if self.stream is None else self.stream, flush=True)

    def __enter__(self) -> PlainCounter:
        return self

    def __exit__(self, kind, *args) -> None:
        if kind is None:
            self.close()


class _TerminalBar:
    """A tqdm bar that has warnings written above it while it is drawn."""

    def __init__(self, bar: Any):
        self.bar = bar
        self.saved_ = _warnings_above(bar)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self) -> None:
        self.bar.close()
        _restore_warnings(self.saved_)
        self.saved_ = None

    def __enter__(self) -> _TerminalBar:
        return self

    def __exit__(self, *args) -> None:
        self.close()


def _warnings_above(bar: Any) -> Any:
    """Show warnings through ``bar.write`` (they end the bar's line); returns what to restore.

    Nothing is changed where warnings are being recorded (``catch_warnings(record=True)``,
    pytest): replacing ``showwarning`` there would print instead of record.
    """
    impl = getattr(warnings, "_showwarnmsg_impl", None)
    if getattr(impl, "__name__", None) != "_showwarnmsg_impl":
        return None
    saved = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        text = warnings.formatwarning(message, category, filename, lineno, line)
        bar.write(text.rstrip("\n"), file=getattr(bar, "fp", None) or sys.stderr)

    warnings.showwarning = show
    return saved


def _restore_warnings(saved: Any) -> None:
    if saved is not None:
        warnings.showwarning = saved


def counter(
    total: int | None, desc: str, unit: str, enabled: bool = True, stream: Any = None
) -> Any:
    """A progress count: a tqdm bar where one can be drawn, else a :class:`PlainCounter`.

    Parameters
    ----------
    total : int or None
        The count when done, if known.
    desc : str
        What is counted.
    unit : str
        The unit, singular.
    enabled : bool, default=True
        False gives a counter that shows nothing.
    stream : file-like or None, default=None
        Where to show it; None is the current ``sys.stderr``.

    Returns
    -------
    object
        With ``update(n)``, ``close()``, and usable in a ``with`` statement.
    """
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if interactive(stream):
        return _TerminalBar(tqdm(total=total, desc=desc, unit=unit, file=stream))
    return PlainCounter(total, desc, unit, stream=stream)
