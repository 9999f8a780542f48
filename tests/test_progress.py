"""What training prints: progress lines, the bar's total, colours only on a terminal."""

from __future__ import annotations

import io
import re
import warnings

import pytest
import torch
from skorch.callbacks import Callback

import skdim._counter
import skdim._progress
from skdim import DIMPretrainer, SiteNetRegressor
from skdim._counter import PlainCounter, counter, format_duration
from skdim._progress import TrainingProgress, seconds_left, use_colour
from skdim.datasets import load_structure_folder

BLOCKS = re.compile("[\u2580-\u259f]")  # tqdm's bar characters
STEP = re.compile(r"^step (\d[\d,]*)/(\d[\d,]*)")


def _steps(line: str) -> tuple[int, int]:
    done, total = STEP.match(line).groups()
    return int(done.replace(",", "")), int(total.replace(",", ""))


class RecordTotals(Callback):
    """The progress bar's total and the batches the epoch really had."""

    def initialize(self):
        self.rows_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        bar = dict(net.callbacks_)["progress_bar"].pbar_
        self.rows_.append((bar.total, bar.n, len(net.history[-1]["batches"])))


@pytest.mark.parametrize("estimator", [SiteNetRegressor, DIMPretrainer])
def test_progress_bar_total_is_the_epochs_batches(estimator, small, capsys, monkeypatch):
    monkeypatch.setattr(skdim._progress, "interactive", lambda stream=None: True)  # a terminal
    structures, labels = small
    record = RecordTotals()
    model = estimator(
        max_epochs=3,
        batch_pairs=6000,
        validation_fraction=0.25,
        random_state=0,
        verbose=3,
        callbacks=[("totals", record)],
    )
    model.fit(structures, labels["e_form_per_atom"])
    rows = dict(model.callbacks_)["totals"].rows_
    assert len(rows) == 3 and all(total == n == batches for total, n, batches in rows), rows
    assert rows[0][0] > 2  # more than skorch's guess from its batch_size of 128
    err = capsys.readouterr().err
    assert f"/{rows[-1][0]} [" in err  # "k/N [elapsed<remaining ...]"
    assert not re.search(r"\d+it \[", err)  # skorch's bar counted on past a wrong total


def test_no_bar_off_a_terminal(small, capsys):
    structures, labels = small
    fit = {"max_epochs": 2, "batch_pairs": 6000, "random_state": 0, "verbose": 3}
    SiteNetRegressor(**fit).fit(structures, labels["e_form_per_atom"])
    captured = capsys.readouterr()
    assert "\r" not in captured.err + captured.out and not BLOCKS.search(captured.err)
    assert "train_loss" in captured.out  # the table (verbose >= 2) is there


def test_folder_parse_bar_has_the_right_total(data_home, capsys):
    load_structure_folder(data_home / "cod_cif10", progress=True)  # CIF files only
    err = capsys.readouterr().err
    assert "10/10" in err and "parse: 0structure" not in err and " 0/0 " not in err
    assert "\r" not in err  # captured, not a terminal: a whole line


def test_epoch_table_is_coloured_only_on_a_terminal(small, capsys, monkeypatch):
    structures, labels = small
    fit = {"max_epochs": 2, "batch_pairs": 8000, "random_state": 0, "verbose": 2}
    SiteNetRegressor(**fit).fit(structures, labels["e_form_per_atom"])
    plain = capsys.readouterr().out
    assert "train_loss" in plain and "\x1b[" not in plain  # captured: not a terminal
    monkeypatch.setattr(skdim._progress, "use_colour", lambda stream=None: True)
    SiteNetRegressor(**fit).fit(structures, labels["e_form_per_atom"])
    assert "\x1b[" in capsys.readouterr().out


