"""SiteNetRegressor(n_estimators=k): a deep ensemble trained in one fit, with error bars."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skdim import SiteNetRegressor
from skdim.cli import main
from skdim.nn import SiteNet, SiteNetEnsemble
from skdim.persistence import load_state_dict


@pytest.fixture(scope="module")
def data(small):
    structures, labels = small
    return structures, labels["e_form_per_atom"]


@pytest.fixture(scope="module")
def ensemble(data):
    structures, y = data
    return SiteNetRegressor(**FAST, n_estimators=3).fit(structures, y)


def test_predict_mean_and_std(data, ensemble):
    structures, _ = data
    members = ensemble.predict_members(structures)
    assert isinstance(ensemble.module_, SiteNetEnsemble) and members.shape == (40, 3, 1)
    mean, std = ensemble.predict(structures, return_std=True)
    assert mean.shape == std.shape == (40,)
    np.testing.assert_allclose(mean, members[:, :, 0].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(std, members[:, :, 0].std(axis=1, ddof=1), rtol=1e-6)
    assert (std > 0).all()
    np.testing.assert_array_equal(ensemble.predict(structures), mean)
    np.testing.assert_array_equal(ensemble.predict_proba(structures)[:, 0], mean)
    assert np.isfinite(ensemble.history[:, "train_loss"]).all()


def test_first_member_is_the_single_network(data, ensemble, fitted_regressor):
    """Member 1 starts from the single network's weights, sees its batches and is clipped alone."""
    structures, _ = data
    single = fitted_regressor  # SiteNetRegressor(**FAST): n_estimators=1
    assert type(single.module_) is SiteNet
    assert not any(key.startswith("members.") for key in single.module_.state_dict())
    np.testing.assert_array_equal(
        ensemble.predict_members(structures)[:, 0, 0], single.predict(structures)
    )
    assert type(dict(ensemble.callbacks_)["gradient_clip"]).__name__ == "MemberGradientClipping"


def test_multi_target_std(data):
    structures, _ = data
    y = np.random.default_rng(0).normal(size=(len(structures), 2))
    model = SiteNetRegressor(**{**FAST, "max_epochs": 1}, n_estimators=2).fit(structures, y)
    mean, std = model.predict(structures, return_std=True)
    assert mean.shape == std.shape == (len(structures), 2) and (std > 0).all()


def test_return_std_needs_an_ensemble(data, fitted_regressor):
    structures, _ = data
    with pytest.raises(ValueError, match="n_estimators"):
        fitted_regressor.predict(structures, return_std=True)


@pytest.mark.parametrize("value", [0, -1, 2.5, "3"])
def test_n_estimators_is_validated(data, value):
    structures, y = data
    with pytest.raises(InvalidParameterError, match="n_estimators"):
        SiteNetRegressor(**FAST, n_estimators=value).fit(structures, y)


def test_loss_sums_members_in_training_and_averages_otherwise(ensemble):
    y_pred = torch.tensor([[[1.0], [2.0], [4.0]], [[0.0], [0.0], [0.0]]])  # (B=2, K=3, 1)
    y_true = torch.zeros(2)
    scale = ensemble.module_.members[0].target_scale
    shift = ensemble.module_.members[0].target_shift
    per_member = [
        float(torch.abs((y_pred[:, k] - shift) / scale - (0 - shift) / scale).mean())
        for k in range(3)
    ]
    training = ensemble.get_loss(y_pred, y_true, training=True)
    validation = ensemble.get_loss(y_pred, y_true, training=False)
    assert float(training) == pytest.approx(sum(per_member), rel=1e-6)
    assert float(validation) == pytest.approx(np.mean(per_member), rel=1e-6)


def test_clone_refit_is_identical(data, ensemble):
    structures, y = data
    copy = clone(ensemble)
    assert copy.get_params()["n_estimators"] == 3 and not copy.initialized_
    np.testing.assert_array_equal(
        copy.fit(structures, y).predict_members(structures), ensemble.predict_members(structures)
    )


def test_other_random_state_gives_other_members(data, ensemble):
    structures, y = data
    other = SiteNetRegressor(**{**FAST, "random_state": 1}, n_estimators=3).fit(structures, y)
    assert not np.allclose(other.predict(structures), ensemble.predict(structures))


