"""Hostile or damaged files and inputs that used to give a silent wrong answer.

Model configs, weights and featurized stores; estimator parameters, diverged
training, structures and targets. Each test asserts the clear error (its type
and the file, item or parameter it names), the right result or, for a config
that names code to run, that nothing ran.
"""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure
from sklearn.exceptions import NotFittedError

from skdim import DIMPretrainer, SiteNetClassifier, SiteNetRegressor
from skdim.featurize import featurize
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


# ------------------------------------------------- training and parameters
@pytest.fixture(scope="module")
def few(small):
    structures, labels = small
    return structures.iloc[:8], labels.iloc[:8]


def test_diverged_training_stops_with_the_step(few):
    structures, labels = few
    model = SiteNetRegressor(lr=1e6, max_epochs=5, batch_pairs=8000, verbose=0, random_state=0)
    with pytest.raises(
        FloatingPointError,
        match=r"training diverged: .* at epoch \d+, batch \d+; lower the learning rate",
    ):
        model.fit(structures, labels["e_form_per_atom"])


@pytest.mark.parametrize(
    ("estimator", "param", "value"),
    [
        (SiteNetRegressor, "gradient_clip", -1.0),
        (SiteNetRegressor, "max_epochs", 0),
        (SiteNetRegressor, "batch_pairs", 0),
        (SiteNetRegressor, "validation_fraction", 1.0),
        (SiteNetRegressor, "validation_fraction", 0.0),
        (SiteNetRegressor, "max_steps", 0),
        (SiteNetRegressor, "max_steps", "many"),
        (SiteNetRegressor, "lr_schedule", "plateau"),
        (SiteNetRegressor, "output", "relu"),
        (SiteNetClassifier, "batch_pairs", -5),
        (DIMPretrainer, "kl_weight", float("nan")),
        (DIMPretrainer, "local_weight", float("nan")),
        (DIMPretrainer, "embedding", "mean"),
        (DIMPretrainer, "plateau_patience", 0),
        (DIMPretrainer, "lr_schedule", "cosine"),
    ],
)
def test_parameters_are_checked_when_fit_starts(few, monkeypatch, estimator, param, value):
    import skdim._data_hooks

    def featurize(*args, **kwargs):
        raise AssertionError("featurized before the parameters were checked")

    monkeypatch.setattr(skdim._data_hooks, "featurize", featurize)
    # skorch's own parameters and **kwargs have no constraints and pass
    model = estimator(optimizer__weight_decay=0.0, iterator_train__num_workers=0)
    model.set_params(**{param: value})  # accepted here (scikit-learn's convention)
    structures, labels = few
    with pytest.raises(ValueError, match=rf"The '{param}' parameter of {estimator.__name__}"):
        model.fit(structures, labels["band_gap"] > 0)


# --------------------------------------------------------------- messages
def test_niggli_failure_names_the_item(nacl, monkeypatch):
    import skdim.featurize

    original = skdim.featurize.niggli_reduce
    odd = Structure(Lattice.cubic(3.7), ["Cu"], [[0, 0, 0]])

    def niggli_reduce(lattice, *args):
        if abs(abs(np.linalg.det(lattice)) - 3.7**3) < 1e-6:
            raise RuntimeError("Niggli reduction did not converge")
        return original(lattice, *args)

    monkeypatch.setattr(skdim.featurize, "niggli_reduce", niggli_reduce)
    series = pd.Series([nacl, odd], index=["mp-22862", "mp-odd"])
    with pytest.raises(RuntimeError, match=r"structures\[1\] \(id 'mp-odd'\): .*did not converge"):
        featurize(series)


def test_skipped_structure_is_named(few, fitted_pretrainer):
    structures, labels = few
    with pytest.warns(UserWarning, match="skipped 1 of 3"):
        inputs = featurize(
            [structures.iloc[0], "not a structure", structures.iloc[1]], on_error="skip"
        )
    message = r"X\[1\] is None \(a structure skipped by featurize\(on_error='skip'\)\): drop it"
    with pytest.raises(ValueError, match=message):
        SiteNetRegressor(max_epochs=1, verbose=0).fit(inputs, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=message):
        fitted_pretrainer.transform(inputs)


def test_cli_prints_user_errors_on_one_line(data_home, tmp_path, capsys, monkeypatch):
    import skdim.cli

    csv = str(data_home / "mp100.csv.gz")
    args = ["fit", csv, "--target", "gap", "--out", str(tmp_path / "r"), "--quiet"]
    assert skdim.cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("skdim fit: error: ") and err.count("\n") == 1
    assert "no target column 'gap'" in err
    assert skdim.cli.main([*args[:3], "band_gap", *args[4:], "--batch-pairs", "0"]) == 2
    assert "'batch_pairs' parameter" in capsys.readouterr().err

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(skdim.cli, "_fit", bug)
    with pytest.raises(ZeroDivisionError):  # real bugs keep their traceback
        skdim.cli.main(args)


def test_classifier_predict_before_fit_is_not_fitted_error(few):
    with pytest.raises(NotFittedError):
        SiteNetClassifier().predict(few[0])
    with pytest.raises(NotFittedError):
        SiteNetRegressor().predict(few[0])


