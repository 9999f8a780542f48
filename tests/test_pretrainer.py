import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST
from sklearn.exceptions import NotFittedError

from skdim import DIMPretrainer
from skdim.featurize import featurize


def test_fit_returns_self_and_transform_shape(small, fitted_pretrainer):
    structures, _ = small
    embeddings = fitted_pretrainer.transform(structures)
    assert embeddings.shape == (len(structures), 128)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    model = DIMPretrainer(**{**FAST, "max_epochs": 1})
    assert model.fit(structures) is model


def test_history_records_self_supervised_metrics(fitted_pretrainer):
    history = fitted_pretrainer.history
    assert len(history) == 2
    for key in ("train_loss", "valid_loss", "global_mi", "local_mi", "valid_global_mi"):
        assert np.isfinite(history[-1, key])


def test_labels_are_ignored(small):
    structures, labels = small
    with_y = DIMPretrainer(**FAST).fit(structures, labels["band_gap"]).transform(structures)
    without = DIMPretrainer(**FAST).fit(structures).transform(structures)
    np.testing.assert_array_equal(with_y, without)


def test_same_seed_gives_identical_embeddings(small, fitted_pretrainer):
    structures, _ = small
    again = DIMPretrainer(**FAST).fit(structures)
    np.testing.assert_array_equal(
        again.transform(structures), fitted_pretrainer.transform(structures)
    )
    other = DIMPretrainer(**{**FAST, "random_state": 1}).fit(structures)
    assert not np.array_equal(other.transform(structures), fitted_pretrainer.transform(structures))


def test_accepts_every_documented_input_type(small, fitted_pretrainer):
    structures, _ = small
    reference = fitted_pretrainer.transform(structures)
    values = structures.tolist()
    array = np.empty(len(values), dtype=object)
    array[:] = values
    frame = pd.DataFrame({"structure": structures})
    featurized = featurize(values, **fitted_pretrainer.featurization_)
    for X in (values, tuple(values), array, frame, featurized):
        np.testing.assert_allclose(fitted_pretrainer.transform(X), reference, atol=1e-6)


def test_transform_does_not_depend_on_order_or_subset(small, fitted_pretrainer):
    structures, _ = small
    full = fitted_pretrainer.transform(structures)
    order = np.random.default_rng(0).permutation(len(structures))[:11]
    np.testing.assert_allclose(
        fitted_pretrainer.transform(structures.iloc[order]), full[order], atol=1e-5
    )


def test_pandas_output_keeps_material_ids(small, fitted_pretrainer):
    structures, _ = small
    model = DIMPretrainer(**FAST).set_output(transform="pandas")
    table = model.fit_transform(structures)
    assert list(table.index) == list(structures.index)
    assert list(table.columns[:2]) == ["dim0", "dim1"]
    assert list(fitted_pretrainer.get_feature_names_out()[-1:]) == ["dim127"]


def test_score_is_negative_dim_loss(small, fitted_pretrainer):
    structures, _ = small
    score = fitted_pretrainer.score(structures)
    assert np.isfinite(score) and score < 0
    assert score == fitted_pretrainer.score(structures)  # fixed validation negatives


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        ("structure", TypeError, "sequence"),
        (np.zeros((3, 4)), TypeError, "numeric array"),
        ([], ValueError, "empty"),
        (pd.DataFrame({"a": [1], "b": [2]}), ValueError, "2 columns"),
        (["not a structure"], TypeError, r"structures\[0\]"),
    ],
)
def test_bad_inputs_give_clear_errors(small, X, error, match):
    structures, _ = small
    X = structures.iloc[0] if isinstance(X, str) and X == "structure" else X
    with pytest.raises(error, match=match):
        DIMPretrainer(**FAST).fit(X)


def test_needs_two_structures(small):
    structures, _ = small
    with pytest.raises(ValueError, match="at least 2"):
        DIMPretrainer(**{**FAST, "validation_fraction": None}).fit(structures.iloc[:1])


def test_unfitted_transform_raises(small):
    with pytest.raises(NotFittedError):
        DIMPretrainer().transform(small[0])


def test_variants_train(small):
    structures, _ = small
    for options in (
        {"mi_estimator": "infonce"},
        {"engineered_negatives": False, "global_trains_local": True},
        {"prior_weight": 0.1},
        {"precision": "bfloat16"},
        {"module__local_samples": None, "device": "auto"},
    ):
        model = DIMPretrainer(**{**FAST, "max_epochs": 1, **options}).fit(structures)
        assert np.isfinite(model.history[-1, "train_loss"]), options


