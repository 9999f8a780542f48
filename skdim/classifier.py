"""SiteNetClassifier: Site-Net classification (e.g. metal vs non-metal)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from skorch import NeuralNet

from skdim._inputs import check_targets, row_labels
from skdim._supervised import SupervisedMixin
from skdim.nn import SiteNet


class SiteNetClassifier(ClassifierMixin, SupervisedMixin, NeuralNet):
    """Classify crystals with Site-Net, optionally from pretrained DIM weights.

    The module outputs one logit per class, trained with cross-entropy;
    ``predict_proba`` applies a softmax. Class labels may be of any type
    (they are encoded in fit and decoded in ``predict``).

    Parameters
    ----------
    module : type, default=SiteNet
    criterion : type, default=torch.nn.CrossEntropyLoss
    pretrained, freeze_encoder, preset, head_hidden
        As in :class:`SiteNetRegressor`.
    max_atoms, supercell, site_properties, pair_features, max_sites : default=None
        Featurization, as in :class:`SiteNetRegressor`.
    optimizer, lr, max_steps, max_epochs, lr_schedule, batch_pairs, validation_fraction
        As in :class:`SiteNetRegressor`.
    early_stopping, checkpoint_dir, device, precision, gradient_clip
        As in :class:`SiteNetRegressor`.
    random_state, n_jobs, verbose, callbacks
        As in :class:`SiteNetRegressor`.
    **kwargs
        Other skorch parameters.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    module_ : SiteNet

    See Also
    --------
    SiteNetRegressor : The same model for continuous targets.

    Examples
    --------
    Metal or not, from the PBE band gap:

    >>> from skdim import SiteNetClassifier
    >>> from skdim.datasets import get_data_home, load_structures_csv
    >>> X, labels = load_structures_csv(get_data_home() / "mp100.csv.gz")
    >>> is_metal = labels["band_gap"] == 0
    >>> clf = SiteNetClassifier(max_epochs=30, random_state=0, verbose=0)
    >>> clf.fit(X[:80], is_metal[:80])  # doctest: +SKIP
    >>> clf.classes_  # doctest: +SKIP
    array([False,  True])
    >>> clf.predict_proba(X[80:]).shape  # doctest: +SKIP
    (20, 2)
    """

    def __init__(
        self,
        module=SiteNet,
        criterion=torch.nn.CrossEntropyLoss,
        *,
        pretrained=None,
        freeze_encoder: bool = False,
        preset: str = "dim",
        head_hidden: tuple[int, ...] = (64,),
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
            criterion,
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

    _fitted_attributes = ("module_", "classes_")

    def _n_outputs(self) -> int:
        return len(getattr(self, "classes_", (0, 1)))

    def _encode_targets(self, y: Any, n: int) -> np.ndarray:
        labels = check_targets(y, n, numeric=False)
        if labels.ndim != 1:
            raise ValueError(f"y must be 1-D class labels, got shape {labels.shape}")
        missing = np.flatnonzero(pd.isna(labels))
        if len(missing):
            raise ValueError(
                f"y has {len(missing)} missing (NaN or None) labels, at rows "
                f"{row_labels(y, missing[:5])}; drop them and their structures"
            )
        if type_of_target(labels) == "continuous":
            raise ValueError(
                f"y is continuous ({len(np.unique(labels))} distinct float values, e.g. "
                f"{labels[0]!r}), not class labels: use SiteNetRegressor, or bin y"
            )
        self.classes_, codes = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y has a single class {self.classes_.tolist()}; need at least 2")
        return codes.astype(np.int64)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Cross-entropy of the logits against the encoded labels.

        Parameters
        ----------
        y_pred : tensor of shape (B, n_classes)
            Logits.
        y_true : tensor of shape (B,)
            Class indices into ``classes_``.
        X : dict of tensors, optional
            The batch (unused).
        training : bool, default=False
            Whether this is a training step (unused).

        Returns
        -------
        tensor
            The scalar loss.
        """
        return self.criterion_(y_pred, y_true.to(y_pred.device).long().view(-1))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : list, array or Series of Structure, a single-column DataFrame, or
            featurized inputs

        Returns
        -------
        ndarray of shape (n, n_classes)
            Columns ordered as ``classes_``.
        """
        logits = self._forward_sorted(X, lambda batch: self.module_(**batch))
        return torch.softmax(torch.as_tensor(logits), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each structure.

        Parameters
        ----------
        X : list, array or Series of Structure, a single-column DataFrame, or
            featurized inputs

        Returns
        -------
        ndarray of shape (n,)
            Labels from ``classes_``.
        """
        probabilities = self.predict_proba(X)  # raises NotFittedError before fit
        return self.classes_[probabilities.argmax(axis=1)]

    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "classes": self.classes_.tolist()}

    def _restore_fitted(self, state: dict) -> None:
        super()._restore_fitted(state)
        self.classes_ = np.asarray(state["classes"])
