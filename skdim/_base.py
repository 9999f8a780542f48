"""What every skdim estimator adds to skorch.

Structures in, pair-budget batches, seeding, mixed precision, gradient
clipping, checkpoint/resume and size-sorted inference.

Only skorch's documented hooks are overridden (``get_dataset``,
``get_split_datasets``, ``get_iterator`` in :mod:`skdim._data_hooks`;
``infer``, ``train_step``, ``train_step_single``, ``initialize``,
``get_default_callbacks`` here); ``fit`` wraps skorch's to featurize once, seed
the run and resume from a checkpoint. Parameter constraints are in
:mod:`skdim._params`, inference in :mod:`skdim._inference`.
"""

from __future__ import annotations

import contextlib
from typing import Any, TypeVar

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions, validate_parameter_constraints
from skorch.callbacks import (
    Checkpoint,
    EarlyStopping,
    GradientNormClipping,
    PassthroughScoring,
)
from skorch.utils import TeeGenerator

from skdim._checkpoint import (
    RandomStateCheckpoint,
    check_torch_files,
    checkpoint_run,
    make_checkpoint,
    restore_random_state,
    upgrade_optimizer_state,
)
from skdim._data_hooks import DataHooksMixin
from skdim._inference import forward_sorted
from skdim._params import PRECISIONS, SHARED_CONSTRAINTS, resolve_device
from skdim._progress import EpochTable, progress_callbacks
from skdim._schedule import CosineSchedule, PlateauSchedule
from skdim._threads import ThreadPolicy, thread_policy
from skdim.data import (
    SiteNetDataset,
    feature_scaling,
)
from skdim.persistence import load_estimator, save_estimator

_Estimator = TypeVar("_Estimator", bound="SiteNetMixin")


class SiteNetMixin(DataHooksMixin):
    """skorch hooks shared by DIMPretrainer, SiteNetRegressor and SiteNetClassifier."""

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
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}"
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
        dtype = PRECISIONS[self.precision]
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
        callbacks = [  # the epoch table coloured only on a terminal
            (name, EpochTable() if name == "print_log" else callback)
            for name, callback in super().get_default_callbacks()
        ]
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
        callbacks += progress_callbacks(self.verbose)  # progress lines, a bar (verbose=3)
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
        self.loop_epochs_ = (len(self.history), epochs)  # what the progress lines count to
        return super().fit_loop(X, y, epochs=epochs, **fit_params)

    def _record(self, values: dict[str, torch.Tensor], training: bool) -> None:
        prefix = "" if training else "valid_"
        for name in self._recorded:
            self.history.record_batch(prefix + name, float(values[name]))

    def _checkpoint(self) -> Checkpoint | None:
        return None if self.checkpoint_dir is None else make_checkpoint(self.checkpoint_dir)

    def _writes_checkpoints(self) -> bool:
        """Whether this process owns ``checkpoint_dir`` (in a distributed run, the main one)."""
        return True

    def _prepare_fit(self, dataset: SiteNetDataset) -> None:
        """Fitted state needed before the module is built (overridden by subclasses)."""
        if hasattr(dataset, "feature_scaling"):  # datasets that stream from disk
            self.feature_scaling_ = dataset.feature_scaling()
        else:
            self.feature_scaling_ = feature_scaling(dataset.inputs)

    def fit(self, X: Any, y: Any = None, **fit_params: Any):
        """Featurize X, then train; resumes from ``checkpoint_dir`` if it holds a run.

        Ctrl-C stops training and raises KeyboardInterrupt (skorch alone would
        return the partly trained model); ``checkpoint_dir`` keeps every whole
        epoch for the same fit to resume, and is used by one fit at a time.

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
        if "sample_weight" in fit_params:  # skorch would pass it on to the module
            raise TypeError(f"{type(self).__name__}.fit does not support sample_weight")
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
            dirname = None if checkpoint is None else checkpoint.dirname
            with checkpoint_run(self, dataset, dirname) as resumable:  # lock, Ctrl-C
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
        check_torch_files(self, kwargs)  # errors name the file, never quote torch's advice
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
        """Apply ``forward(batch_dict) -> tensor`` to X in size-sorted batches (input order)."""
        return forward_sorted(self, X, forward)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.non_deterministic = str(resolve_device(self.device)) != "cpu"
        return tags
