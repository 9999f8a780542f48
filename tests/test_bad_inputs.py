"""Hostile or damaged files: model configs, weights and featurized stores.

Each test asserts the clear error (its type and the file or item it names)
or, for a config that names code to run, that nothing ran.
"""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
import torch

from skdim import DIMPretrainer, SiteNetRegressor
from skdim.store import FeaturizedStore, featurize_to_store


@pytest.fixture(scope="module")
def saved_pretrainer(fitted_pretrainer, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "dim"
    fitted_pretrainer.save(path)
    return path


@pytest.fixture(scope="module")
def saved_regressor(fitted_regressor, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "reg"
    fitted_regressor.save(path)
    return path


def edited_copy(saved, tmp_path, edit):
    """A copy of a saved model whose config.json went through ``edit(config)``."""
    target = tmp_path / saved.name
    shutil.copytree(saved, target)
    config = json.loads((target / "config.json").read_text())
    edit(config)
    (target / "config.json").write_text(json.dumps(config))
    return target


# ------------------------------------------------------------ config.json
def test_config_cannot_run_a_callback_class(saved_pretrainer, tmp_path):
    """The exploit: a skorch callback named by config.json would be built on load."""
    marker = tmp_path / "owned"

    def edit(config):
        config["params"]["callbacks__epoch_timer"] = {"__import__": "subprocess:Popen"}
        config["params"]["callbacks__epoch_timer__args"] = ["touch", str(marker)]

    path = edited_copy(saved_pretrainer, tmp_path, edit)
    with pytest.raises(
        ValueError, match=r"params.callbacks__epoch_timer refers to 'subprocess:Popen'"
    ):
        DIMPretrainer.load(path)
    assert not marker.exists()


def test_config_cannot_run_a_criterion(saved_regressor, tmp_path):
    marker = tmp_path / "owned"

    def edit(config):
        config["params"]["criterion"] = {"__import__": "subprocess:Popen"}
        config["params"]["criterion__args"] = ["touch", str(marker)]

    path = edited_copy(saved_regressor, tmp_path, edit)
    with pytest.raises(ValueError, match=r"config.json in .*reg: params.criterion refers to"):
        SiteNetRegressor.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("estimator", "skdim_not_a_module_xyz:Anything"),
        ("params.optimizer", {"__import__": "skdim_not_a_module_xyz:Optimizer"}),
        ("params.callbacks[0][1]", [["timer", {"__import__": "os:system"}]]),
        ("params.module__x", {"__import__": "os:system", "args": ["true"]}),
        ("fitted.featurization.max_atoms", {"__import__": "builtins:eval"}),
    ],
)
def test_nothing_is_imported_before_refusing(saved_pretrainer, tmp_path, key, value):
    """A module that does not exist gives the ValueError, not ModuleNotFoundError."""

    def edit(config):
        if key == "estimator":
            config["estimator"] = value
        elif key.startswith("fitted."):
            config["fitted"]["featurization"]["max_atoms"] = value
        else:
            config["params"][key.split(".")[1].split("[")[0]] = value

    path = edited_copy(saved_pretrainer, tmp_path, edit)
    with pytest.raises(ValueError, match=re.escape(f"{key} refers to")):
        DIMPretrainer.load(path)
    assert "skdim_not_a_module_xyz" not in sys.modules


def test_allowed_class_that_is_not_an_estimator_is_refused(saved_pretrainer, tmp_path):
    path = edited_copy(
        saved_pretrainer, tmp_path, lambda config: config.update(estimator="skdim.nn:SiteNet")
    )
    with pytest.raises(ValueError, match="estimator 'skdim.nn:SiteNet' is not a skdim estimator"):
        DIMPretrainer.load(path)


def test_unsafe_checkpoint_loading_is_refused(saved_pretrainer, tmp_path):
    path = edited_copy(
        saved_pretrainer,
        tmp_path,
        lambda config: config["params"].update(torch_load_kwargs={"weights_only": False}),
    )
    with pytest.raises(ValueError, match="torch_load_kwargs"):
        DIMPretrainer.load(path)


def test_public_names_of_allowed_classes_load(
    saved_pretrainer, small, fitted_pretrainer, tmp_path
):
    def edit(config):
        config["params"]["optimizer"] = {"__import__": "torch.optim:AdamW"}
        config["params"]["criterion"] = {"__import__": "skdim.nn:DIMLoss"}

    loaded = DIMPretrainer.load(edited_copy(saved_pretrainer, tmp_path, edit))
    assert loaded.optimizer is torch.optim.AdamW
    structures, _ = small
    np.testing.assert_array_equal(
        loaded.transform(structures[:3]), fitted_pretrainer.transform(structures[:3])
    )