def test_checkpoint_resume(small, tmp_path):
    structures, _ = small
    options = {**FAST, "checkpoint_dir": str(tmp_path / "run")}
    first = DIMPretrainer(**{**options, "max_epochs": 1}).fit(structures)
    assert len(first.history) == 1
    resumed = DIMPretrainer(**{**options, "max_epochs": 3}).fit(structures)
    assert len(resumed.history) == 3  # one loaded, two trained
    assert (tmp_path / "run" / "params.pt").is_file()
    # the resumed run continued from the saved weights: it ends where an uninterrupted one does
    whole = DIMPretrainer(**{**FAST, "max_epochs": 3}).fit(structures)
    expected, found = whole.module_.state_dict(), resumed.module_.state_dict()
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert resumed.history[:, "train_loss"] == whole.history[:, "train_loss"]


def test_only_the_owner_of_the_checkpoint_touches_its_fingerprint(small, tmp_path, monkeypatch):
    # in a distributed run every rank fits; only the main one may write the
    # fingerprint, or a rank reads the other's half-written file
    structures, _ = small
    run = tmp_path / "run"
    run.mkdir()
    (run / "fingerprint.json").write_text("{half a fil")
    monkeypatch.setattr(DIMPretrainer, "_writes_checkpoints", lambda self: False)
    DIMPretrainer(**{**FAST, "max_epochs": 1, "checkpoint_dir": str(run)}).fit(structures)
    assert (run / "fingerprint.json").read_text() == "{half a fil"  # neither read nor replaced
    monkeypatch.undo()
    DIMPretrainer(**{**FAST, "max_epochs": 1, "checkpoint_dir": str(tmp_path / "new")}).fit(
        structures
    )
    assert sorted(p.name for p in (tmp_path / "new").glob("fingerprint*")) == ["fingerprint.json"]


def test_early_stopping_needs_validation(small):
    structures, _ = small
    with pytest.raises(ValueError, match="validation_fraction"):
        DIMPretrainer(**{**FAST, "early_stopping": 2, "validation_fraction": None}).fit(structures)
    model = DIMPretrainer(**{**FAST, "early_stopping": 1, "max_epochs": 6}).fit(structures)
    losses = model.history[:, "valid_loss"]
    # skorch's rule (relative threshold 1e-4): an epoch improves on the best so far
    improved = [loss < min(losses[:i]) * (1 - 1e-4) for i, loss in enumerate(losses) if i]
    assert all(improved[:-1])  # training went on while the validation loss improved
    assert len(losses) == 6 or not improved[-1]  # and stopped at the first epoch that did not
    # load_best: the weights are those of the best epoch
    best = int(np.argmin(losses)) + 1
    at_best = DIMPretrainer(**{**FAST, "max_epochs": best}).fit(structures)
    expected, found = at_best.module_.state_dict(), model.module_.state_dict()
    assert all(torch.equal(expected[k], found[k]) for k in expected)


def test_global_embedding_option(small, fitted_pretrainer):
    structures, _ = small
    model = DIMPretrainer(**FAST, embedding="global").fit(structures)
    assert model.transform(structures).shape == (len(structures), 64)
    assert len(model.get_feature_names_out()) == 64
    # the pooled features are what the global code is computed from
    encoder = fitted_pretrainer.module_.encoder
    assert fitted_pretrainer.transform(structures).shape[1] == encoder.pre_pool.out_dim


@pytest.mark.slow
def test_dim_loss_falls_and_global_mi_rises_on_demo_set(demo3k):
    """A few hundred DIM steps on real structures: the objective learns."""
    structures, _ = demo3k
    inputs = featurize([s for s in structures if len(s) <= 10][:800], max_atoms=50)
    model = DIMPretrainer(
        max_epochs=3,
        engineered_negatives=False,
        validation_fraction=None,
        batch_pairs=4096,
        random_state=0,
        verbose=0,
    ).fit(inputs)
    batches = [b for epoch in model.history for b in epoch["batches"]]
    assert len(batches) >= 150, len(batches)

    def mean_of(key, part):
        return np.mean([b[key] for b in part])

    first, last = batches[:30], batches[-30:]
    loss = mean_of("train_loss", first), mean_of("train_loss", last)
    global_mi = mean_of("global_mi", first), mean_of("global_mi", last)
    assert loss[1] < 0.8 * loss[0], loss
    assert global_mi[1] > global_mi[0] + 0.1, global_mi
