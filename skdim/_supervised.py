"""Shared machinery of SiteNetRegressor and SiteNetClassifier: pretrained encoders."""

from __future__ import annotations

from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.frozen import FrozenEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.callbacks import Callback

from skdim._base import SiteNetMixin
from skdim._checkpoint import state_digest
from skdim._featurize_settings import FEATURIZATION_DEFAULTS
from skdim._inputs import align_targets, as_structures, check_targets
from skdim.nn import PRESETS, SiteNetEnsemble, ensemble_members
from skdim.persistence import load_state_dict, read_config
from skdim.pretrained import resolve_saved_model


class PretrainedSource:
    """Encoder weights, architecture and featurization of a pretrained model.

    Parameters
    ----------
    pretrained : str, Path, fitted estimator or FrozenEstimator
        The name of a shipped model (:func:`skdim.list_pretrained`), a
        directory written by ``DIMPretrainer.save`` (or any skdim model's
        ``save``), or a fitted DIMPretrainer / SiteNetRegressor, possibly
        wrapped in :class:`sklearn.frozen.FrozenEstimator` so that it
        survives ``clone`` in cross-validation and grid search.
    """

    def __init__(self, pretrained: Any):
        pretrained = resolve_saved_model(pretrained)
        if isinstance(pretrained, (str, Path)):
            config = read_config(pretrained)
            fitted = config["fitted"]
            self.encoder_config = dict(fitted["encoder"])
            self.featurization = dict(fitted["featurization"])
            self._path: Path | None = Path(pretrained)
            self._module = None
            return
        model = pretrained.estimator if isinstance(pretrained, FrozenEstimator) else pretrained
        if not hasattr(model, "module_") or not getattr(model, "initialized_", False):
            raise ValueError(
                f"pretrained {type(model).__name__} is not fitted. Note that sklearn's clone "
                "(used by cross_val_score and GridSearchCV) returns unfitted copies of "
                "estimator parameters: pass FrozenEstimator(fitted_pretrainer) or a saved path"
            )
        self.encoder_config = dict(model.module_.encoder.config)
        self.featurization = dict(model.featurization_)
        self._path = None
        self._module = model.module_

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The encoder's state dict on CPU."""
        if self._module is not None:
            state = self._module.encoder.state_dict()
            return {k: v.detach().cpu().clone() for k, v in state.items()}
        state = load_state_dict(self._path, "cpu")
        prefix = "encoder."
        if not any(k.startswith(prefix) for k in state):  # an ensemble: its first member
            prefix = "members.0.encoder."
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