def test_save_load_and_pickle(data, ensemble, tmp_path):
    structures, _ = data
    expected = ensemble.predict_members(structures)
    ensemble.save(tmp_path / "model")
    keys = load_state_dict(tmp_path / "model", "cpu")
    assert {key.split(".")[1] for key in keys} == {"0", "1", "2"}
    loaded = SiteNetRegressor.load(tmp_path / "model")
    assert loaded.n_estimators == 3
    np.testing.assert_array_equal(loaded.predict_members(structures), expected)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(ensemble)).predict_members(structures), expected
    )
    joblib.dump(ensemble, tmp_path / "model.joblib")
    np.testing.assert_array_equal(
        joblib.load(tmp_path / "model.joblib").predict_members(structures), expected
    )


def test_members_fine_tune_the_same_pretrained_encoder(data, fitted_pretrainer, tmp_path):
    structures, y = data
    options = {**FAST, "max_epochs": 1, "lr": 0.0, "lr_schedule": "constant"}
    model = SiteNetRegressor(**options, n_estimators=2, pretrained=fitted_pretrainer)
    model.fit(structures, y)
    pretrained = fitted_pretrainer.module_.encoder.state_dict()
    first, second = model.module_.members
    for member in (first, second):
        for name, value in member.encoder.state_dict().items():
            torch.testing.assert_close(value, pretrained[name], rtol=0, atol=0)
    assert not torch.equal(first.head[0].weight, second.head[0].weight)
    # a saved ensemble is a pretrained source too (its first member's encoder)
    model.save(tmp_path / "ensemble")
    again = SiteNetRegressor(**options, pretrained=str(tmp_path / "ensemble")).fit(structures, y)
    for name, value in again.module_.encoder.state_dict().items():
        torch.testing.assert_close(value, pretrained[name], rtol=0, atol=0)


def test_freeze_encoder_freezes_every_member(data, fitted_pretrainer):
    structures, y = data
    model = SiteNetRegressor(
        **{**FAST, "max_epochs": 1},
        n_estimators=2,
        pretrained=fitted_pretrainer,
        freeze_encoder=True,
    ).fit(structures, y)
    for member in model.module_.members:
        assert not any(p.requires_grad for p in member.encoder.parameters())
        assert all(p.requires_grad for p in member.head.parameters())


def test_pipeline_and_grid_search(data):
    structures, y = data
    pipeline = make_pipeline(SiteNetRegressor(**{**FAST, "max_epochs": 1}, n_estimators=2))
    mean, std = pipeline.fit(structures, y).predict(structures, return_std=True)
    assert mean.shape == std.shape == (len(structures),)
    search = GridSearchCV(
        SiteNetRegressor(**{**FAST, "max_epochs": 1}),
        {"n_estimators": [1, 2]},
        cv=KFold(2),
        scoring="neg_mean_absolute_error",
    )
    search.fit(structures, y)
    assert search.best_params_["n_estimators"] in (1, 2)
    assert search.predict(structures).shape == (len(structures),)


def test_checkpoint_resume(data, tmp_path):
    """An interrupted ensemble fit resumes to the uninterrupted run's weights."""
    from skorch.callbacks import Callback

    class Interrupt(Callback):  # stops after epoch 1, as a killed process would
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 1:
                raise KeyboardInterrupt

    structures, y = data
    options = {**FAST, "n_estimators": 2}
    whole = SiteNetRegressor(**options).fit(structures, y)
    run = str(tmp_path / "run")
    stopped = SiteNetRegressor(**options, checkpoint_dir=run, callbacks=[("i", Interrupt())])
    assert len(stopped.fit(structures, y).history) == 1
    resumed = SiteNetRegressor(**options, checkpoint_dir=run).fit(structures, y)
    assert resumed.history[:, "train_loss"] == whole.history[:, "train_loss"]
    np.testing.assert_array_equal(
        resumed.predict_members(structures), whole.predict_members(structures)
    )


def test_cli_std(data_home, tmp_path, capsys):
    csv = str(data_home / "mp100.csv.gz")
    folder = str(data_home / "cod_cif10")
    fast = ["--max-epochs", "1", "--batch-pairs", "20000", "--quiet"]
    fit = ["fit", csv, "--target", "e_form_per_atom", *fast]
    assert main([*fit, "--out", str(tmp_path / "ens"), "--n-estimators", "2"]) == 0
    out = str(tmp_path / "p.csv")
    assert main(["predict", str(tmp_path / "ens"), folder, "--out", out, "--std"]) == 0
    predictions = pd.read_csv(out, index_col=0)
    assert list(predictions.columns) == ["prediction", "prediction_std"]
    assert len(predictions) == 10 and (predictions["prediction_std"] > 0).all()
    assert main([*fit, "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "one"), folder, "--out", out, "--std"]) == 2
    assert "n_estimators" in capsys.readouterr().err
