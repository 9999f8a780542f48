"""Data-parallel DIM pretraining on several GPUs or machines with Hugging Face accelerate.

:class:`DistributedDIMPretrainer` is :class:`~skdim.DIMPretrainer` with
skorch's :class:`~skorch.hf.AccelerateMixin`: the same estimator runs in one
process, or in one process per device when started by ``accelerate launch``
or ``torchrun``. accelerate wraps the module in DistributedDataParallel (so
gradients are all-reduced) and shards the pair-budget batches: every rank
builds the same shuffled batch list from the shared seed and takes every
``world_size``-th batch.

Negatives stay on their rank: each rank draws the DIM derangement (and the
engineered negatives) within its own batch; embeddings are not gathered
across ranks. One optimizer step therefore equals single-process training
that accumulates the gradients of ``world_size`` batches of ``batch_pairs``
(tests/test_distributed.py checks it; docs/scaling.rst explains the choice).

Install with ``pip install "skdim-sitenet[distributed]"``.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator

from skdim.nn import DIMLoss, SiteNetDIM
from skdim.pretrainer import DIMPretrainer

if TYPE_CHECKING:
    from accelerate import Accelerator

__all__ = ["DistributedDIMPretrainer", "make_accelerator"]

_MIXED_PRECISION = {"float32": None, "bfloat16": "bf16", "float16": "fp16"}  # None: launcher's


class DistributedDIMPretrainer(AccelerateMixin, DIMPretrainer):
    """DIMPretrainer trained data-parallel with Hugging Face accelerate.

    Takes every :class:`~skdim.DIMPretrainer` parameter (``batch_pairs`` is
    the budget of each rank's batch, so one optimizer step sees
    ``world_size * batch_pairs`` pairs), plus:

    Parameters
    ----------
    module : type, default=SiteNetDIM
        As in DIMPretrainer.
    criterion : type, default=DIMLoss
        As in DIMPretrainer.
    accelerator : accelerate.Accelerator or None, default=None
        None creates one with :func:`make_accelerator` when the net is fitted
        (kept in ``accelerator_``; the parameter stays None), its mixed precision taken from
        ``precision``; "float32" leaves it to the launcher (``accelerate
        launch --mixed_precision bf16``). For other settings pass
        ``make_accelerator(gradient_accumulation_steps=4, ...)``; its mixed
        precision must then agree with ``precision`` unless that is "float32".
    device : None, default=None
        accelerate places the model and the batches.
    unwrap_after_train : bool, default=True
        Return the plain module (not DDP-wrapped) after ``fit``.
    **kwargs
        DIMPretrainer and skorch parameters.

    Notes
    -----
    Only the main process prints and writes checkpoints; each epoch's batch
    records of all ranks are merged, so every rank sees the same epoch losses
    (and early stopping stops all ranks together). Each rank computes the
    validation loss of its own share of the validation batches (outputs are
    not gathered: DIM scores of different batches cannot be concatenated).
    The seed (from ``random_state``, or drawn on rank 0 when it is None) is
    broadcast, so all ranks build the same validation split and batch list;
    random draws in the model (noise, negatives) are seeded per rank. Nets using
    accelerate cannot be pickled: :meth:`to_pretrainer` returns a plain
    :class:`~skdim.DIMPretrainer` with the trained weights, and :meth:`save`
    writes that, so the saved model loads with ``DIMPretrainer.load`` and
    ``SiteNetRegressor(pretrained=path)`` anywhere, without accelerate.

    Examples
    --------
    The estimator is built like any other (the accelerator is created when it
    is fitted):

    >>> from skdim.distributed import DistributedDIMPretrainer
    >>> model = DistributedDIMPretrainer(max_epochs=20, batch_pairs=16384, random_state=0)
    >>> model.accelerator is None, model.device is None
    (True, True)

    In a script ``train.py`` started with ``torchrun --nproc_per_node 4
    train.py`` (or ``accelerate launch``), train on a featurized store:

    >>> from skdim.store import FeaturizedStore
    >>> store = FeaturizedStore("mp_gap_store")  # doctest: +SKIP
    >>> model = DistributedDIMPretrainer(**store.featurization, max_epochs=20)  # doctest: +SKIP
    >>> model.fit(store).save("dim_model")  # doctest: +SKIP
    """

    def __init__(
        self,
        module=SiteNetDIM,
        criterion=DIMLoss,
        *,
        accelerator=None,
        device=None,
        unwrap_after_train: bool = True,
        **kwargs: Any,
    ):
        super().__init__(
            module,
            criterion,
            accelerator=accelerator,
            device=device,
            unwrap_after_train=unwrap_after_train,
            **kwargs,
        )

    # ------------------------------------------------------------ set-up
    @property
    def accelerator(self) -> Accelerator | None:
        """The accelerator in use: the parameter, else the one created at fit (``accelerator_``).

        skorch's AccelerateMixin reads ``self.accelerator``; the parameter
        itself stays as given (``get_params`` returns it), so that cloning the
        estimator or checking its settings never sees the created one.
        """
        given = self.__dict__.get("_accelerator")
        return given if given is not None else self.__dict__.get("accelerator_")

    @accelerator.setter
    def accelerator(self, value: Accelerator | None) -> None:
        self.__dict__["_accelerator"] = value

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters as given (``accelerator`` None unless one was passed).

        Parameters
        ----------
        deep : bool, default=True
            As in scikit-learn.

        Returns
        -------
        dict
        """
        params = super().get_params(deep=deep)
        params["accelerator"] = self.__dict__.get("_accelerator")
        return params

    def _ensure_accelerator(self) -> Accelerator:
        """The accelerator; one from :func:`make_accelerator` if none was given."""
        if self.precision not in _MIXED_PRECISION:
            raise ValueError(f"precision must be one of {list(_MIXED_PRECISION)}")
        wanted = _MIXED_PRECISION[self.precision]
        if self.accelerator is None:
            self.accelerator_ = make_accelerator(mixed_precision=wanted)
        if wanted is not None and self.accelerator.mixed_precision != wanted:
            raise ValueError(
                f"precision={self.precision!r} but the accelerator's mixed precision is "
                f"{self.accelerator.mixed_precision!r}; set it on the Accelerator"
            )
        return self.accelerator

    def _validate_params(self) -> None:
        # AccelerateMixin's check reads the accelerator: create it first
        self._ensure_accelerator()
        super()._validate_params()

    def _seed(self) -> int:
        """The run's seed, the same on every rank (rank 0's when random_state is None)."""
        if getattr(self, "seed_", None) is None:
            accelerator = self._ensure_accelerator()
            seed = super()._seed()
            if accelerator.num_processes > 1:
                from accelerate.utils import broadcast_object_list

                seed = broadcast_object_list([seed], from_process=0)[0]
            self.seed_ = seed
        return self.seed_

    def _writes_checkpoints(self) -> bool:
        # only the main process checks and writes the checkpoint's fingerprint:
        # two ranks writing the same file let one read the other's half-written one
        return self._ensure_accelerator().is_main_process

    def initialize(self):
        """Create the accelerator if needed, build and prepare the net, seed this rank.

        Returns
        -------
        self
        """
        self._ensure_accelerator()
        super().initialize()
        self.device_ = self.accelerator.device  # where inference moves its batches
        rank = self.accelerator.process_index
        torch.manual_seed(int(np.random.SeedSequence([self._seed(), rank]).generate_state(1)[0]))
        return self

    def _initialize_accelerator(self):
        """As AccelerateMixin's, but a criterion without parameters stays unprepared.

        On CPUs accelerate wraps every prepared module in DistributedDataParallel,
        which refuses modules without parameters (DIMLoss has none).
        """
        criteria = self._criteria
        self._criteria = [n for n in criteria if list(getattr(self, n + "_").parameters())]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def _initialize_callbacks(self):
        # skorch's "auto" sink is accelerator.print, and PrintLog ignores verbose
        # for any sink other than print: use print on the main process, else nothing
        super()._initialize_callbacks()
        if self.callbacks__print_log__sink == "auto" and self.accelerator is not None:
            main = self.accelerator.is_main_process
            for name, callback in self.callbacks_:
                if name == "print_log":
                    callback.sink = print if main else _silent
        return self

    def get_default_callbacks(self):
        """DIMPretrainer's callbacks; progress bars on the main process only.

        Gradients are clipped in :meth:`train_step` (by the accelerator, on
        the steps that synchronize them), not by a callback.

        Returns
        -------
        list of (str, Callback)
        """
        callbacks = super().get_default_callbacks()
        callbacks = [(n, cb) for n, cb in callbacks if n != "gradient_clip"]  # train_step clips
        if self.accelerator is not None and not self.accelerator.is_main_process:
            callbacks = [(n, cb) for n, cb in callbacks if n not in ("progress", "progress_bar")]
        return callbacks

    # ---------------------------------------------------------- training
    def train_step(self, batch, **fit_params):
        """Forward, backward, clipping and step under ``accelerator.accumulate``.

        accelerate all-reduces the gradients (DDP), scales float16 losses and
        skips the optimizer step and gradient reset on accumulation steps.

        Parameters
        ----------
        batch : tuple of (dict of tensors, tensor)
            This rank's batch.
        **fit_params : dict
            Passed to the forward pass.

        Returns
        -------
        dict
            ``loss`` and ``y_pred`` of the batch.
        """
        with self.accelerator.accumulate(self.module_):
            step = self.train_step_single(batch, **fit_params)
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
                training=True,
            )
            if self.gradient_clip and self.accelerator.sync_gradients:
                parameters = [p for _, p in self.get_all_learnable_params()]
                self.accelerator.clip_grad_norm_(parameters, self.gradient_clip)
            for name in self._optimizers:
                getattr(self, name + "_").step()
            self._zero_grad_optimizer()
        return step

    def evaluation_step(self, batch, training=False):
        """Forward pass on this rank's validation batch, not gathered across ranks.

        AccelerateMixin gathers outputs for metrics; DIM scores of batches of
        different shapes cannot be concatenated, and the loss is averaged over
        the batches of all ranks in :meth:`on_epoch_end` instead.

        Parameters
        ----------
        batch : tuple of (dict of tensors, tensor)
            This rank's batch.
        training : bool, default=False
            Forward in training mode.

        Returns
        -------
        tuple
            The module's output (embeddings, DIM scores).
        """
        return DIMPretrainer.evaluation_step(self, batch, training=training)

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Merge this epoch's batch records of all ranks (before the scoring callbacks).

        Parameters
        ----------
        net : DistributedDIMPretrainer
            This estimator (skorch's callback signature).
        dataset_train, dataset_valid : Dataset or None, default=None
            The epoch's datasets.
        **kwargs : dict
            Other callback arguments.
        """
        super().on_epoch_end(net, dataset_train, dataset_valid, **kwargs)
        if self.accelerator.num_processes > 1:
            epoch = list.__getitem__(self.history_, -1)
            gathered = [None] * self.accelerator.num_processes
            torch.distributed.all_gather_object(gathered, epoch["batches"])
            epoch["batches"] = [record for rank in gathered for record in rank]

    # --------------------------------------------------------- inference
    def _autocast(self):
        if self.accelerator is None:
            return contextlib.nullcontext()
        return self.accelerator.autocast()

    # ------------------------------------------------------- persistence
    def to_pretrainer(self) -> DIMPretrainer:
        """A plain single-process DIMPretrainer (on CPU) with the trained weights.

        Returns
        -------
        DIMPretrainer
            Fitted, picklable, without accelerate.
        """
        self.check_is_fitted()
        drop = {"accelerator", "unwrap_after_train", "callbacks__print_log__sink", "device"}
        params = {
            k: v
            for k, v in self.get_params(deep=False).items()
            if k not in drop and not k.startswith("_")
        }
        plain = DIMPretrainer(**params, device="cpu")
        plain._restore_fitted(self._fitted_state())
        plain.initialize()
        module = self.accelerator.unwrap_model(self.module_) if self.accelerator else self.module_
        plain.module_.load_state_dict({k: v.cpu() for k, v in module.state_dict().items()})
        plain.history_ = self.history_
        return plain

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_pretrainer` to ``path`` (on the main process only).

        Parameters
        ----------
        path : path-like
            Output directory (see :meth:`DIMPretrainer.save`); every rank must
            call this method.
        """
        if self.accelerator is None or self.accelerator.is_main_process:
            self.to_pretrainer().save(path)
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()


def _silent(*args: Any, **kwargs: Any) -> None:
    """Print sink of the ranks other than the main one."""


def make_accelerator(**kwargs: Any) -> Accelerator:
    """``accelerate.Accelerator`` with the settings DIM pretraining needs.

    ``cpu=True`` on machines without a GPU (else accelerate does not detect a
    multi-CPU run under torchrun). Every parameter of SiteNetDIM gets a
    gradient, so DDP runs without ``find_unused_parameters`` (for a module of
    your own that needs it, pass ``kwargs_handlers=[DistributedDataParallelKwargs(
    find_unused_parameters=True)]``).

    Parameters
    ----------
    **kwargs : dict
        ``Accelerator`` arguments, e.g. ``gradient_accumulation_steps=4`` or
        ``mixed_precision="bf16"``; they override the default.

    Returns
    -------
    accelerate.Accelerator

    Examples
    --------
    >>> from skdim.distributed import DistributedDIMPretrainer, make_accelerator
    >>> accelerator = make_accelerator(gradient_accumulation_steps=4)  # doctest: +SKIP
    >>> model = DistributedDIMPretrainer(accelerator=accelerator)  # doctest: +SKIP
    """
    from accelerate import Accelerator

    kwargs.setdefault("cpu", not torch.cuda.is_available())
    return Accelerator(**kwargs)
