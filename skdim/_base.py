"""What every skdim estimator adds to skorch.

Structures in, pair-budget batches, seeding, mixed precision, gradient
clipping, checkpoint/resume and size-sorted inference.

Only skorch's documented hooks are overridden (``get_dataset``,
``get_split_datasets``, ``get_iterator``, ``infer``, ``train_step``,
``train_step_single``, ``initialize``, ``get_default_callbacks``); ``fit``
wraps skorch's to featurize once, seed the run and resume from a checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from skorch.callbacks import (
    Checkpoint,
    EarlyStopping,
    GradientNormClipping,
    PassthroughScoring,
    ProgressBar,
)
from skorch.utils import TeeGenerator, to_device
from torch.utils.data import DataLoader, Subset

from skdim._checkpoint import (
    RandomStateCheckpoint,
    check_fingerprint,
    fingerprint,
    restore_random_state,
    upgrade_optimizer_state,
)
from skdim._inputs import as_structures, is_featurized, is_torch_dataset
from skdim._schedule import CosineSchedule, PlateauSchedule, auto_steps
from skdim._threads import ThreadPolicy, thread_policy
from skdim.data import (
    PairBudgetBatchSampler,
    SiteNetDataset,
    collate_sitenet,
    feature_scaling,
    item_sizes,
)
from skdim.featurize import DEFAULT_SITE_PROPERTIES, featurize
from skdim.persistence import load_estimator, save_estimator

FEATURIZATION_DEFAULTS = {
    "max_atoms": 50,
    "supercell": "cubic",
    "site_properties": DEFAULT_SITE_PROPERTIES,
    "pair_features": ("distance",),
    "max_sites": 500,
}
_PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
_Estimator = TypeVar("_Estimator", bound="SiteNetMixin")

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
#: Constraints of the parameters every skdim estimator has (scikit-learn's
#: ``_parameter_constraints`` format; skorch's own parameters are not listed).
SHARED_CONSTRAINTS: dict[str, list] = {
    "max_atoms": [_POSITIVE_INT, None],
    "supercell": [StrOptions({"cubic", "primitive"}), None],
    "site_properties": ["array-like", None],
    "pair_features": ["array-like", None],
    "max_sites": [_POSITIVE_INT, None],
    "lr": [Interval(Real, 0, None, closed="left")],  # 0: weights stay as they are
    "max_epochs": [_POSITIVE_INT, None],
    "batch_pairs": [_POSITIVE_INT],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
    "early_stopping": [_POSITIVE_INT, None],
    "checkpoint_dir": [str, os.PathLike, None],
    "device": [str, torch.device, None],
    "precision": [StrOptions(set(_PRECISIONS))],
    "gradient_clip": [Interval(Real, 0, None, closed="left"), None],
    "random_state": ["random_state"],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}


def resolve_device(device: str | torch.device | None) -> str | torch.device | None:
    """'auto' becomes 'cuda' when a GPU is available, else 'cpu'."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class SiteNetMixin:
    """skorch hooks shared by DIMPretrainer, SiteNetRegressor and SiteNetClassifier."""

    #: Fewest crystals per training batch (DIM needs two to draw negatives).
    _min_crystals = 1
    #: Learning-rate schedules besides "constant" (see skdim._schedule).
    _schedules: tuple[str, ...] = ("cosine",)
    #: Names of batch-level values that get_loss records, averaged per epoch.
    _recorded: tuple[str, ...] = ()
    #: Constraints checked at the start of fit (see :meth:`_validate_params`).
    _parameter_constraints: dict[str, list] = {
        **SHARED_CONSTRAINTS,
        "lr_schedule": [StrOptions({"cosine", "constant"})],
    }
    #: Attributes that only a fitted (or loaded) estimator has.
    _fitted_attributes: tuple[str, ...] = ("module_",)

    # ----------------------------------------------------------------- data
    def _featurization_base(self) -> dict:
        """Featurization settings used where the estimator's own are None."""
        return FEATURIZATION_DEFAULTS

    def _resolve_featurization(self) -> dict:
        base = self._featurization_base()
        settings = {}
        for name in FEATURIZATION_DEFAULTS:
            value = getattr(self, name)
            settings[name] = base[name] if value is None else value
        settings["site_properties"] = tuple(settings["site_properties"])
        settings["pair_features"] = tuple(settings["pair_features"])
        return settings

    def get_dataset(self, X: Any, y: Any = None) -> SiteNetDataset:
        """Featurize structures (or wrap featurized inputs) into a SiteNetDataset.

        Parameters
        ----------
        X : sequence of Structure, featurized inputs, or a torch Dataset
            A torch Dataset (a :class:`~skdim.data.SiteNetDataset`, or one
            that streams from disk) is returned unchanged.
        y : array-like or None, default=None
            Targets.

        Returns
        -------
        SiteNetDataset
        """
        settings = getattr(self, "featurization_", None) or self._resolve_featurization()
        if is_torch_dataset(X):
            stored = getattr(X, "featurization", None)  # an on-disk store knows its settings
            if stored is not None and dict(stored) != dict(settings):
                raise ValueError(
                    f"the dataset was featurized with {dict(stored)}, but this estimator uses "
                    f"{dict(settings)}; pass them: Estimator(**store.featurization)"
                )
            return X
        items, _ = as_structures(X)
        if is_featurized(items):
            inputs = list(items.tolist() if hasattr(items, "iloc") else items)
            _check_featurized(inputs, settings)
        else:
            inputs = featurize(items, n_jobs=self.n_jobs, progress=self.verbose > 1, **settings)
        return SiteNetDataset(inputs, y)

    def get_split_datasets(self, X: Any, y: Any = None, **fit_params: Any):
        """Seeded random validation split of ``validation_fraction`` of the data.

        Parameters
        ----------
        X : sequence of Structure, featurized inputs, or a torch Dataset
            Training data.
        y : array-like or None, default=None
            Targets.
        **fit_params : dict
            Unused (skorch's signature).

        Returns
        -------
        dataset_train : Dataset
        dataset_valid : Dataset or None
            None when ``validation_fraction`` is 0 or None.
        """
        dataset = self.get_dataset(X, y)
        if not self.validation_fraction:
            return dataset, None
        n = len(dataset)
        n_valid = int(round(self.validation_fraction * n))
        n_valid = min(max(n_valid, self._min_crystals), n - self._min_crystals)
        if n_valid < self._min_crystals:
            raise ValueError(f"{n} structures are too few for a validation split")
        order = np.random.default_rng(self._seed()).permutation(n)
        return Subset(dataset, np.sort(order[n_valid:])), Subset(dataset, np.sort(order[:n_valid]))

    def get_iterator(self, dataset, training: bool = False) -> DataLoader:
        """DataLoader with pair-budget batches (shuffled and size-bucketed in training).

        Parameters
        ----------
        dataset : Dataset
            Items that :func:`~skdim.data.collate_sitenet` can batch.
        training : bool, default=False
            Shuffle the batches (with the estimator's seeded generator) and
            use the ``iterator_train__*`` options, else ``iterator_valid__*``.

        Returns
        -------
        torch.utils.data.DataLoader
            Batches are limited by ``batch_pairs`` (see
            :class:`~skdim.data.PairBudgetBatchSampler`); ``batch_size`` and
            ``shuffle`` options are ignored.
        """
        n_sites, n_neighbors = item_sizes(dataset)
        if training and getattr(self, "sampler_rng_", None) is None:
            self.sampler_rng_ = np.random.default_rng(self._seed())
        sampler = PairBudgetBatchSampler(
            n_sites,
            n_neighbors,
            self.batch_pairs,
            shuffle=training,
            min_crystals=self._min_crystals,
            random_state=self.sampler_rng_ if training else None,
        )
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        kwargs.pop("batch_size", None)
        kwargs.pop("shuffle", None)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_sitenet, **kwargs)

    # ------------------------------------------------------------- training
    def _seed(self) -> int:
        if getattr(self, "seed_", None) is None:
            self.seed_ = int(check_random_state(self.random_state).randint(2**31 - 1))
        return self.seed_

    def initialize(self):
        """Resolve ``device='auto'`` and build module, criterion, optimizer.

        Returns
        -------
        self
        """
        self.device_ = resolve_device(self.device)
        if self.precision not in _PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(_PRECISIONS)}, got {self.precision!r}"
            )
        with self._resolved_device():
            super().initialize()
        device_type = torch.device(self.device_).type if self.device_ else "cpu"
        self.grad_scaler_ = torch.amp.GradScaler(device_type, enabled=self.precision == "float16")
        return self

    @contextlib.contextmanager
    def _resolved_device(self):
        """Let skorch's own code, which reads ``self.device``, see ``device_``.

        Only ``device="auto"`` differs from its resolution; the parameter is
        put back on leaving, so ``get_params()`` never shows the change.
        """
        requested = self.device
        if not (isinstance(requested, str) and requested == "auto"):
            yield
            return
        self.device = resolve_device(requested)
        try:
            yield
        finally:
            self.device = requested

    def _build_module(self, settings: dict) -> torch.nn.Module:
        """``self.module`` sized for the featurization, with the fitted feature scaling.

        Parameters
        ----------
        settings : dict
            Module arguments besides the input widths; ``module__*`` options
            override them.

        Returns
        -------
        torch.nn.Module
            The module; its encoder standardizes inputs with
            ``feature_scaling_`` once that is fitted.
        """
        featurization = getattr(self, "featurization_", None) or self._resolve_featurization()
        kwargs = {
            "n_site_features": len(featurization["site_properties"]),
            "n_pair_features": len(featurization["pair_features"]),
            **settings,
            **self.get_params_for("module"),
        }
        module = self.initialized_instance(self.module, kwargs)
        scaling = getattr(self, "feature_scaling_", None)
        if scaling is not None:
            module.encoder.set_feature_scaling(**scaling)
        return module

    def _autocast(self):
        dtype = _PRECISIONS[self.precision]
        device = getattr(self, "device_", resolve_device(self.device))
        device_type = torch.device(device).type if device else "cpu"
        return torch.autocast(device_type, dtype=dtype, enabled=dtype is not None)

    def infer(self, x: Any, **fit_params: Any):
        """Forward pass under autocast when ``precision`` is bfloat16/float16.

        Parameters
        ----------
        x : dict of tensors
            A batch of :func:`~skdim.data.collate_sitenet`.
        **fit_params : dict
            Passed on to the module.

        Returns
        -------
        tensor or tuple of tensors
            The module's output.
        """
        with self._autocast():
            return super().infer(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        """Forward, loss and (loss-scaled, for float16) backward pass.

        Parameters
        ----------
        batch : tuple
            ``(inputs, targets)`` from the training iterator.
        **fit_params : dict
            Passed on to :meth:`infer`.

        Returns
        -------
        dict
            ``loss`` (a scalar tensor) and ``y_pred`` (the module's output).
        """
        self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self._check_finite_loss(loss)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _check_finite_loss(self, loss: torch.Tensor) -> None:
        """Stop training when the loss is NaN or infinite (diverged), naming the step.

        Raises
        ------
        FloatingPointError
            With the epoch and batch (1-based) and a hint to lower ``lr``.
        """
        if bool(torch.isfinite(loss.detach()).all()):
            return
        epoch = len(self.history)
        batch = len(self.history[-1]["batches"]) if epoch else 0
        hint = f"lower the learning rate (lr={self.lr:g})"
        if not self.gradient_clip:
            hint += " or set gradient_clip"
        raise FloatingPointError(
            f"training diverged: the training loss is {float(loss.detach()):g} at epoch "
            f"{epoch}, batch {batch}; {hint}"
        )

    def _check_finite_weights(self) -> None:
        for name, parameter in self.module_.named_parameters():
            if not bool(torch.isfinite(parameter.detach()).all()):
                raise FloatingPointError(
                    f"training diverged: parameter {name} holds NaN or infinite values "
                    f"after fit; lower the learning rate (lr={self.lr:g})"
                )

    def train_step(self, batch, **fit_params):
        """One optimizer step (no closure needed for AdamW), float16 loss scaling included.

        Gradients are unscaled before ``on_grad_computed``, where the
        ``gradient_clip`` callback (skorch's GradientNormClipping) clips them.

        Parameters
        ----------
        batch : tuple
            ``(inputs, targets)`` from the training iterator.
        **fit_params : dict
            Passed on to :meth:`train_step_single`.

        Returns
        -------
        dict
            ``loss`` and ``y_pred``, as :meth:`train_step_single` gives them.
        """
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            self.grad_scaler_.unscale_(optimizer)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        for optimizer in optimizers:
            self.grad_scaler_.step(optimizer)
        self.grad_scaler_.update()
        return step

    def get_default_callbacks(self):
        """Skorch defaults plus recorded losses, progress bar, early stopping, checkpoints.

        Returns
        -------
        list of (str, Callback)
        """
        callbacks = list(super().get_default_callbacks())
        for name in self._recorded:
            callbacks.append((name, PassthroughScoring(name=name, on_train=True)))
            if self.validation_fraction:
                callbacks.append((f"valid_{name}", PassthroughScoring(name=f"valid_{name}")))
        callbacks.append(("threads", ThreadPolicy()))
        if self.gradient_clip:
            clipping = GradientNormClipping(gradient_clip_value=self.gradient_clip)
            callbacks.append(("gradient_clip", clipping))
        schedule = self._lr_schedule_callback()
        if schedule is not None:
            callbacks.append(("lr_schedule", schedule))
        if self.verbose > 1:
            callbacks.append(("progress_bar", ProgressBar()))
        if self.early_stopping:
            if not self.validation_fraction:
                raise ValueError("early_stopping needs a validation_fraction > 0")
            callbacks.append(
                ("early_stopping", EarlyStopping(patience=self.early_stopping, load_best=True))
            )
        checkpoint = self._checkpoint()
        if checkpoint is not None:
            callbacks.append(("checkpoint", checkpoint))
            callbacks.append(("random_state", RandomStateCheckpoint(checkpoint.dirname)))
        return callbacks

    def _lr_schedule_callback(self):
        """The learning-rate schedule named by ``lr_schedule`` (None: constant).

        Checked in :meth:`fit`; here (also reached from ``set_params``) an
        unknown name gives no schedule rather than an error.
        """
        if self.lr_schedule == "cosine" and "cosine" in self._schedules:
            return CosineSchedule()
        if self.lr_schedule == "plateau" and "plateau" in self._schedules:
            return PlateauSchedule(patience=self.plateau_patience)
        return None

    def _validate_params(self) -> None:
        """Check every constructor parameter against ``_parameter_constraints``.

        Called at the start of :meth:`fit`, so that a bad value fails before
        featurization and training, never in ``__init__`` or ``set_params``
        (scikit-learn's convention). Parameters without a constraint (skorch's
        own, ``module__*`` ...) are not checked here.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ValueError (and TypeError) naming the parameter and its value.
        """
        validate_parameter_constraints(
            self._parameter_constraints,
            self.get_params(deep=False),
            caller_name=type(self).__name__,
        )

    def _planned_epochs(self, dataset) -> int:
        """Epochs of this fit: ``max_epochs`` if set, else ``max_steps`` in whole epochs.

        Also sets ``steps_per_epoch_`` and ``total_steps_`` (what the cosine
        schedule decays over).
        """
        train, _ = self.get_split_datasets(dataset)
        n_sites, n_neighbors = item_sizes(train)
        sampler = PairBudgetBatchSampler(
            n_sites,
            n_neighbors,
            self.batch_pairs,
            shuffle=True,
            min_crystals=self._min_crystals,
            random_state=self._seed(),
        )
        self.steps_per_epoch_ = len(sampler)
        epochs = self.max_epochs
        if epochs is None:
            steps = getattr(self, "max_steps", "auto")
            steps = auto_steps(len(train)) if steps == "auto" else int(steps)
            epochs = max(1, int(round(steps / self.steps_per_epoch_)))
        self.total_steps_ = epochs * self.steps_per_epoch_
        return epochs

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's training loop, for the planned number of epochs by default.

        Parameters
        ----------
        X : Dataset
            Training data.
        y : None
            Targets are part of the dataset.
        epochs : int or None, default=None
            Epochs to run; None runs ``n_epochs_`` (see :meth:`fit`).
        **fit_params : dict
            Passed on to the module.

        Returns
        -------
        self
        """
        if epochs is None:
            epochs = getattr(self, "n_epochs_", None) or self.max_epochs
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def _record(self, values: dict[str, torch.Tensor], training: bool) -> None:
        prefix = "" if training else "valid_"
        for name in self._recorded:
            self.history.record_batch(prefix + name, float(values[name]))

    def _checkpoint(self) -> Checkpoint | None:
        if self.checkpoint_dir is None:
            return None
        return Checkpoint(
            monitor=None,  # every epoch
            f_params="params.pt",
            f_optimizer="optimizer.pt",
            f_criterion=None,
            f_history="history.json",
            f_pickle=None,
            dirname=str(self.checkpoint_dir),
        )

    def _prepare_fit(self, dataset: SiteNetDataset) -> None:
        """Fitted state needed before the module is built (overridden by subclasses)."""
        if hasattr(dataset, "feature_scaling"):  # datasets that stream from disk
            self.feature_scaling_ = dataset.feature_scaling()
        else:
            self.feature_scaling_ = feature_scaling(dataset.inputs)

    def fit(self, X: Any, y: Any = None, **fit_params: Any):
        """Featurize X, then train; resumes from ``checkpoint_dir`` if it holds a run.

        Parameters
        ----------
        X : sequence of Structure, single-column DataFrame, or featurized inputs
            Training structures: a list, tuple, array or Series of pymatgen
            Structures, or what :func:`skdim.featurize.featurize` returns.
        y : array-like, optional
            Targets (ignored by DIMPretrainer).
        **fit_params : dict
            Passed on to the module's forward pass (skorch's convention).

        Returns
        -------
        self
        """
        self._validate_params()
        self.seed_ = None
        self.sampler_rng_ = None
        self.featurization_ = self._resolve_featurization()
        dataset = self._fit_dataset(X, y)
        self._warn_oversized(dataset)
        self._prepare_fit(dataset)
        self.n_epochs_ = self._planned_epochs(dataset)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices), thread_policy():
            torch.manual_seed(self._seed())
            checkpoint = self._checkpoint()
            resumable = (
                checkpoint is not None
                and Path(checkpoint.dirname, "history.json").exists()
                and not self.warm_start
            )
            if checkpoint is not None:
                current = fingerprint(self, dataset)
                if not resumable:  # a new run: forget whatever the directory held
                    Path(checkpoint.dirname, "fingerprint.json").unlink(missing_ok=True)
                check_fingerprint(checkpoint.dirname, current)
            if resumable:
                self._resume(dataset, checkpoint, **fit_params)
            else:  # skorch's fit, with the starting weights set after initialize
                if not self.warm_start or not self.initialized_:
                    self.initialize()
                    self._initial_weights()
                with self._resolved_device():
                    self.partial_fit(dataset, None, **fit_params)
        self._check_finite_weights()
        return self

    def _warn_oversized(self, dataset) -> None:
        """Warn once when a crystal alone has more pairs (P x J) than ``batch_pairs``.

        Such a crystal gets a batch of its own, larger than the memory budget.
        """
        n_sites, n_neighbors = item_sizes(dataset)
        pairs = n_sites * n_neighbors
        largest = int(pairs.argmax())
        if pairs[largest] > self.batch_pairs:
            n_over = int((pairs > self.batch_pairs).sum())
            warnings.warn(
                f"{n_over} structure(s) exceed batch_pairs={self.batch_pairs} on their own "
                f"and get a batch of their own, over the memory budget: the largest is "
                f"X[{largest}] with {int(pairs[largest])} pairs "
                f"({int(n_sites[largest])} sites x {int(n_neighbors[largest])} neighbors); "
                "raise batch_pairs, lower max_atoms or drop the structure",
                stacklevel=3,
            )

    def _fit_dataset(self, X: Any, y: Any) -> SiteNetDataset:
        return self.get_dataset(X, y)

    def _resume(self, dataset, checkpoint: Checkpoint, **fit_params: Any) -> None:
        self.initialize()
        self.load_params(checkpoint=checkpoint)
        restore_random_state(self, checkpoint.dirname)
        done = len(self.history)
        if self.verbose:
            print(f"resuming from {checkpoint.dirname} after {done} of {self.n_epochs_} epochs")
        stopped = len(self.history) and self.history[-1].get("stopped", False)
        if done < self.n_epochs_ and not stopped:
            with self._resolved_device():
                self.partial_fit(dataset, None, epochs=self.n_epochs_ - done, **fit_params)

    def _initial_weights(self) -> None:
        """Set the starting weights of a new fit (a pretrained encoder; none here)."""

    def load_params(self, *args: Any, **kwargs: Any) -> None:
        """Load weights, optimizer and history as skorch does, also from older checkpoints.

        An ``optimizer.pt`` written before the last attention block lost its
        unused bond normalization is renumbered onto today's parameters (see
        :func:`skdim._checkpoint.upgrade_optimizer_state`); the weights
        themselves load through :class:`~skdim.nn.SiteAttention`.

        Parameters
        ----------
        *args, **kwargs
            As in :meth:`skorch.NeuralNet.load_params`.
        """
        if kwargs.get("checkpoint") is not None and not self.initialized_:
            self.initialize()
        handles = []
        for name in self._optimizers if self.initialized_ else ():
            optimizer = getattr(self, name + "_", None)
            optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
            if isinstance(optimizer, torch.optim.Optimizer):
                module = self.module_

                def hook(optimizer, state, module=module):
                    return upgrade_optimizer_state(optimizer, state, module)

                handles.append(optimizer.register_load_state_dict_pre_hook(hook))
        try:
            with self._resolved_device():
                super().load_params(*args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    def _fitted_state(self) -> dict:
        """JSON-safe fitted settings saved next to the weights."""
        return {"featurization": self.featurization_, "encoder": self.module_.encoder.config}

    def _restore_fitted(self, state: dict) -> None:
        self.featurization_ = dict(state["featurization"])

    def save(self, path) -> None:
        """Save weights (``weights.pt``) and settings (``config.json``) to a directory.

        Parameters
        ----------
        path : str or Path
            The directory (created if needed).
        """
        save_estimator(self, path)

    @classmethod
    def load(cls: type[_Estimator], path, device: str | None = None) -> _Estimator:
        """Load a model written by :meth:`save` (weights load strictly).

        Parameters
        ----------
        path : str or Path
            The directory written by :meth:`save`.
        device : str or None, default=None
            Device to load onto; None uses the saved device, or the CPU when
            the saved device is a GPU and none is available.

        Returns
        -------
        estimator
            The fitted estimator, of this class, ready to use.
        """
        return load_estimator(path, device=device, expected=cls)

    # ------------------------------------------------------------ inference
    def _forward_sorted(self, X: Any, forward) -> np.ndarray:
        """Apply ``forward(batch_dict) -> tensor`` to X in size-sorted batches.

        Sorting by size keeps padding small; rows are returned in input order.
        """
        self.check_is_fitted(list(self._fitted_attributes))
        dataset = self.get_dataset(X)
        n_sites, n_neighbors = item_sizes(dataset)
        order = np.lexsort((n_sites, n_neighbors))
        sampler = PairBudgetBatchSampler(n_sites[order], n_neighbors[order], self.batch_pairs)
        batches = [order[b].tolist() for b in sampler]
        loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate_sitenet)
        self.module_.eval()
        outputs = []
        with torch.no_grad(), self._autocast(), thread_policy():
            for batch, _ in loader:
                outputs.append(forward(to_device(batch, self.device_)).float().cpu())
        result = torch.empty((len(dataset), *outputs[0].shape[1:]))
        result[torch.as_tensor(np.concatenate(batches))] = torch.cat(outputs)
        return result.numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.non_deterministic = str(resolve_device(self.device)) != "cpu"
        return tags


def _check_featurized(inputs: list, settings: dict) -> None:
    """Refuse featurized inputs that another featurization produced.

    SiteNetInput does not record its settings: this checks the feature widths
    and what the supercell size reveals. A supercell of several images holds
    at most ``max_atoms`` atoms, so one with more was built with a larger
    ``max_atoms`` (a smaller one cannot be told from the input alone), and
    ``supercell="primitive"`` never has more than one image.
    """
    n_site, n_pair = len(settings["site_properties"]), len(settings["pair_features"])
    max_atoms, supercell = settings["max_atoms"], settings["supercell"]
    for index, x in enumerate(inputs):
        if x.site_features.shape[1] != n_site or x.pair_features.shape[-1] != n_pair:
            raise ValueError(
                f"featurized X[{index}] has {x.site_features.shape[1]} site features and "
                f"{x.pair_features.shape[-1]} pair channels; this estimator expects "
                f"{n_site} and {n_pair} (site_properties, pair_features)"
            )
        if x.n_images > 1 and (supercell == "primitive" or x.n_neighbors > max_atoms):
            raise ValueError(
                f"featurized X[{index}] has a supercell of {x.n_images} cells and "
                f"{x.n_neighbors} atoms, which this estimator's featurization "
                f"(max_atoms={max_atoms}, supercell={supercell!r}) never builds: it was "
                "featurized with other settings; featurize with the estimator's "
                "max_atoms and supercell"
            )
