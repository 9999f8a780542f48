"""Shipped pretrained encoders: registry, checksums, names accepted like paths."""

import doctest
import json

import numpy as np
import pytest
from conftest import FAST

import skdim.pretrained
from skdim import SiteNetRegressor, list_pretrained, load_pretrained
from skdim.matminer import DIMFeaturizer
from skdim.pretrained import pretrained_path, register_pretrained

CARD = {"n_structures": 40, "dataset": "mp100 (test)", "epochs": 2}


@pytest.fixture()
def registry(tmp_path, fitted_pretrainer, monkeypatch):
    """A registry in a temporary directory holding one tiny model, 'tiny'."""
    fitted_pretrainer.save(tmp_path / "saved")
    models = tmp_path / "models"
    register_pretrained(tmp_path / "saved", "tiny", CARD, models_dir=models)
    monkeypatch.setattr(skdim.pretrained, "MODELS_DIR", models)
    return models


def test_list_and_load(registry, small, fitted_pretrainer):
    structures, _ = small
    assert list_pretrained() == ["tiny"]
    model = load_pretrained("tiny")
    info = model.pretrained_info_
    assert info["name"] == "tiny" and info["n_structures"] == 40
    assert len(info["sha256"]) == 64
    np.testing.assert_allclose(
        model.transform(structures), fitted_pretrainer.transform(structures), rtol=1e-5
    )


def test_name_accepted_where_a_path_is(registry, small):
    structures, labels = small
    regressor = SiteNetRegressor(**FAST, pretrained="tiny").fit(
        structures, labels["e_form_per_atom"]
    )
    assert regressor.predict(structures).shape == (len(structures),)
    embeddings = (
        DIMFeaturizer("tiny")
        .fit(structures)
        .featurize_many(list(structures[:3]), ignore_errors=False)
    )
    assert np.asarray(embeddings).shape == (3, 128)


def test_unknown_name_lists_the_shipped_ones(registry):
    with pytest.raises(ValueError, match=r"no pretrained model named 'nope'.*tiny"):
        load_pretrained("nope")


def test_tampered_weights_are_refused(registry):
    weights = registry / "tiny" / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match its sha256"):
        load_pretrained("tiny")


def test_altered_card_is_refused(registry):
    card = registry / "tiny" / "card.json"
    card.write_text(json.dumps({**CARD, "n_structures": 10**6}))
    with pytest.raises(ValueError, match="card.json does not match"):
        pretrained_path("tiny")


def test_missing_file_is_named(registry):
    (registry / "tiny" / "weights.pt").unlink()
    with pytest.raises(FileNotFoundError, match="weights.pt is missing"):
        load_pretrained("tiny")


def _run_load_pretrained_example() -> doctest.TestResults:
    finder = doctest.DocTestFinder()
    [test] = finder.find(load_pretrained, "load_pretrained", globs={})
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    return runner.summarize(verbose=False)


def test_load_pretrained_example_runs_whether_or_not_a_model_ships(tmp_path, monkeypatch):
    monkeypatch.setattr(skdim.pretrained, "MODELS_DIR", tmp_path / "none")  # nothing ships
    assert list_pretrained() == []
    result = _run_load_pretrained_example()
    assert result.attempted >= 3 and result.failed == 0


def test_load_pretrained_example_runs_with_a_shipped_model(registry):
    assert list_pretrained() == ["tiny"]
    result = _run_load_pretrained_example()
    assert result.attempted >= 3 and result.failed == 0
