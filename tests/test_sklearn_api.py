"""The scikit-learn contract, for every skdim estimator.

sklearn's common checks skip estimators whose input is not a 2-D array, so the
data-free checks are called directly and the rest is tested on real
structures below.
"""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as checks
from sklearn.utils.validation import check_is_fitted

from skdim import DIMPretrainer, SiteFeatureStats, SiteNetClassifier, SiteNetRegressor

#: The estimators built on skorch.
ESTIMATORS = [DIMPretrainer, SiteNetRegressor, SiteNetClassifier]
#: Every public estimator (SiteFeatureStats has no network and no skorch).
ALL_ESTIMATORS = [*ESTIMATORS, SiteFeatureStats]
DATA_FREE_CHECKS = [
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
]
#: Checks expected to fail for the skorch estimators, with the reason.
EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": (
        "skorch's NeuralNet.__init__ sets history_, initialized_ and virtual_params_"
    ),
    "check_set_params": (
        "skorch's set_params builds callbacks at once, so a non-list `callbacks` value "
        "raises in set_params (plain skorch nets fail this check the same way)"
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "same cause: skorch's set_params initializes `callbacks` immediately"
    ),
}


@pytest.mark.parametrize("estimator", ALL_ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("check", DATA_FREE_CHECKS)
def test_data_free_sklearn_checks(estimator, check):
    run = getattr(checks, check)
    if check in EXPECTED_FAILURES and estimator in ESTIMATORS:
        with pytest.raises((AssertionError, AttributeError, TypeError)):
            run(estimator.__name__, estimator())
    else:
        run(estimator.__name__, estimator())


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda c: c.__name__)
def test_tags_declare_structure_input(estimator):
    tags = estimator().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.requires_fit is True
    assert tags.non_deterministic is False
    assert estimator(device="cuda").__sklearn_tags__().non_deterministic is True


def test_site_feature_stats_tags():
    tags = SiteFeatureStats().__sklearn_tags__()
    assert tags.input_tags.two_d_array is False
    assert tags.requires_fit is True and tags.target_tags.required is False
    assert tags.non_deterministic is False


def test_nested_params_and_clone(fitted_pretrainer):
    model = DIMPretrainer(module__n_blocks=2, optimizer__weight_decay=0.05)
    params = model.get_params()
    assert params["module__n_blocks"] == 2 and params["optimizer__weight_decay"] == 0.05
    model.set_params(module__n_blocks=3, lr=0.01)
    assert model.get_params()["module__n_blocks"] == 3
    copy = clone(fitted_pretrainer)
    assert not copy.initialized_
    assert copy.get_params()["max_epochs"] == fitted_pretrainer.get_params()["max_epochs"]
    check_is_fitted(fitted_pretrainer)


def test_clone_then_fit_equals_fit(small, fitted_pretrainer):
    structures, _ = small
    refit = clone(fitted_pretrainer).fit(structures)
    np.testing.assert_array_equal(
        refit.transform(structures), fitted_pretrainer.transform(structures)
    )


