"""SiteNetRegressor: Site-Net property regression, from scratch or fine-tuned."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.base import MultiOutputMixin
from sklearn.utils._param_validation import Interval, StrOptions
from skorch import NeuralNetRegressor

from skdim._inputs import row_labels
from skdim._supervised import SupervisedMixin
from skdim.nn import SiteNet, ensemble_members
from skdim.nn.losses import REGRESSION_LOSSES as _LOSSES


class SiteNetRegressor(MultiOutputMixin, SupervisedMixin, NeuralNetRegressor):
    """Predict crystal properties with Site-Net, optionally from pretrained DIM weights.

    Parameters
    ----------
    module : type, default=SiteNet
        The torch module class (options through ``module__*``).
    criterion : type or None, default=None
        Loss class; None picks it from ``loss``.
    pretrained : str, Path, fitted estimator, FrozenEstimator or None, default=None
        Initialize the encoder from this model: a fitted estimator, a
        directory written by its ``save``, or the name of a shipped encoder
        (:func:`skdim.list_pretrained`). Two kinds of model can be the source:
        a :class:`DIMPretrainer` (self-supervised pretraining) or a fitted
        ``SiteNetRegressor`` (or ``SiteNetClassifier``) of *another
        property*, the original Site-Net paper's **supervised transfer**.
        Either way only the encoder is taken over: its weights, its input
        scaling (the source's feature means and standard deviations), its
        architecture and its featurization, so ``preset`` and the
        featurization parameters are ignored. The head is new: built from
        this estimator's ``head_hidden`` and ``output`` with random weights,
        trained with its ``loss`` on targets standardized on this fit's
        labels; the source's head and target scaling are dropped. Then the
        whole network is trained (only the head with ``freeze_encoder``) for
        the usual budget (``max_steps``). From an ensemble
        (``n_estimators > 1``) the first member's encoder is used. The weights
        load strictly: a mismatch raises an error. ``sklearn.clone``
        (cross-validation, grid search) returns an *unfitted* copy of an
        estimator parameter, so pass a fitted model as
        ``FrozenEstimator(model)`` or as a saved path.
    freeze_encoder : bool, default=False
        Train only the head (a linear probe when ``head_hidden=()``). For a
        lower encoder learning rate instead, use
        ``optimizer__param_groups=[("encoder.*", {"lr": 1e-4})]``.
    preset : {"dim", "paper"}, default="dim"
        Encoder architecture when training from scratch ("paper" is the full
        supervised Site-Net, "dim" the compact DIM encoder).
    head_hidden : tuple of int, default=(64,)
        Hidden widths of the regression head.
    output : {"identity", "softplus", "trelu"}, default="identity"
        Output nonlinearity; "softplus" and "trelu" (transparent ReLU) give
        non-negative predictions, e.g. for band gaps.
    loss : {"mae", "mse", "huber"}, default="mae"
        Training loss, on standardized targets.
    standardize_targets : bool, default=True
        Fit the head on (y - mean) / std (std only for non-negative outputs);
        predictions are returned in the original units.
    n_estimators : int, default=1
        Networks trained side by side in one fit (a deep ensemble): each
        starts from its own seed (derived from ``random_state``; each
        fine-tunes the same ``pretrained`` encoder), all see the same
        batches, and :meth:`predict` returns their mean, with
        ``return_std=True`` also their standard deviation (an error bar,
        about 2.5x too narrow at 250 labels: see the user guide, "Error
        bars"). Fit time and the memory of the training activations grow
        about n_estimators-fold; with 1 the model is exactly the single
        network.
    max_atoms, supercell, site_properties, pair_features, max_sites : default=None
        Featurization (see :class:`DIMPretrainer`); None means the pretrained
        model's setting, else 50, "cubic", the 8 Magpie properties,
        ("distance",) and 500.
    optimizer : type, default=torch.optim.AdamW
    lr : float, default=1e-3
        Peak learning rate.
    max_steps : int or "auto", default="auto"
        Training budget in optimizer steps, rounded to whole epochs. "auto"
        grows with the number of training structures n
        (:func:`skdim._schedule.auto_steps`: 6 n, between 500 and 4,000), a
        rule chosen on a development split (user guide, "Training recipe").
    max_epochs : int or None, default=None
        Training budget in epochs instead of steps (overrides ``max_steps``).
    lr_schedule : {"cosine", "constant"}, default="cosine"
        "cosine": linear warm-up over the first 5 % of the steps, then cosine
        decay to 1 % of ``lr`` at the last step.
    batch_pairs : int, default=32768
        Budget of padded pairs per batch.
    validation_fraction : float or None, default=None
        Held-out fraction for ``valid_loss`` (and early stopping).
    early_stopping : int or None, default=None
        Patience (epochs) on ``valid_loss``; restores the best weights.
    checkpoint_dir : str or None, default=None
        Per-epoch checkpoints; a later fit resumes from them.
    device : str, default="cpu"
        "cpu", "cuda" or "auto".
    precision : {"float32", "bfloat16", "float16"}, default="float32"
    gradient_clip : float or None, default=1.0
    random_state : int, RandomState or None, default=None
    n_jobs : int, default=1
        Processes for featurization.
    verbose : int, default=1
        What fitting prints. 0: nothing. 1: featurization progress and a
        line about every tenth of the training run, each with the optimizer
        steps done / total, the training (and validation) loss, the time
        elapsed and the time left. 2: adds the epoch table, a row per epoch.
        3: adds a bar over each epoch's batches, on a terminal only. Written
        to a file or a pipe, the output is whole lines (no carriage returns,
        bars or colours).
    callbacks : list or None, default=None
    **kwargs
        Other skorch parameters.

    Attributes
    ----------
    module_ : SiteNet or SiteNetEnsemble
        The network; a :class:`~skdim.nn.SiteNetEnsemble` of SiteNets when
        ``n_estimators > 1``.
    n_outputs_ : int
    featurization_ : dict

    See Also
    --------
    DIMPretrainer : Self-supervised pretraining of the encoder.
    SiteNetClassifier : The same model for class labels.

    References
    ----------
    .. [1] M. Moran et al., "Site-Net: using global self-attention and
       real-space supercells to capture long-range interactions in crystal
       structures", Digital Discovery 2, 1297 (2023), doi:10.1039/D3DD00005B.
    .. [2] M. Moran et al., "Establishing Deep InfoMax as an effective
       self-supervised learning methodology in materials informatics",
       Digital Discovery (2025), doi:10.1039/D4DD00202D.

    Examples
    --------
    >>> from skdim import SiteNetRegressor
    >>> from skdim.datasets import get_data_home, load_structures_csv
    >>> X, labels = load_structures_csv(get_data_home() / "mp100.csv.gz")
    >>> y = labels["e_form_per_atom"]  # eV/atom
    >>> model = SiteNetRegressor(max_epochs=50, random_state=0, verbose=0)
    >>> model.fit(X[:80], y[:80]).predict(X[80:]).shape  # doctest: +SKIP
    (20,)

    Fine-tuning from a pretrained encoder (a fitted :class:`DIMPretrainer` or
    the directory it was saved to) only adds ``pretrained``; the architecture
    and featurization then come from the pretrained model:

    >>> model = SiteNetRegressor(pretrained="dim_model", max_epochs=50)
    >>> model.fit(X[:80], y[:80])  # doctest: +SKIP

    Supervised transfer: fine-tune a band-gap model from a Site-Net trained on
    formation energies (in the label-masking benchmark, started from a
    formation-energy model of 20,000 structures, it had the lowest band-gap
    error with 1,000 labels; user guide, "Choosing a model"):

    >>> source = SiteNetRegressor(random_state=0, verbose=0)
    >>> source.fit(X, labels["e_form_per_atom"]).save("eform_model")  # doctest: +SKIP
    >>> gap = SiteNetRegressor(pretrained="eform_model", output="trelu", random_state=0)
    >>> gap.fit(X[:80], labels["band_gap"][:80])  # doctest: +SKIP

    Error bars from an ensemble of 5 networks:

    >>> model = SiteNetRegressor(n_estimators=5, random_state=0, verbose=0)
    >>> mean, std = model.fit(X[:80], y[:80]).predict(X[80:], return_std=True)  # doctest: +SKIP
    """

    _parameter_constraints: dict[str, list] = {
        **SupervisedMixin._parameter_constraints,
        "output": [StrOptions({"identity", "softplus", "trelu"})],
        "loss": [StrOptions(set(_LOSSES))],
        "standardize_targets": ["boolean"],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
    }
    _fitted_attributes = ("module_", "n_outputs_", "targets_1d_")

    def __init__(
        self,
        module=SiteNet,
        criterion=None,
        *,
        pretrained=None,
        freeze_encoder: bool = False,
        preset: str = "dim",
        head_hidden: tuple[int, ...] = (64,),
        output: str = "identity",
        loss: str = "mae",
        standardize_targets: bool = True,
        n_estimators: int = 1,
        max_atoms: int | None = None,
        supercell: str | None = None,
        site_properties: tuple[str, ...] | None = None,
        pair_features: tuple[str, ...] | None = None,
        max_sites: int | None = None,
        optimizer=torch.optim.AdamW,
        lr: float = 1e-3,
        max_steps: int | str = "auto",
        max_epochs: int | None = None,
        lr_schedule: str = "cosine",
        batch_pairs: int = 32768,
        validation_fraction: float | None = None,
        early_stopping: int | None = None,
        checkpoint_dir: str | None = None,
        device: str = "cpu",
        precision: str = "float32",
        gradient_clip: float | None = 1.0,
        random_state=None,
        n_jobs: int = 1,
        verbose: int = 1,
        callbacks=None,
        **kwargs: Any,
    ):
        kwargs.setdefault("train_split", None)
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            callbacks=callbacks,
            verbose=verbose,
            device=device,
            **kwargs,
        )
        self.pretrained = pretrained
        self.freeze_encoder = freeze_encoder
        self.preset = preset
        self.head_hidden = head_hidden
        self.output = output
        self.loss = loss
        self.standardize_targets = standardize_targets
        self.n_estimators = n_estimators
        self.max_atoms = max_atoms
        self.supercell = supercell
        self.site_properties = site_properties
        self.pair_features = pair_features
        self.max_sites = max_sites
        self.max_steps = max_steps
        self.lr_schedule = lr_schedule
        self.batch_pairs = batch_pairs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.checkpoint_dir = checkpoint_dir
        self.precision = precision
        self.gradient_clip = gradient_clip
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _output(self) -> str:
        return self.output

    def _n_members(self) -> int:
        return self.n_estimators

    def _encode_targets(self, y: Any, n: int) -> np.ndarray:
        targets = super()._encode_targets(y, n)
        if self.output in ("softplus", "trelu"):
            bad = np.flatnonzero((targets < 0).any(axis=1))
            if len(bad):
                raise ValueError(
                    f"output={self.output!r} predicts non-negative values, but y has "
                    f"{len(bad)} negative target(s), the first at row "
                    f"{row_labels(y, bad[:1])[0]!r}; use output='identity'"
                )
        self.n_outputs_ = targets.shape[1]
        self.targets_1d_ = np.ndim(y) == 1
        return targets

    def _prepare_fit(self, dataset) -> None:
        super()._prepare_fit(dataset)
        y = dataset.y.astype(np.float64)
        shift, scale = np.zeros(y.shape[1]), np.ones(y.shape[1])
        if self.standardize_targets:
            std = y.std(axis=0)
            scale = np.where(std > 1e-8, std, 1.0)
            if self.output == "identity":
                shift = y.mean(axis=0)
        self.target_scaling_ = (shift.astype(np.float32), scale.astype(np.float32))

    def initialize_criterion(self):
        """Build the loss named by ``loss`` (unless ``criterion`` is given).

        Returns
        -------
        self
        """
        if self.criterion is not None:
            return super().initialize_criterion()
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {list(_LOSSES)}, got {self.loss!r}")
        kwargs = self.get_params_for("criterion")
        self.criterion_ = _LOSSES[self.loss](**kwargs)
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Loss on standardized targets.

        An ensemble's loss is each member's loss, summed in training (so that
        each member gets the gradient of its own loss) and averaged otherwise.

        Parameters
        ----------
        y_pred : tensor of shape (B, n_outputs), or (B, n_members, n_outputs)
            Predictions, in the units of the targets.
        y_true : tensor of shape (B,) or (B, n_outputs)
            Targets.
        X : dict of tensors, optional
            The batch (unused).
        training : bool, default=False
            Whether this is a training step (an ensemble's loss is then the
            sum over members, else their mean).

        Returns
        -------
        tensor
            The scalar loss.
        """
        first = ensemble_members(self.module_)[0]
        shift, scale = first.target_shift, first.target_scale
        if y_pred.ndim == 2:
            y_true = y_true.to(y_pred.device).view_as(y_pred)
            return self.criterion_((y_pred - shift) / scale, (y_true - shift) / scale)
        y_true = y_true.to(y_pred.device).view_as(y_pred[:, 0])
        losses = torch.stack(
            [
                self.criterion_((y_pred[:, k] - shift) / scale, (y_true - shift) / scale)
                for k in range(y_pred.shape[1])
            ]
        )
        return losses.sum() if training else losses.mean()

    def predict(self, X: Any, return_std: bool = False):
        """Predict targets, and with an ensemble their standard deviation.

        Parameters
        ----------
        X : list, array or Series of Structure, a single-column DataFrame, or
            featurized inputs
        return_std : bool, default=False
            Also return the standard deviation of the members' predictions
            (``n_estimators >= 2``); an error bar whose calibration the user
            guide reports ("Error bars").

        Returns
        -------
        mean : ndarray of shape (n,) or (n, n_outputs)
            One row per structure, 1-D if y was 1-D in fit; an ensemble's
            mean over members.
        std : ndarray of the same shape
            Only with ``return_std=True``: the standard deviation over
            members (``ddof=1``).

        Raises
        ------
        ValueError
            ``return_std=True`` for a single network (``n_estimators=1``).
        """
        if return_std:
            self.check_is_fitted(list(self._fitted_attributes))
            if len(ensemble_members(self.module_)) < 2:
                raise ValueError(
                    "return_std=True needs an ensemble, and this model is one network: "
                    "fit SiteNetRegressor(n_estimators=5) (any n_estimators >= 2) for error bars"
                )
        members = self.predict_members(X)
        shape = (-1,) if self.targets_1d_ else (members.shape[0], members.shape[2])
        mean = members.mean(axis=1).reshape(shape)
        if not return_std:
            return mean
        return mean, members.std(axis=1, ddof=1).reshape(shape)

    def predict_members(self, X: Any) -> np.ndarray:
        """The prediction of every member of the ensemble.

        Parameters
        ----------
        X : list, array or Series of Structure, a single-column DataFrame, or
            featurized inputs

        Returns
        -------
        ndarray of shape (n, n_members, n_outputs)
            ``n_members`` is ``n_estimators`` (1 for a single network).
        """
        predictions = self._forward_sorted(X, lambda batch: self.module_(**batch))
        return predictions if predictions.ndim == 3 else predictions[:, None]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Same as :meth:`predict` (kept for skorch compatibility), always 2-D.

        Parameters
        ----------
        X : list, array or Series of Structure, a single-column DataFrame, or
            featurized inputs

        Returns
        -------
        ndarray of shape (n, n_outputs)
            An ensemble's mean over members.
        """
        return self.predict_members(X).mean(axis=1)

    def _fitted_state(self) -> dict:
        return {
            **super()._fitted_state(),
            "n_outputs": self.n_outputs_,
            "targets_1d": self.targets_1d_,
        }

    def _restore_fitted(self, state: dict) -> None:
        super()._restore_fitted(state)
        self.n_outputs_ = int(state["n_outputs"])
        self.targets_1d_ = bool(state["targets_1d"])