# ------------------------------------------------------------ silent cases
def test_atoms_too_close_to_their_own_images_are_refused(nacl):
    tiny = Structure(Lattice.cubic(0.5), ["Na"], [[0, 0, 0]])
    flat = Structure(
        Lattice.orthorhombic(4, 4, 0.0011), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    for bad, distance in ((tiny, "0.5"), (flat, "0.0011")):
        with pytest.raises(
            ValueError, match=rf"structures\[1\]: periodic images of a site are {distance} A"
        ):
            featurize([nacl, bad])


def test_y_with_three_dimensions_is_refused(few):
    structures, _ = few
    with pytest.raises(ValueError, match=r"y has shape \(8, 2, 2\): it must be 1-D"):
        SiteNetRegressor(max_epochs=1, verbose=0).fit(structures, np.zeros((8, 2, 2)))


def test_target_series_is_aligned_on_the_index(few):
    structures, labels = few
    y = labels["e_form_per_atom"]
    fast = {"max_epochs": 1, "batch_pairs": 8000, "verbose": 0, "random_state": 0}
    aligned = SiteNetRegressor(**fast).fit(structures, y).predict(structures)
    shuffled = SiteNetRegressor(**fast).fit(structures, y.iloc[::-1]).predict(structures)
    np.testing.assert_array_equal(aligned, shuffled)
    with pytest.raises(ValueError, match="the index of y does not match the index of X"):
        SiteNetRegressor(**fast).fit(structures, y.reset_index(drop=True))


def test_non_negative_output_refuses_negative_targets(few):
    structures, labels = few
    y = labels["e_form_per_atom"]
    first = y.index[np.flatnonzero(y.to_numpy() < 0)[0]]
    for output in ("softplus", "trelu"):
        with pytest.raises(
            ValueError, match=rf"output='{output}' .* first at row '{first}'; use output="
        ):
            SiteNetRegressor(output=output, max_epochs=1, verbose=0).fit(structures, y)


def test_classifier_refuses_nan_and_continuous_labels(few):
    structures, labels = few
    with_nan = (labels["band_gap"] > 0).astype(object)
    with_nan.iloc[3] = np.nan
    with pytest.raises(ValueError, match=rf"1 missing .* at rows \['{with_nan.index[3]}'\]"):
        SiteNetClassifier(max_epochs=1, verbose=0).fit(structures, with_nan)
    with pytest.raises(ValueError, match=r"y is continuous \(\d+ distinct float values"):
        SiteNetClassifier(max_epochs=1, verbose=0).fit(structures, labels["e_form_per_atom"])


def test_inputs_featurized_with_a_larger_max_atoms_are_refused(few):
    structures, labels = few
    inputs = list(featurize(structures, max_atoms=100))  # a plain list: sizes tell
    first = next(i for i, x in enumerate(inputs) if x.n_images > 1 and x.n_neighbors > 50)
    with pytest.raises(
        ValueError, match=rf"featurized X\[{first}\] has a supercell .* other settings"
    ):
        SiteNetRegressor(max_epochs=1, verbose=0).fit(inputs, labels["e_form_per_atom"])


def test_crystal_over_the_pair_budget_warns_once(few):
    structures, labels = few
    inputs = featurize(structures)
    pairs = [x.n_sites * x.n_neighbors for x in inputs]
    largest = int(np.argmax(pairs))
    budget = sorted(set(pairs))[-2]  # the largest crystals exceed it
    n_over = sum(p > budget for p in pairs)
    model = SiteNetRegressor(max_epochs=1, batch_pairs=budget, verbose=0, random_state=0)
    with pytest.warns(UserWarning, match=r"exceed batch_pairs") as record:
        model.fit(inputs, labels["e_form_per_atom"])
    messages = [str(w.message) for w in record if "batch_pairs" in str(w.message)]
    assert len(messages) == 1
    assert f"X[{largest}] with {pairs[largest]} pairs" in messages[0]
    assert messages[0].startswith(f"{n_over} structure(s) exceed batch_pairs={budget}")


def test_small_inputs_are_featurized_without_workers(mp100, monkeypatch):
    import skdim._parallel

    started = []
    original = skdim._parallel.Parallel

    def parallel(n_jobs=None, **kwargs):
        started.append(n_jobs)
        return original(n_jobs=n_jobs, **kwargs)

    monkeypatch.setattr(skdim._parallel, "Parallel", parallel)
    structures = mp100[0]
    serial = featurize(structures[:30])
    assert [x.n_neighbors for x in featurize(structures[:30], n_jobs=2)] == [
        x.n_neighbors for x in serial
    ]
    assert started == [1, 1]
    assert skdim._parallel.n_workers(2, 100) == 1
    assert skdim._parallel.n_workers(2, 1000) == 2
    assert skdim._parallel.n_workers(4, 1000) == 2


def test_partial_occupancy_is_a_vacancy_not_a_full_site():
    """Item 6: {"Na": 0.3} is 30 % sodium and 70 % vacancy, not a full Na site."""
    from pymatgen.core import Lattice, Structure

    from skdim.featurize import featurize_structure

    lattice = Lattice.cubic(4.0)
    full = Structure(lattice, [{"Na": 1.0}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    partial = Structure(lattice, [{"Na": 0.3}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    mixed = Structure(lattice, [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    x_full, x_partial = featurize_structure(full), featurize_structure(partial)
    np.testing.assert_allclose(
        x_partial.site_features[0], 0.3 * x_full.site_features[0], rtol=1e-6
    )
    np.testing.assert_array_equal(x_partial.site_features[1], x_full.site_features[1])
    assert x_partial.atomic_numbers.tolist() == x_full.atomic_numbers.tolist()
    # a fully occupied disordered site is still the occupancy-weighted mean
    x_mixed = featurize_structure(mixed)
    k = Structure(lattice, [{"K": 1.0}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    expected = 0.5 * x_full.site_features[0] + 0.5 * featurize_structure(k).site_features[0]
    np.testing.assert_allclose(x_mixed.site_features[0], expected, rtol=1e-6)
