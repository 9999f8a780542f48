import numpy as np
import pytest
import torch
from conftest import FAST
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from skdim import DIMPretrainer, SiteNetClassifier, SiteNetRegressor
from skdim.data import feature_scaling
from skdim.featurize import featurize
from skdim.nn.losses import REGRESSION_LOSSES


def test_fit_predict(small, fitted_regressor):
    structures, labels = small
    predictions = fitted_regressor.predict(structures)
    assert predictions.shape == (len(structures),)
    assert np.isfinite(predictions).all()


def test_training_loss_falls(small):
    structures, labels = small
    model = SiteNetRegressor(**{**FAST, "max_epochs": 30}).fit(
        structures, labels["e_form_per_atom"]
    )
    losses = model.history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_multi_target(small):
    structures, labels = small
    model = SiteNetRegressor(**FAST).fit(structures, labels[["e_form_per_atom", "band_gap"]])
    assert model.predict(structures).shape == (len(structures), 2)
    assert model.n_outputs_ == 2


@pytest.mark.parametrize("loss", ["mae", "mse", "huber"])
@pytest.mark.parametrize("output", ["identity", "softplus", "trelu"])
def test_losses_and_outputs(small, loss, output):
    structures, labels = small
    model = SiteNetRegressor(**{**FAST, "max_epochs": 1}, loss=loss, output=output)
    predictions = model.fit(structures, labels["band_gap"]).predict(structures)
    assert predictions.shape == (len(structures),) and np.isfinite(predictions).all()
    assert type(model.criterion_) is REGRESSION_LOSSES[loss]  # the named loss is what trained
    assert model.module_.output.kind == output
    raw = torch.linspace(-3, 3, 7)
    expected = {"identity": raw, "softplus": torch.nn.functional.softplus(raw)}
    expected["trelu"] = raw.clamp(min=0)
    assert torch.allclose(model.module_.output(raw), expected[output])
    if output != "identity":
        assert (predictions >= 0).all()


def test_target_errors(small):
    structures, labels = small
    y = labels["e_form_per_atom"].to_numpy().copy()
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\['mp-"):
        SiteNetRegressor(**FAST).fit(structures, labels["e_form_per_atom"].where(y == y))
    with pytest.raises(ValueError, match="40 structures but y has 39"):
        SiteNetRegressor(**FAST).fit(structures, y[:39])
    with pytest.raises(ValueError, match="empty"):
        SiteNetRegressor(**FAST).fit([], [])
    with pytest.raises(NotFittedError):
        SiteNetRegressor().predict(structures)


def test_pretrained_sources_give_the_same_start(small, fitted_pretrainer, tmp_path):
    structures, labels = small
    fitted_pretrainer.save(tmp_path / "dim")
    encoders = []
    for source in (fitted_pretrainer, FrozenEstimator(fitted_pretrainer), str(tmp_path / "dim")):
        # a frozen encoder keeps the pretrained weights (max_epochs=0 is refused)
        model = SiteNetRegressor(
            **{**FAST, "max_epochs": 1}, pretrained=source, freeze_encoder=True
        )
        model.fit(structures, labels["e_form_per_atom"])
        encoders.append(model.module_.encoder.state_dict())
        assert model.featurization_ == fitted_pretrainer.featurization_
    reference = fitted_pretrainer.module_.encoder.state_dict()
    for state in encoders:
        for key, value in reference.items():
            torch.testing.assert_close(state[key], value)


def test_supervised_transfer_takes_the_encoder_and_builds_a_new_head(small, fitted_regressor):
    """What the docs say ``pretrained=<a Site-Net of another property>`` does."""
    structures, labels = small
    X, gaps = structures.iloc[:20], labels["band_gap"].to_numpy()[:20]
    model = SiteNetRegressor(
        **{**FAST, "max_epochs": 1},
        pretrained=FrozenEstimator(fitted_regressor),  # fitted on formation energies
        freeze_encoder=True,
        preset="paper",  # ignored: the architecture is the source's
        head_hidden=(16,),
        output="trelu",
    ).fit(X, gaps)
    source = fitted_regressor.module_
    # the encoder: weights and input scaling (buffers) of the source, not of this fit's data
    reference = source.encoder.state_dict()
    for key, value in model.module_.encoder.state_dict().items():
        torch.testing.assert_close(value, reference[key])
    assert model.module_.encoder.config == source.encoder.config
    own = feature_scaling(featurize(X, **model.featurization_))["site_mean"]
    assert not np.allclose(model.module_.encoder.site_mean.numpy(), own)
    # a new head of this estimator's shape, and targets scaled on this fit's labels
    head = [p.shape for n, p in model.module_.named_parameters() if not n.startswith("encoder.")]
    old = [p.shape for n, p in source.named_parameters() if not n.startswith("encoder.")]
    assert head != old and torch.Size([16]) in head
    assert float(model.module_.target_scale) == pytest.approx(float(np.std(gaps)), rel=1e-3)
    assert float(model.module_.target_shift) == 0.0  # trelu: scaled, not shifted
    assert float(source.target_shift) != 0.0


def test_unfitted_or_mismatched_pretrained_is_an_error(small, fitted_pretrainer):
    structures, labels = small
    with pytest.raises(ValueError, match="FrozenEstimator"):
        SiteNetRegressor(**FAST, pretrained=DIMPretrainer()).fit(structures, labels["band_gap"])
    with pytest.raises(ValueError, match="does not fit"):
        SiteNetRegressor(**FAST, pretrained=fitted_pretrainer, module__n_blocks=2).fit(
            structures, labels["band_gap"]
        )


def test_freeze_encoder(small, fitted_pretrainer):
    structures, labels = small
    model = SiteNetRegressor(**FAST, pretrained=fitted_pretrainer, freeze_encoder=True)
    model.fit(structures, labels["e_form_per_atom"])
    before = fitted_pretrainer.module_.encoder.state_dict()
    for key, value in model.module_.encoder.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_classifier(small):
    structures, labels = small
    metal = np.where(labels["band_gap"] > 0, "insulator", "metal")
    model = SiteNetClassifier(**{**FAST, "max_epochs": 3}).fit(structures, metal)
    proba = model.predict_proba(structures)
    assert proba.shape == (len(structures), 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert set(model.predict(structures)) <= {"insulator", "metal"}
    assert list(model.classes_) == ["insulator", "metal"]
    with pytest.raises(ValueError, match="single class"):
        SiteNetClassifier(**FAST).fit(structures, ["a"] * len(structures))


def test_same_seed_gives_identical_predictions(small, fitted_regressor):
    structures, labels = small
    again = SiteNetRegressor(**FAST).fit(structures, labels["e_form_per_atom"])
    np.testing.assert_array_equal(again.predict(structures), fitted_regressor.predict(structures))


def test_predict_leaves_the_estimator_unchanged(small, fitted_regressor):
    structures, _ = small
    before = dict(vars(fitted_regressor))
    fitted_regressor.predict(structures)
    assert dict(vars(fitted_regressor)).keys() == before.keys()
    assert all(vars(fitted_regressor)[k] is v for k, v in before.items())
