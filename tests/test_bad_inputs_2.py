"""Hardening, second round: interrupted and concurrent runs, and inputs that misled.

Like tests/test_bad_inputs.py, each test asserts the error type and that its
message names the offending input (file, line, setting or parameter), or the
right result where there used to be a silent wrong one.
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pandas as pd
import pytest
from skorch.callbacks import Callback

from skdim import SiteNetRegressor
from skdim.cli import main

FAST = {"batch_pairs": 8000, "verbose": 0, "random_state": 0}


@pytest.fixture(scope="module")
def few(small):
    structures, labels = small
    return structures.iloc[:8], labels["e_form_per_atom"].iloc[:8]


@pytest.fixture(scope="module")
def few_csv(few, tmp_path_factory):
    """The same structures as a CSV file for the command line (cif, y)."""
    structures, labels = few
    path = tmp_path_factory.mktemp("csv") / "few.csv"
    frame = pd.DataFrame(
        {"id": structures.index, "cif": [s.to(fmt="cif") for s in structures], "y": labels}
    )
    frame.to_csv(path, index=False)
    return path


# ------------------------------------------------------------ interruption
class CtrlC(Callback):
    """Press Ctrl-C (a real SIGINT) during the given epoch (1-based)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_batch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_in_fit_raises_and_keeps_the_checkpoint(few, tmp_path):
    structures, labels = few
    checkpoint = tmp_path / "ckpt"
    model = SiteNetRegressor(
        max_epochs=3, checkpoint_dir=checkpoint, callbacks=[("ctrl_c", CtrlC(2))], **FAST
    )
    with pytest.raises(KeyboardInterrupt, match=rf"checkpoint_dir {checkpoint} keeps the 1 whole"):
        model.fit(structures, labels)
    assert len(json.loads((checkpoint / "history.json").read_text())) == 1
    # the same fit resumes (the lock is free again) and ends as an uninterrupted one
    resumed = SiteNetRegressor(max_epochs=3, checkpoint_dir=checkpoint, **FAST)
    resumed.fit(structures, labels)
    assert len(resumed.history) == 3
    straight = SiteNetRegressor(max_epochs=3, **FAST).fit(structures, labels)
    np.testing.assert_allclose(resumed.predict(structures), straight.predict(structures))


def test_ctrl_c_without_checkpoint_dir_still_raises(few):
    structures, labels = few
    model = SiteNetRegressor(max_epochs=2, callbacks=[("ctrl_c", CtrlC(1))], **FAST)
    with pytest.raises(KeyboardInterrupt, match=r"partly trained. Set checkpoint_dir"):
        model.fit(structures, labels)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_early_stopping_is_not_an_interrupt(few):
    """skorch's own KeyboardInterrupt (early stopping) still ends fit normally."""
    structures, labels = few
    model = SiteNetRegressor(
        max_epochs=30, lr=0.0, validation_fraction=0.25, early_stopping=1, **FAST
    )
    model.fit(structures, labels)
    assert len(model.history) < 30


def test_cli_ctrl_c_exits_130_without_saving(few_csv, tmp_path, capsys, monkeypatch):
    original = SiteNetRegressor.train_step

    def train_step(self, batch, **fit_params):
        step = original(self, batch, **fit_params)
        if len(self.history) == 2:
            signal.raise_signal(signal.SIGINT)
        return step

    monkeypatch.setattr(SiteNetRegressor, "train_step", train_step)
    out, checkpoint = tmp_path / "reg", tmp_path / "ckpt"
    command = ["fit", str(few_csv), "--target", "y", "--out", str(out), "--quiet"]
    command += ["--max-epochs", "3", "--batch-pairs", "8000", "--checkpoint-dir", str(checkpoint)]
    assert main(command) == 130
    error = capsys.readouterr().err
    assert f"interrupted: training was interrupted; checkpoint_dir {checkpoint}" in error
    assert not out.exists()
    monkeypatch.setattr(SiteNetRegressor, "train_step", original)
    assert main(command) == 0  # resumes
    assert "saved regressor" in capsys.readouterr().out
