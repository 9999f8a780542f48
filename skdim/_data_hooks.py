"""skorch's data hooks for skdim estimators: structures to datasets and pair-budget batches.

:class:`DataHooksMixin` featurizes structures once (or takes featurized
inputs or an on-disk store), splits off a seeded validation set, and batches
by a budget of pairs (P x J) instead of a count of crystals.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Subset

from skdim._featurize_settings import (
    FEATURIZATION_DEFAULTS,
    check_featurized,
    check_same_settings,
)
from skdim._inputs import as_structures, is_featurized, is_torch_dataset
from skdim._schedule import auto_steps
from skdim.data import PairBudgetBatchSampler, SiteNetDataset, collate_sitenet, item_sizes
from skdim.featurize import featurize


class DataHooksMixin:
    """``get_dataset``, ``get_split_datasets`` and ``get_iterator`` of the estimators."""

    #: Fewest crystals per training batch (DIM needs two to draw negatives).
    _min_crystals = 1

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
            check_same_settings(getattr(X, "featurization", None), settings)
            inputs = list(items.tolist() if hasattr(items, "iloc") else items)
            check_featurized(inputs, settings)
        else:
            inputs = featurize(items, n_jobs=self.n_jobs, progress=self.verbose > 0, **settings)
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
        sampler = self._batch_sampler(dataset, training)
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        kwargs.pop("batch_size", None)
        kwargs.pop("shuffle", None)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_sitenet, **kwargs)

    def _batch_sampler(self, dataset, training: bool) -> PairBudgetBatchSampler:
        """The pair-budget batches of :meth:`get_iterator`.

        In training it draws from the estimator's seeded generator; its
        ``len`` (the coming pass's number of batches, which the progress bar
        shows) draws from a copy, so asking changes nothing.
        """
        n_sites, n_neighbors = item_sizes(dataset)
        if training and getattr(self, "sampler_rng_", None) is None:
            self.sampler_rng_ = np.random.default_rng(self._seed())
        return PairBudgetBatchSampler(
            n_sites,
            n_neighbors,
            self.batch_pairs,
            shuffle=training,
            min_crystals=self._min_crystals,
            random_state=self.sampler_rng_ if training else None,
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
