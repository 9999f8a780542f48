"""Learning-rate schedules and training budgets: shapes, stops, resumes."""

import numpy as np
import pytest
import torch
from conftest import FAST
from skorch.callbacks import Callback

from skdim import DIMPretrainer, SiteNetRegressor
from skdim._schedule import CosineSchedule, auto_steps, plateau_state
from skdim.featurize import featurize


@pytest.fixture(scope="module")
def inputs(small):
    structures, labels = small
    return featurize(structures), labels["e_form_per_atom"].to_numpy()


def test_cosine_warms_up_then_decays_to_final():
    schedule = CosineSchedule(total_steps=200, warmup=0.1, final=0.01)
    schedule.total_ = 200
    factors = np.array([schedule._factor(step) for step in range(200)])
    assert factors[0] == pytest.approx(1 / 20)
    assert np.all(np.diff(factors[:20]) > 0)  # warm-up rises
    assert factors[19] == pytest.approx(1.0)
    assert np.all(np.diff(factors[20:]) <= 1e-12)  # then never rises
    assert factors[-1] == pytest.approx(0.01)


def test_plateau_cuts_then_stops():
    improving = [5.0, 4.0, 3.0, 2.0, 1.0]
    assert plateau_state(improving, patience=2, cuts=2, threshold=1e-3) == (0, False)
    flat = [5.0, 4.0, 4.0, 4.0]  # two epochs without improvement: first cut
    assert plateau_state(flat, patience=2, cuts=2, threshold=1e-3) == (1, False)
    assert plateau_state(flat + [4.0, 4.0], patience=2, cuts=2, threshold=1e-3) == (2, False)
    assert plateau_state(flat + [4.0] * 4, patience=2, cuts=2, threshold=1e-3) == (2, True)
    # improvements smaller than the threshold do not count
    tiny = [1.0, 0.9999, 0.9998, 0.9997]
    assert plateau_state(tiny, patience=3, cuts=0, threshold=1e-3) == (0, True)
    # negative losses (DIM estimates) compare by their magnitude
    assert plateau_state([-1.0, -1.5, -2.0], patience=1, cuts=0, threshold=1e-3) == (0, False)


def test_auto_budget_grows_with_n_and_is_bounded():
    budgets = [auto_steps(n) for n in (10, 50, 100, 250, 1000, 10_000)]
    assert budgets == sorted(budgets)
    assert budgets[0] >= 100 and budgets[-1] <= 10_000


def test_regressor_trains_for_max_steps_with_cosine_lr(inputs):
    X, y = inputs
    model = SiteNetRegressor(**{**FAST, "max_epochs": None}, max_steps=30).fit(X, y)
    per_epoch = model.steps_per_epoch_
    assert len(model.history) == round(30 / per_epoch)
    assert model.history[-1, "step"] == model.total_steps_ == len(model.history) * per_epoch
    lrs = model.history[:, "lr"]
    assert lrs[-1] == pytest.approx(0.01 * model.lr, rel=1e-6)  # decayed to 1 % at the end
    assert max(lrs) <= model.lr
    assert model.get_params()["max_epochs"] is None  # the parameter is not rewritten


def test_max_epochs_overrides_steps_and_constant_lr_stays(inputs):
    X, y = inputs
    model = SiteNetRegressor(**{**FAST, "max_epochs": 3}, lr_schedule="constant").fit(X, y)
    assert len(model.history) == 3
    groups = model.optimizer_.param_groups
    assert all(g["lr"] == model.lr for g in groups)


def test_unknown_schedule_is_refused(inputs):
    X, y = inputs
    with pytest.raises(ValueError, match="lr_schedule"):
        SiteNetRegressor(**FAST, lr_schedule="plateau").fit(X, y)


def test_dim_stops_on_plateau(inputs):
    X, _ = inputs
    # lr 0: the validation loss cannot improve, so 1 + 3 x patience epochs run
    model = DIMPretrainer(**{**FAST, "max_epochs": 50}, lr=0.0, plateau_patience=1).fit(X)
    assert len(model.history) == 4
    assert model.history[-1, "stopped"]
    assert model.history[:, "lr_cuts"] == [0, 1, 2, 2]


def test_schedule_resumes_where_it_stopped(inputs, tmp_path):
    X, y = inputs
    options = {**FAST, "max_epochs": None, "max_steps": 24, "checkpoint_dir": str(tmp_path)}
    whole = SiteNetRegressor(**{**options, "checkpoint_dir": None}).fit(X, y)
    SiteNetRegressor(**options, callbacks=[("stop", Interrupt(2))]).fit(X, y)
    resumed = SiteNetRegressor(**options).fit(X, y)
    assert resumed.history[:, "step"] == whole.history[:, "step"]
    assert resumed.history[:, "lr"] == pytest.approx(whole.history[:, "lr"])


class Interrupt(Callback):
    """Stop a fit after ``epochs`` epochs, as a killed process would (after the checkpoint)."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt


def _weights(model):
    return {k: v.clone() for k, v in model.module_.state_dict().items()}


@pytest.mark.parametrize("kind", ["dim", "regressor"])
def test_resumed_run_equals_uninterrupted_bitwise(inputs, tmp_path, kind):
    X, y = inputs
    options = {**FAST, "max_epochs": 6}
    if kind == "dim":
        make, target = (lambda **o: DIMPretrainer(**options, **o)), None
    else:
        make, target = (lambda **o: SiteNetRegressor(**options, **o)), y
    whole = make().fit(X, target)
    run = str(tmp_path / "run")
    make(checkpoint_dir=run, callbacks=[("stop", Interrupt(2))]).fit(X, target)
    resumed = make(checkpoint_dir=run).fit(X, target)
    assert len(resumed.history) == 6
    expected, found = _weights(whole), _weights(resumed)
    assert all(torch.equal(expected[k], found[k]) for k in expected)
    assert resumed.history[:, "train_loss"] == whole.history[:, "train_loss"]


def test_checkpoint_of_another_run_is_refused(inputs, tmp_path):
    X, y = inputs
    run = str(tmp_path / "run")
    SiteNetRegressor(**FAST, checkpoint_dir=run).fit(X, y)
    with pytest.raises(ValueError, match="other training data"):
        SiteNetRegressor(**FAST, checkpoint_dir=run).fit(X, y + 1.0)
    with pytest.raises(ValueError, match="other training data"):
        SiteNetRegressor(**FAST, checkpoint_dir=run).fit(X[:-1], y[:-1])
    with pytest.raises(ValueError, match="other settings"):
        SiteNetRegressor(**{**FAST, "random_state": 1}, checkpoint_dir=run).fit(X, y)
    with pytest.raises(ValueError, match="other settings"):
        SiteNetRegressor(**FAST, lr=0.01, checkpoint_dir=run).fit(X, y)
    # the same run again: resumed (already finished), not refused
    again = SiteNetRegressor(**FAST, checkpoint_dir=run).fit(X, y)
    assert len(again.history) == FAST["max_epochs"]
