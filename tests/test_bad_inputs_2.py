"""Hardening, second round: interrupted and concurrent runs, and inputs that misled.

Like tests/test_bad_inputs.py, each test asserts the error type and that its
message names the offending input (file, line, setting or parameter), or the
right result where there used to be a silent wrong one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.frozen import FrozenEstimator
from skorch.callbacks import Callback

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.cli import main
from skdim.datasets import load_structure_folder
from skdim.featurize import available_properties, featurize
from skdim.store import featurize_to_store

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


# ------------------------------------------------------------- concurrency
def hold_lock(file):
    """Another process holding the lock ``file`` until a line arrives on its stdin."""
    code = (
        "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); "
        "lock.acquire(); print('held', flush=True); sys.stdin.readline(); lock.release()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_second_fit_into_a_checkpoint_dir_is_refused(few, tmp_path):
    structures, labels = few
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    other = hold_lock(checkpoint / "skdim.lock")  # a fit running in another process
    try:
        model = SiteNetRegressor(max_epochs=1, checkpoint_dir=checkpoint, **FAST)
        with pytest.raises(BlockingIOError, match=rf"checkpoint_dir {checkpoint} is in use"):
            model.fit(structures, labels)
        assert not (checkpoint / "history.json").exists()
    finally:
        other.communicate("\n")
    model.fit(structures, labels)  # free again
    assert (checkpoint / "history.json").exists()


def test_second_featurization_into_a_store_waits(few, tmp_path):
    structures, _ = few
    path = tmp_path / "store"
    path.mkdir()
    other = hold_lock(path / "store.lock")  # a featurization running in another process
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            store=featurize_to_store(list(structures), path, shard_size=4)
        )
    )
    try:
        thread.start()
        thread.join(timeout=2)
        assert thread.is_alive() and not list(path.glob("shard-*"))  # waiting
    finally:
        other.communicate("\n")
    thread.join()
    assert len(result["store"]) == len(structures)


# --------------------------------------------------- a store of other input
def test_complete_store_refuses_another_input(few, tmp_path):
    structures = list(few[0])
    path = tmp_path / "store"
    featurize_to_store(structures[:6], path, shard_size=4)
    assert len(featurize_to_store(structures[:6], path, shard_size=4)) == 6  # the same input
    another = f"{path} is a complete store of another input: "
    with pytest.raises(ValueError, match=rf"{another}.*shard-00001.npz .* inputs 4 to 5 given"):
        featurize_to_store(structures[:4] + structures[6:8], path, shard_size=4)
    with pytest.raises(ValueError, match=rf"{another}this input has 1 shards, not the 2"):
        featurize_to_store(structures[:4], path, shard_size=4)
    short = tmp_path / "short"
    featurize_to_store(structures[:4], short, shard_size=4)
    with pytest.raises(ValueError, match=r"short is a complete .* more than the 1 shards"):
        featurize_to_store(structures, short, shard_size=4)


def test_cli_featurize_refuses_another_input_into_a_complete_store(few, tmp_path, capsys):
    structures, _ = few
    first, second, store = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "st"
    pd.DataFrame({"cif": [s.to(fmt="cif") for s in structures.iloc[:3]]}).to_csv(first)
    pd.DataFrame({"cif": [s.to(fmt="cif") for s in structures.iloc[3:6]]}).to_csv(second)
    assert main(["featurize", str(first), "--out", str(store), "--quiet"]) == 0
    assert main(["featurize", str(second), "--out", str(store), "--quiet"]) == 2
    assert f"{store} is a complete store of another input" in capsys.readouterr().err


# ------------------------------------------- the fingerprint of a pretrained encoder
def test_checkpoint_from_another_pretrained_encoder_is_not_resumed(
    few, fitted_pretrainer, tmp_path
):
    structures, labels = few
    source = tmp_path / "dim"
    fitted_pretrainer.save(source)
    frozen = FrozenEstimator(DIMPretrainer.load(source))

    def resave():  # an encoder with equal parameters, other weights, to the same path
        DIMPretrainer(**fitted_pretrainer.get_params()).fit(structures).save(source)

    def retrain():  # the same FrozenEstimator (the same repr), other weights
        with torch.no_grad():
            for parameter in frozen.estimator.module_.encoder.parameters():
                parameter.add_(0.01)

    for name, pretrained, change in [("path", str(source), resave), ("frozen", frozen, retrain)]:
        checkpoint = tmp_path / name
        options = {"max_epochs": 1, "checkpoint_dir": checkpoint, **FAST}
        SiteNetRegressor(pretrained=pretrained, **options).fit(structures, labels)
        change()
        model = SiteNetRegressor(pretrained=pretrained, **options)
        with pytest.raises(
            ValueError, match=rf"checkpoint_dir {checkpoint} holds a run with other settings"
        ):
            model.fit(structures, labels)


# ------------------------------------------------------- structure files
def poscar_folder(data_home, tmp_path, counts):
    """A folder holding one JARVIS POSCAR (V Se2, 3 atoms) with its counts line replaced."""
    lines = (data_home / "jarvis_poscar50" / "POSCAR-JVASP-10.vasp").read_text().splitlines()
    assert lines[6] == "1 2"
    lines[6] = counts
    (tmp_path / "POSCAR-JVASP-10.vasp").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.parametrize(("counts", "total"), [("1 1", 2), ("3 4", 7)])
def test_poscar_counts_must_match_its_coordinates(data_home, tmp_path, counts, total):
    folder = poscar_folder(data_home, tmp_path, counts)
    message = (
        rf"could not parse structure 'POSCAR-JVASP-10.vasp': its counts line \(line 7: "
        rf"'{counts}'\) adds up to {total} atoms, but 3 coordinate lines follow"
    )
    with pytest.raises(ValueError, match=message):
        load_structure_folder(folder, id_prop=None)


def test_every_shipped_poscar_passes_the_count_check(data_home):
    structures, _ = load_structure_folder(data_home / "jarvis_poscar50")
    assert len(structures) == 50


def test_binary_cif_in_a_folder_is_named(data_home, tmp_path):
    shutil.copy(data_home / "cod_cif10" / "1000041.cif", tmp_path / "1000041.cif")
    (tmp_path / "scan.cif").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ValueError, match=r"scan.cif is not a text structure file"):
        load_structure_folder(tmp_path, id_prop=None)


# ---------------------------------------------- features of other settings
def test_predict_refuses_features_of_another_max_atoms(few, fitted_regressor):
    structures, _ = few
    assert fitted_regressor.featurization_["max_atoms"] == 50
    inputs = featurize(structures, max_atoms=30)  # smaller: the sizes cannot tell
    with pytest.raises(ValueError, match=r"X was featurized with max_atoms=30, but .*=50"):
        fitted_regressor.predict(inputs)
    assert fitted_regressor.predict(featurize(structures)).shape == (len(structures),)


def test_predict_refuses_features_of_another_site_property_of_the_same_width(
    few, fitted_regressor
):
    structures, _ = few
    properties = list(fitted_regressor.featurization_["site_properties"])
    properties[0] = next(p for p in available_properties() if p not in properties)
    inputs = featurize(structures, site_properties=properties)
    with pytest.raises(ValueError, match=rf"featurized with site_properties=\('{properties[0]}'"):
        fitted_regressor.predict(inputs)
    with pytest.raises(ValueError, match=r"featurized with site_properties="):
        SiteNetRegressor(max_epochs=1, **FAST).fit(inputs, few[1])


# ------------------------------------------------- weights and checkpoints
@pytest.fixture(scope="module")
def saved_regressor(fitted_regressor, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "reg"
    fitted_regressor.save(path)
    return path


def copy_of(saved, tmp_path):
    target = tmp_path / saved.name
    shutil.copytree(saved, target)
    return target


def test_nan_in_weights_is_refused_on_load(saved_regressor, tmp_path):
    path = copy_of(saved_regressor, tmp_path)
    state = torch.load(path / "weights.pt", weights_only=True)
    name = sorted(state)[3]
    state[name].view(-1)[0] = float("nan")
    torch.save(state, path / "weights.pt")
    with pytest.raises(ValueError, match=rf"weights.pt in {path} holds NaN .* in {name}"):
        SiteNetRegressor.load(path)


def test_pickled_function_in_weights_is_named_not_truncated(saved_regressor, tmp_path):
    path = copy_of(saved_regressor, tmp_path)
    torch.save({"encoder.x": os.system}, path / "weights.pt")
    with pytest.raises(
        ValueError, match=r"holds objects other than tensors.*GLOBAL posix.system"
    ) as info:
        SiteNetRegressor.load(path)
    assert "truncated" not in str(info.value) and "weights_only=False" not in str(info.value)


@pytest.fixture(scope="module")
def checkpoint(few, tmp_path_factory):
    """A checkpoint directory of one epoch (a fit of two epochs resumes from it)."""
    structures, labels = few
    path = tmp_path_factory.mktemp("ckpt") / "ckpt"
    SiteNetRegressor(max_epochs=1, checkpoint_dir=path, **FAST).fit(structures, labels)
    return path


@pytest.mark.parametrize("name", ["params.pt", "optimizer.pt"])
def test_hostile_checkpoint_file_is_named(few, checkpoint, tmp_path, name):
    structures, labels = few
    path = copy_of(checkpoint, tmp_path)
    torch.save({"state": os.system}, path / name)
    model = SiteNetRegressor(max_epochs=2, checkpoint_dir=path, **FAST)
    with pytest.raises(
        ValueError, match=rf"{path / name} holds objects other than tensors"
    ) as info:
        model.fit(structures, labels)
    assert "weights_only=False" not in str(info.value)
    (path / name).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=rf"{path / name} is truncated or not a torch file"):
        model.fit(structures, labels)


@pytest.mark.parametrize("text", ["{", "[]", '{"epoch": 1, "torch": "x", "sampler": null}'])
def test_bad_random_state_json_is_named(few, checkpoint, tmp_path, text):
    structures, labels = few
    path = copy_of(checkpoint, tmp_path)
    (path / "random_state.json").write_text(text)
    model = SiteNetRegressor(max_epochs=2, checkpoint_dir=path, **FAST)
    with pytest.raises(ValueError, match=rf"{path / 'random_state.json'} (is damaged|holds no)"):
        model.fit(structures, labels)


# ---------------------------------------------------------------- targets
@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.arange(8) + 1j, r"y holds complex numbers"),
        (np.array([0.5] * 7 + [1 + 2j], dtype=object), r"y holds complex numbers \(row 7\)"),
        (["0.1"] * 7 + ["metal"], r"y holds 'metal' at row 7, not a number"),
        (np.float64(1.0), r"y is a single value \(1.0\)"),
        (np.zeros((8, 0)), r"y has shape \(8, 0\)"),
        ([0.0] * 6 + [1e39, 0.0], r"beyond float32's range .* at rows \[6\]"),
    ],
)
def test_bad_targets_are_named(few, y, message):
    structures, _ = few
    with pytest.raises(ValueError, match=message):
        SiteNetRegressor(max_epochs=1, **FAST).fit(structures, y)


def test_sample_weight_is_refused(few):
    structures, labels = few
    with pytest.raises(TypeError, match=r"SiteNetRegressor.fit does not support sample_weight"):
        SiteNetRegressor(max_epochs=1, **FAST).fit(structures, labels, sample_weight=np.ones(8))


# ------------------------------------------------------------ saving, --out
def test_failed_save_leaves_no_empty_weights(fitted_regressor, tmp_path, monkeypatch):
    import skdim.persistence

    def full_disk(obj, file):
        Path(file).write_bytes(b"")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(skdim.persistence.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fitted_regressor.save(tmp_path / "reg")
    assert list((tmp_path / "reg").iterdir()) == []


def test_cli_checks_out_before_training(few_csv, tmp_path, capsys, monkeypatch):
    import skdim.cli

    def no_data(*args, **kwargs):
        raise AssertionError("data read before --out was checked")

    monkeypatch.setattr(skdim.cli, "load_data", no_data)
    blocker = tmp_path / "file"
    blocker.write_text("")
    for command in (["fit", str(few_csv), "--target", "y"], ["pretrain", str(few_csv)]):
        assert main([*command, "--out", str(blocker / "model"), "--quiet"]) == 2
        assert f"--out {blocker / 'model'} cannot be written" in capsys.readouterr().err
        assert main([*command, "--out", str(blocker), "--quiet"]) == 2
        assert f"--out {blocker} is a file" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_cli_max_steps_is_checked_before_reading_data(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["fit", str(tmp_path / "missing.csv"), "--out", "o", "--max-steps", value])
    assert info.value.code == 2
    assert f"--max-steps: {value!r} is not a positive integer" in capsys.readouterr().err