def test_use_colour(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(Terminal()) and not use_colour(io.StringIO()) and not use_colour(object())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(Terminal())


@pytest.mark.parametrize("verbose", [1, 3])
def test_progress_output_does_not_change_the_model(small, capsys, monkeypatch, verbose):
    monkeypatch.setattr(skdim._progress, "interactive", lambda stream=None: True)
    structures, _ = small
    fit = {"max_epochs": 2, "batch_pairs": 6000, "random_state": 0}
    quiet = DIMPretrainer(verbose=0, **fit).fit(structures)
    shown = DIMPretrainer(verbose=verbose, **fit).fit(structures)  # lines (and bar, table)
    for (name, a), (_, b) in zip(
        quiet.module_.state_dict().items(), shown.module_.state_dict().items()
    ):
        assert torch.equal(a, b), name


def test_default_output_is_a_line_every_tenth(small, capsys):
    """Many epochs, the default verbose: a header, at most ten step lines, nothing else."""
    structures, labels = small
    model = SiteNetRegressor(
        max_epochs=40, batch_pairs=20000, validation_fraction=0.25, random_state=0
    ).fit(structures, labels["e_form_per_atom"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "\r" not in text and "\x1b" not in text and not BLOCKS.search(text)
    lines = captured.out.splitlines()
    header, steps = lines[0], lines[1:]
    total = int(model.history[-1, "step"])
    assert header.startswith(f"SiteNetRegressor: {total} optimizer steps (40 epochs)")
    assert 5 <= len(steps) <= 10 < len(model.history), lines  # not a line per epoch
    assert all(STEP.match(line) and " elapsed, " in line for line in steps), lines
    assert all(_steps(line)[1] == total for line in steps)
    assert all(" left" in line and "valid_loss" in line for line in steps[:-1])
    assert steps[-1].startswith(f"step {total}/{total}  epoch 40/40")
    assert steps[-1].endswith("done")
    assert re.fullmatch(r"featurize: 40/40 structures in 0:\d\d\n", captured.err)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowFirstBatches(Callback):
    """Advance a fake clock: 40 s for the first training batch, 20 s for the first validation
    batch (compiling), then 1 s per training batch and 0.1 s per validation batch."""

    def __init__(self, clock):
        self.clock = clock

    def initialize(self):
        self.seen_ = set()
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        first = training not in self.seen_
        self.seen_.add(training)
        self.clock.now += (40.0 if first else 1.0) if training else (20.0 if first else 0.1)


def test_time_left_leaves_out_the_warm_up(small):
    structures, labels = small
    clock, lines = Clock(), []
    SiteNetRegressor(
        max_epochs=10,
        batch_pairs=8000,
        validation_fraction=0.25,
        random_state=0,
        verbose=0,
        callbacks=[
            ("progress", TrainingProgress(sink=lines.append, clock=clock)),
            ("slow", SlowFirstBatches(clock)),
        ],
    ).fit(structures, labels["e_form_per_atom"])
    first = lines[1]
    done, total = _steps(first)
    minutes, seconds = re.search(r"(\d+):(\d\d) left", first).groups()
    left = 60 * int(minutes) + int(seconds)
    steps_left = total - done
    assert steps_left <= left <= 1.3 * steps_left, first  # 1 s a step, plus validation
    naive = re.search(r"(\d+):(\d\d) elapsed", first).groups()
    naive = (60 * int(naive[0]) + int(naive[1])) / done * steps_left
    assert naive > 3 * left  # what counting the warm-up would have said


def test_seconds_left():
    # 100 steps; the first took 40 s (compiling), the next 9 one second each
    assert seconds_left(elapsed=49.0, warm_up=40.0, steps_timed=9, steps_left=90) == 90.0
    assert seconds_left(elapsed=40.0, warm_up=40.0, steps_timed=0, steps_left=99) is None
    assert seconds_left(elapsed=50.0, warm_up=40.0, steps_timed=10, steps_left=0) == 0.0
    assert format_duration(59.6) == "1:00" and format_duration(3600) == "1:00:00"


def test_first_line_before_a_rate_says_so(small):
    """A run of few steps has a line at the first step: no rate yet, no guess."""
    structures, labels = small
    clock, lines = Clock(), []
    SiteNetRegressor(
        max_epochs=2,
        batch_pairs=8000,
        random_state=0,
        verbose=0,
        callbacks=[
            ("progress", TrainingProgress(sink=lines.append, clock=clock)),
            ("slow", SlowFirstBatches(clock)),
        ],
    ).fit(structures, labels["e_form_per_atom"])
    assert _steps(lines[1])[0] == 1 and lines[1].endswith("estimating time left"), lines


class StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt  # skorch's way to end a fit early


def test_a_run_that_may_stop_early_says_so(small, capsys):
    structures, labels = small
    SiteNetRegressor(
        max_epochs=30,
        batch_pairs=20000,
        validation_fraction=0.25,
        early_stopping=100,  # never triggers, but could
        random_state=0,
        callbacks=[("stop", StopAt(7))],
    ).fit(structures, labels["e_form_per_atom"])
    lines = capsys.readouterr().out.splitlines()
    assert "at most" in lines[0] and "early stopping can stop it earlier" in lines[0]
    assert all("at most" in line for line in lines[1:-1]), lines
    done, total = _steps(lines[-1])
    assert done < total and "stopped early: interrupted" in lines[-1], lines


def test_a_plateau_stop_is_said(small, capsys):
    """lr=0: the validation loss never improves, so the plateau schedule stops at epoch 4."""
    structures, _ = small
    fit = {"max_epochs": 10, "plateau_patience": 1, "batch_pairs": 20000, "random_state": 0}
    model = DIMPretrainer(lr=0.0, **fit).fit(structures)
    lines = capsys.readouterr().out.splitlines()
    assert len(model.history) == 4 and "the plateau schedule can stop it earlier" in lines[0]
    steps = int(model.history[-1, "step"])
    assert lines[-1] == (
        f"step {steps}/{5 * steps // 2}: stopped early: "
        "the validation loss stopped improving (plateau schedule)"
    )
    assert "Stopping:" not in "".join(lines)  # said once, by the progress line


def test_plain_counter_writes_few_whole_lines():
    clock, out = Clock(), io.StringIO()
    bar = PlainCounter(100, "featurize", "structure", stream=out, clock=clock)
    for _ in range(100):  # 100 structures in 50 s: a line each 10 s at most
        clock.now += 0.5
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert 4 <= len(lines) <= 11 and "\r" not in out.getvalue(), lines
    assert lines[0].startswith("featurize: ") and lines[0].endswith(" left")
    assert lines[-1] == "featurize: 100/100 structures in 0:50"
    fast = io.StringIO()
    with PlainCounter(3, "parse", "structure", stream=fast, clock=Clock()) as bar:
        bar.update(3)
    assert fast.getvalue() == "parse: 3/3 structures in 0:00\n"  # a fast job: one line


def test_warnings_are_written_above_a_terminal_bar(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def _showwarnmsg_impl(msg):  # warnings not being recorded (outside pytest)
        raise AssertionError("the bar's hook should have shown it")

    monkeypatch.setattr(warnings, "_showwarnmsg_impl", _showwarnmsg_impl)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    terminal = Terminal()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with counter(10, "parse", "structure", stream=terminal) as bar:
            bar.update(4)
            warnings.warn("a bad CIF", UserWarning, stacklevel=1)
            bar.update(6)
    pieces = re.split(r"[\r\n]", terminal.getvalue())  # the bar redraws after a \r
    line = next(piece for piece in pieces if "a bad CIF" in piece)
    assert line.endswith("UserWarning: a bad CIF") and "test_progress.py" in line, line
    assert not BLOCKS.search(line) and "parse" not in line  # on a line of its own
    assert not isinstance(counter(1, "x", "y", stream=io.StringIO()), skdim._counter._TerminalBar)
