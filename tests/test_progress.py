"""What training prints: the progress bar's total, empty bars, colours only on a terminal."""

from __future__ import annotations

import io
import re

import pytest
import torch
from skorch.callbacks import Callback

import skdim._progress
from skdim import DIMPretrainer, SiteNetRegressor
from skdim._progress import use_colour
from skdim.datasets import load_structure_folder


class RecordTotals(Callback):
    """The progress bar's total and the batches the epoch really had."""

    def initialize(self):
        self.rows_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        bar = dict(net.callbacks_)["progress_bar"].pbar_
        self.rows_.append((bar.total, bar.n, len(net.history[-1]["batches"])))


@pytest.mark.parametrize("estimator", [SiteNetRegressor, DIMPretrainer])
def test_progress_bar_total_is_the_epochs_batches(estimator, small, capsys):
    structures, labels = small
    record = RecordTotals()
    model = estimator(
        max_epochs=3,
        batch_pairs=6000,
        validation_fraction=0.25,
        random_state=0,
        verbose=2,
        callbacks=[("totals", record)],
    )
    model.fit(structures, labels["e_form_per_atom"])
    rows = dict(model.callbacks_)["totals"].rows_
    assert len(rows) == 3 and all(total == n == batches for total, n, batches in rows), rows
    assert rows[0][0] > 2  # more than skorch's guess from its batch_size of 128
    err = capsys.readouterr().err
    assert f"/{rows[-1][0]} [" in err  # "k/N [elapsed<remaining ...]"
    assert not re.search(r"\d+it \[", err)  # skorch's bar counted on past a wrong total


def test_folder_parse_bar_has_the_right_total(data_home, capsys):
    load_structure_folder(data_home / "cod_cif10", progress=True)  # CIF files only
    err = capsys.readouterr().err
    assert "10/10" in err and "parse: 0structure" not in err and " 0/0 " not in err


def test_epoch_table_is_coloured_only_on_a_terminal(small, capsys, monkeypatch):
    structures, labels = small
    fit = {"max_epochs": 2, "batch_pairs": 8000, "random_state": 0, "verbose": 1}
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


def test_progress_output_does_not_change_the_model(small, capsys):
    structures, _ = small
    fit = {"max_epochs": 2, "batch_pairs": 6000, "random_state": 0}
    quiet = DIMPretrainer(verbose=0, **fit).fit(structures)
    shown = DIMPretrainer(verbose=2, **fit).fit(structures)  # bar and table
    for (name, a), (_, b) in zip(
        quiet.module_.state_dict().items(), shown.module_.state_dict().items()
    ):
        assert torch.equal(a, b), name