class ScaledL1Loss(torch.nn.L1Loss):
    """A user's own criterion, allowed only through add_safe_classes."""


def test_own_classes_load_once_allowed(small, tmp_path, monkeypatch):
    import skdim.persistence

    monkeypatch.setattr(skdim.persistence, "_EXTRA_SAFE", [])
    structures, labels = small
    model = SiteNetRegressor(criterion=ScaledL1Loss, max_epochs=1, verbose=0, random_state=0)
    model.fit(structures[:8], labels["e_form_per_atom"][:8]).save(tmp_path / "own")
    with pytest.raises(ValueError, match="ScaledL1Loss.*not a class skdim loads"):
        SiteNetRegressor.load(tmp_path / "own")
    with pytest.raises(TypeError, match="classes or functions"):
        skdim.persistence.add_safe_classes(["test_bad_inputs:ScaledL1Loss"])
    skdim.persistence.add_safe_classes([ScaledL1Loss])
    assert SiteNetRegressor.load(tmp_path / "own").criterion is ScaledL1Loss


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"format_version": 1}'])
def test_damaged_config_names_the_file(saved_pretrainer, tmp_path, text):
    path = tmp_path / "dim"
    shutil.copytree(saved_pretrainer, path)
    (path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=r"config.json in .*dim is not"):
        DIMPretrainer.load(path)


# ------------------------------------------------------------- weights.pt
@pytest.mark.parametrize("damage", ["truncate", "random", "empty"])
def test_damaged_weights_name_the_file(saved_pretrainer, tmp_path, damage):
    path = tmp_path / "dim"
    shutil.copytree(saved_pretrainer, path)
    weights = path / "weights.pt"
    data = weights.read_bytes()
    rng = np.random.default_rng(0)
    damaged = {
        "truncate": data[: len(data) // 2],
        "random": rng.bytes(len(data)),
        "empty": b"",
    }[damage]
    weights.write_bytes(damaged)
    with pytest.raises(ValueError, match=r"weights.pt in .*dim is truncated or not a skdim"):
        DIMPretrainer.load(path)


def test_pickled_objects_in_weights_are_refused(saved_pretrainer, tmp_path):
    path = tmp_path / "dim"
    shutil.copytree(saved_pretrainer, path)
    marker = tmp_path / "owned"
    torch.save({"x": _Exploit(str(marker))}, path / "weights.pt")
    with pytest.raises(ValueError, match=r"weights.pt in .*dim holds objects other than tensors"):
        DIMPretrainer.load(path)
    assert not marker.exists()


class _Exploit:
    def __init__(self, file: str):
        self.file = file

    def __reduce__(self):
        return (open, (self.file, "w"))


# ---------------------------------------------------------------- the store
@pytest.fixture(scope="module")
def structures(small):
    return list(small[0][:12])


@pytest.fixture
def store_path(structures, tmp_path):
    featurize_to_store(structures, tmp_path / "store", shard_size=4)
    return tmp_path / "store"


def interrupted(structures, path, after):
    """Featurize ``structures`` into ``path``, stopping after ``after`` inputs."""

    def stream():
        for i, s in enumerate(structures):
            if i == after:
                raise RuntimeError("interrupted")
            yield s

    with pytest.raises(RuntimeError, match="interrupted"):
        featurize_to_store(stream(), path, shard_size=4)


def test_resuming_with_another_input_is_refused(structures, tmp_path):
    path = tmp_path / "store"
    interrupted(structures, path, after=6)  # shard 0 finished
    other = structures[::-1]
    with pytest.raises(ValueError, match=r"shard-00000.npz was featurized from another input"):
        featurize_to_store(other, path, shard_size=4)
    texts = [s.to(fmt="cif") for s in structures]
    with pytest.raises(ValueError, match=r"shard-00000.npz was featurized from another input"):
        featurize_to_store(texts, path, shard_size=4)
    assert len(featurize_to_store(structures, path, shard_size=4)) == len(structures)


def test_resuming_with_a_shorter_input_is_refused(structures, tmp_path):
    path = tmp_path / "store"
    interrupted(structures, path, after=10)  # shards 0 and 1 finished
    with pytest.raises(ValueError, match=r"shard-00001.npz was featurized by an earlier run"):
        featurize_to_store(structures[:4], path, shard_size=4)


def test_text_input_is_fingerprinted(structures, tmp_path):
    texts = [s.to(fmt="cif") for s in structures]
    path = tmp_path / "store"
    interrupted(texts, path, after=5)
    changed = [texts[0].replace("_cell_length_a", "_cell_length_a  ", 1), *texts[1:]]
    with pytest.raises(ValueError, match="shard-00000.npz was featurized from another input"):
        featurize_to_store(changed, path, shard_size=4)
    assert len(featurize_to_store(texts, path, shard_size=4)) == len(texts)


def test_manifest_lists_checksums(store_path, structures, tmp_path):
    manifest = json.loads((store_path / "store.json").read_text())
    assert manifest["format_version"] == 2 and len(manifest["shards"]) == 3
    assert set(manifest["shards"][0]) == {"npz_sha256", "bin_sha256", "input_sha256"}
    same = featurize_to_store(structures, tmp_path / "same", shard_size=4)
    other = featurize_to_store(structures[1:], tmp_path / "other", shard_size=4)
    assert same.content_sha256 == FeaturizedStore(store_path).content_sha256
    assert other.content_sha256 != same.content_sha256


def flip_bit(file, position):
    data = bytearray(file.read_bytes())
    data[position] ^= 1
    file.write_bytes(bytes(data))


def test_bit_flip_in_bin_is_caught_on_first_read(store_path):
    flip_bit(store_path / "shard-00001.bin", 100)
    store = FeaturizedStore(store_path)  # opening reads only the small index files
    store[0]  # shard 0 is intact
    with pytest.raises(ValueError, match=r"shard-00001.bin does not match its sha256"):
        store[5]
    with pytest.raises(ValueError, match=r"shard-00001.bin does not match its sha256"):
        FeaturizedStore(store_path, verify=True)


def test_zeroed_bin_is_caught(store_path):
    file = store_path / "shard-00002.bin"
    file.write_bytes(bytes(file.stat().st_size))
    with pytest.raises(ValueError, match=r"shard-00002.bin does not match its sha256"):
        FeaturizedStore(store_path).verify()


def test_truncated_bin_is_caught_when_opening(store_path):
    file = store_path / "shard-00000.bin"
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"shard-00000.bin has \d+ bytes, not the \d+"):
        FeaturizedStore(store_path)