def test_pipeline_cross_val_score(small):
    structures, labels = small
    pipeline = make_pipeline(
        DIMPretrainer(**{**FAST, "max_epochs": 1}),
        StandardScaler(),
        RandomForestRegressor(n_estimators=20, random_state=0),
    )
    scores = cross_val_score(pipeline, structures, labels["e_form_per_atom"], cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_frozen_pretrainer_is_not_refit_in_cv(small, fitted_pretrainer):
    structures, labels = small
    before = fitted_pretrainer.transform(structures)
    pipeline = make_pipeline(FrozenEstimator(fitted_pretrainer), Ridge())
    cross_val_score(pipeline, structures, labels["e_form_per_atom"], cv=2)
    regressor = SiteNetRegressor(
        **{**FAST, "max_epochs": 1}, pretrained=FrozenEstimator(fitted_pretrainer)
    )
    cross_val_score(regressor, structures, labels["e_form_per_atom"], cv=2)
    np.testing.assert_array_equal(fitted_pretrainer.transform(structures), before)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(small, n_jobs):
    structures, labels = small
    search = GridSearchCV(
        SiteNetRegressor(**{**FAST, "max_epochs": 1}),
        {"lr": [1e-3, 3e-3]},
        cv=KFold(2),
        n_jobs=n_jobs,
        scoring="neg_mean_absolute_error",
    )
    search.fit(structures, labels["e_form_per_atom"])
    assert search.best_params_["lr"] in (1e-3, 3e-3)
    assert search.predict(structures).shape == (len(structures),)


def test_column_transformer(small, fitted_pretrainer):
    structures, labels = small
    frame = pd.DataFrame({"structure": structures, "temperature": np.arange(len(structures))})
    transformer = ColumnTransformer(
        [
            ("emb", FrozenEstimator(fitted_pretrainer), ["structure"]),
            ("num", "passthrough", ["temperature"]),
        ]
    )
    features = transformer.fit_transform(frame)
    assert features.shape == (len(structures), 129)
    assert transformer.get_feature_names_out()[0] == "emb__dim0"


def test_column_transformer_site_stats_beside_dim(small, fitted_pretrainer):
    """The benchmark's two best feature families side by side, from one structure column."""
    structures, labels = small
    frame = pd.DataFrame({"structure": structures, "temperature": np.arange(len(structures))})
    transformer = ColumnTransformer(
        [
            ("emb", FrozenEstimator(fitted_pretrainer), ["structure"]),
            ("stats", SiteFeatureStats(), ["structure"]),
            ("num", "passthrough", ["temperature"]),
        ]
    )
    features = transformer.fit_transform(frame)
    assert features.shape == (len(structures), 128 + 32 + 1)
    names = transformer.get_feature_names_out()
    assert names[0] == "emb__dim0" and names[128] == "stats__mean_Number"
    np.testing.assert_array_equal(
        features[:, 128:160], SiteFeatureStats().fit_transform(structures)
    )
    model = make_pipeline(clone(transformer), Ridge())
    scores = cross_val_score(model, frame, labels["e_form_per_atom"], cv=2)
    assert np.isfinite(scores).all()


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and the like: compare as arrays
        return bool(np.array_equal(a, b))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda c: c.__name__)
def test_fit_leaves_constructor_parameters_alone(small, tmp_path, estimator):
    """fit resolves device="auto" and the rest into fitted attributes, never into parameters."""
    structures, labels = small
    X = structures.iloc[:16]
    y = labels["e_form_per_atom"].to_numpy()[:16]
    options = {**FAST, "device": "auto", "checkpoint_dir": str(tmp_path), "gradient_clip": 1.0}
    if estimator is SiteNetClassifier:
        y = np.where(y > np.median(y), "high", "low")
    model = estimator(**options)
    before = model.get_params(deep=False)
    model.fit(X, None if estimator is DIMPretrainer else y)
    after = model.get_params(deep=False)
    assert set(after) == set(before)
    changed = [name for name in before if not _same(before[name], after[name])]
    assert changed == []
    assert model.device == "auto" and model.device_ in ("cpu", "cuda")


def test_fine_tuning_leaves_constructor_parameters_alone(small, fitted_pretrainer, tmp_path):
    fitted_pretrainer.save(tmp_path / "dim")
    structures, labels = small
    model = SiteNetRegressor(**FAST, pretrained=str(tmp_path / "dim"), freeze_encoder=True)
    before = model.get_params(deep=False)
    model.fit(structures.iloc[:16], labels["e_form_per_atom"].to_numpy()[:16])
    after = model.get_params(deep=False)
    assert [name for name in before if not _same(before[name], after[name])] == []
    encoder = fitted_pretrainer.module_.encoder.state_dict()
    tuned = model.module_.encoder.state_dict()
    assert all(torch.equal(v.cpu(), tuned[k].cpu()) for k, v in encoder.items())  # frozen