class SupervisedMixin(SiteNetMixin):
    """Fine-tuning from pretrained weights, target handling and persistence."""

    _parameter_constraints: dict[str, list] = {
        **SiteNetMixin._parameter_constraints,
        "freeze_encoder": ["boolean"],
        "preset": [StrOptions(set(PRESETS))],
        "head_hidden": ["array-like"],
        "max_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    }

    def _featurization_base(self) -> dict:
        if self.pretrained is None:
            return FEATURIZATION_DEFAULTS
        return {**FEATURIZATION_DEFAULTS, **PretrainedSource(self.pretrained).featurization}

    def _architecture(self) -> dict:
        """Encoder settings: the pretrained model's, else the preset."""
        if getattr(self, "architecture_", None) is not None:
            return self.architecture_
        if self.pretrained is None:
            return {"preset": self.preset}
        config = dict(PretrainedSource(self.pretrained).encoder_config)
        config.pop("n_site_features")
        config.pop("n_pair_features")
        return {"preset": "dim", **config}

    def _n_outputs(self) -> int:
        return getattr(self, "n_outputs_", 1)

    def _n_members(self) -> int:
        """Networks trained side by side (``n_estimators`` of the regressor; 1 here)."""
        return 1

    def _member_seeds(self) -> list[int]:
        """Seeds of the initial weights of members 2, 3, ... (derived from ``random_state``)."""
        seed = getattr(self, "seed_", None)
        if seed is None:  # built outside fit (a loaded model): the weights come from a file
            seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        rng = np.random.default_rng(seed)
        return [int(s) for s in rng.integers(2**31 - 1, size=self._n_members() - 1)]

    def initialize_module(self):
        """Build SiteNet (its encoder frozen with ``freeze_encoder``), or an ensemble of them.

        With several members (``n_estimators > 1``), the first is built from
        the torch random state as a single network would be, and member k
        from its own seed (:meth:`_member_seeds`), so the first member starts
        from the weights of the single model with the same ``random_state``.
        The pretrained weights are loaded by :meth:`_initial_weights` when a
        fit starts, not here: a loaded model gets its weights from its file.

        Returns
        -------
        self
        """
        settings = {
            **self._architecture(),
            "n_outputs": self._n_outputs(),
            "head_hidden": self.head_hidden,
            "output": self._output(),
        }
        members = [self._build_module(settings)]
        for seed in self._member_seeds():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                members.append(self._build_module(settings))
        targets = getattr(self, "target_scaling_", None)
        for module in members:
            if targets is not None:
                module.target_shift.copy_(torch.as_tensor(targets[0]))
                module.target_scale.copy_(torch.as_tensor(targets[1]))
            if self.freeze_encoder:
                module.encoder.requires_grad_(False)
        self.module_ = members[0] if len(members) == 1 else SiteNetEnsemble(members)
        return self

    def get_default_callbacks(self):
        """The shared callbacks; an ensemble clips each member's gradient norm on its own.

        Returns
        -------
        list of (str, Callback)
        """
        callbacks = list(super().get_default_callbacks())
        if self._n_members() > 1:
            callbacks = [
                (name, MemberGradientClipping(self.gradient_clip))
                if name == "gradient_clip"
                else (name, callback)
                for name, callback in callbacks
            ]
        return callbacks

    def train_step(self, batch, **fit_params):
        """One optimizer step; an ensemble records the mean of its members' losses.

        Parameters
        ----------
        batch : tuple
            ``(inputs, targets)`` from the training iterator.
        **fit_params : dict
            Passed on to the module.

        Returns
        -------
        dict
            ``loss`` (the members' mean) and ``y_pred``.
        """
        step = super().train_step(batch, **fit_params)
        members = len(ensemble_members(self.module_))
        if members > 1:  # get_loss summed them for the backward pass
            step["loss"] = step["loss"] / members
        return step

    def _output(self) -> str:
        return "identity"

    def _fit_dataset(self, X: Any, y: Any):
        items, _ = as_structures(X)
        self.architecture_ = None
        self.architecture_ = self._architecture()
        y = align_targets(items, y)
        return self.get_dataset(X, self._encode_targets(y, len(items)))

    def _encode_targets(self, y: Any, n: int):
        return check_targets(y, n)

    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "architecture": self.architecture_}

    def _restore_fitted(self, state: dict) -> None:
        super()._restore_fitted(state)
        self.architecture_ = dict(state["architecture"])

    def _pretrained_digest(self) -> str:
        """sha256 of the pretrained encoder's weights (part of the checkpoint fingerprint)."""
        return state_digest(PretrainedSource(self.pretrained).encoder_state())

    def _initial_weights(self) -> None:
        """A new fit starts from the pretrained encoder, if there is one."""
        if self.pretrained is not None:
            _load_encoder(self.module_, PretrainedSource(self.pretrained).encoder_state())


class MemberGradientClipping(Callback):
    """Clip the gradient norm of each ensemble member separately.

    A member then takes the step it would take trained alone on the same
    batches (the norm of all members together would clip more often).

    Parameters
    ----------
    max_norm : float
        Largest L2 norm of one member's gradient.
    """

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def on_grad_computed(self, net, named_parameters, **kwargs) -> None:
        """Clip each member's gradients (``named_parameters`` is not needed)."""
        for member in ensemble_members(net.module_):
            parameters = [p for p in member.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(parameters, self.max_norm)


def _load_encoder(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    try:
        for member in ensemble_members(module):
            member.encoder.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(
            "the pretrained encoder does not fit this model's encoder (different "
            f"architecture or featurization settings): {error}"
        ) from None