@pytest.mark.parametrize("damage", ["flip", "zero", "truncate"])
def test_damaged_index_names_the_file(store_path, damage):
    file = store_path / "shard-00001.npz"
    if damage == "flip":
        flip_bit(file, file.stat().st_size // 2)
    elif damage == "zero":
        file.write_bytes(bytes(file.stat().st_size))
    else:
        file.write_bytes(file.read_bytes()[:50])
    with pytest.raises(ValueError, match=r"shard-00001.npz does not match its sha256"):
        FeaturizedStore(store_path)


def test_damaged_index_of_an_unfinished_store_names_the_file(structures, tmp_path):
    path = tmp_path / "store"
    interrupted(structures, path, after=6)
    (path / "shard-00000.npz").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match=r"shard-00000.npz is truncated or not a shard index"):
        featurize_to_store(structures, path, shard_size=4)


def test_missing_or_damaged_manifest_names_the_file(store_path):
    (store_path / "shard-00002.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"shard-00002.bin is missing"):
        FeaturizedStore(store_path)
    (store_path / "store.json").write_text('{"complete": tru')
    with pytest.raises(ValueError, match=r"store.json is damaged"):
        FeaturizedStore(store_path)


def test_checksum_is_checked_once_per_process(store_path, monkeypatch):
    import skdim.store

    calls = []
    original = skdim.store.file_sha256
    monkeypatch.setattr(
        skdim.store, "file_sha256", lambda file: calls.append(file.name) or original(file)
    )
    store = FeaturizedStore(store_path, max_open_files=1)
    for _ in range(3):
        for i in range(len(store)):
            store[i]
    assert sorted(calls) == ["shard-00000.bin", "shard-00001.bin", "shard-00002.bin"]


def test_store_without_checksums_still_opens_with_a_warning(store_path):
    manifest = json.loads((store_path / "store.json").read_text())
    manifest["format_version"] = 1
    del manifest["shards"]
    (store_path / "store.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="without checksums"):
        store = FeaturizedStore(store_path)
    assert len(store) == 12
