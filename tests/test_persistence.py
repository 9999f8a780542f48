import json
import pickle

import joblib
import numpy as np
import pytest
import torch

from skdim import DIMPretrainer, SiteNetRegressor
from skdim._supervised import PretrainedSource
from skdim.persistence import FORMAT_VERSION


def test_pickle_and_joblib_round_trip(small, fitted_pretrainer, fitted_regressor, tmp_path):
    structures, _ = small
    copy = pickle.loads(pickle.dumps(fitted_pretrainer))
    np.testing.assert_array_equal(
        copy.transform(structures), fitted_pretrainer.transform(structures)
    )
    joblib.dump(fitted_regressor, tmp_path / "reg.joblib")
    loaded = joblib.load(tmp_path / "reg.joblib")
    np.testing.assert_array_equal(loaded.predict(structures), fitted_regressor.predict(structures))


def test_save_load(small, fitted_pretrainer, fitted_regressor, tmp_path):
    structures, _ = small
    fitted_pretrainer.save(tmp_path / "dim")
    config = json.loads((tmp_path / "dim" / "config.json").read_text())
    assert config["format_version"] == FORMAT_VERSION and "skdim_version" in config
    state = torch.load(tmp_path / "dim" / "weights.pt", weights_only=True)
    assert any(k.startswith("encoder.") for k in state)
    loaded = DIMPretrainer.load(tmp_path / "dim")
    np.testing.assert_array_equal(
        loaded.transform(structures), fitted_pretrainer.transform(structures)
    )
    fitted_regressor.save(tmp_path / "reg")
    reloaded = SiteNetRegressor.load(tmp_path / "reg")
    np.testing.assert_array_equal(
        reloaded.predict(structures), fitted_regressor.predict(structures)
    )
    with pytest.raises(TypeError, match="not a DIMPretrainer"):
        DIMPretrainer.load(tmp_path / "reg")


def test_gpu_model_loads_on_cpu(small, fitted_pretrainer, tmp_path, monkeypatch):
    structures, _ = small
    fitted_pretrainer.save(tmp_path / "dim")
    config_file = tmp_path / "dim" / "config.json"
    config = json.loads(config_file.read_text())
    config["params"]["device"] = "cuda"  # as written on a GPU machine
    config_file.write_text(json.dumps(config))
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "load", spy)
    with pytest.warns(UserWarning, match="no GPU"):
        loaded = DIMPretrainer.load(tmp_path / "dim")
    assert loaded.device == "cpu"
    assert calls[-1] == {"map_location": "cpu", "weights_only": True}
    np.testing.assert_array_equal(
        loaded.transform(structures), fitted_pretrainer.transform(structures)
    )


def test_incompatible_format_is_refused(fitted_pretrainer, tmp_path):
    fitted_pretrainer.save(tmp_path / "dim")
    config_file = tmp_path / "dim" / "config.json"
    config = json.loads(config_file.read_text())
    config["format_version"] = FORMAT_VERSION + 1
    config["skdim_version"] = "9.0"
    config_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="saved by skdim 9.0 in model format"):
        DIMPretrainer.load(tmp_path / "dim")


def test_a_missing_folder_is_reported_as_missing(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match="does not exist") as error:
        DIMPretrainer.load(missing)
    assert str(missing) in str(error.value) and "not a saved" not in str(error.value)
    (tmp_path / "empty").mkdir()  # a folder that exists but holds no model
    with pytest.raises(FileNotFoundError, match="is not a saved skdim model"):
        SiteNetRegressor.load(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):  # pretrained=path
        PretrainedSource(str(missing))


def test_weights_load_strictly(fitted_pretrainer, tmp_path):
    fitted_pretrainer.save(tmp_path / "dim")
    state = torch.load(tmp_path / "dim" / "weights.pt", weights_only=True)
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / "dim" / "weights.pt")
    with pytest.raises(ValueError, match="do not fit"):
        DIMPretrainer.load(tmp_path / "dim")
