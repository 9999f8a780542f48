"""Featurized crystals to padded torch batches.

The collate function turns a list of :class:`~skdim.featurize.SiteNetInput` into
padded tensors plus masks with vectorized index arithmetic (no Python loop over
sites or pairs), and :class:`PairBudgetBatchSampler` packs crystals so that the
padded pair count ``B x P_max x J_max`` of every batch stays under a budget,
which is what memory per step scales with.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, Subset

from skdim.featurize import SiteNetInput

__all__ = [
    "PairBudgetBatchSampler",
    "SiteNetDataset",
    "collate_sitenet",
    "feature_scaling",
    "item_sizes",
]


class SiteNetDataset(Dataset):
    """Torch dataset of featurized crystals with optional targets.

    Parameters
    ----------
    inputs : sequence of SiteNetInput
        Featurized crystals.
    y : array-like of shape (n,) or (n, k), default=None
        Targets; None for self-supervised training.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.featurize import featurize
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> dataset = SiteNetDataset(featurize([cscl, po], max_atoms=30), y=[0.5, 0.0])
    >>> len(dataset), dataset.n_sites.tolist(), dataset.n_neighbors.tolist()
    (2, [2, 1], [24, 27])
    >>> x, y = dataset[1]
    >>> x.n_sites, float(y)
    (1, 0.0)

    The estimators accept a dataset in place of structures, so a data set
    featurized once can be reused across ``fit`` calls.
    """

    def __init__(self, inputs: Sequence[SiteNetInput], y: np.ndarray | None = None):
        self.inputs = list(inputs)
        self.y = None if y is None else np.asarray(y)
        if self.y is not None and len(self.y) != len(self.inputs):
            raise ValueError(f"{len(self.inputs)} structures but {len(self.y)} targets")
        self.n_sites = np.array([x.n_sites for x in self.inputs], dtype=np.int64)
        self.n_neighbors = np.array([x.n_neighbors for x in self.inputs], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[SiteNetInput, np.ndarray | None]:
        return self.inputs[index], None if self.y is None else self.y[index]


def item_sizes(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(P, J) of every item of a dataset, read from its ``n_sites`` and ``n_neighbors``.

    Works for :class:`SiteNetDataset`, any dataset with those two attributes
    (e.g. an on-disk store), nested ``Subset`` s of them, and otherwise falls
    back to reading every item.

    Parameters
    ----------
    dataset : torch Dataset
        Items are ``(SiteNetInput, target)`` pairs.

    Returns
    -------
    n_sites, n_neighbors : ndarray of shape (len(dataset),), int
        P and J of every item.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from torch.utils.data import Subset
    >>> from skdim.featurize import featurize
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> dataset = SiteNetDataset(featurize([cscl, po], max_atoms=30))
    >>> [a.tolist() for a in item_sizes(Subset(dataset, [1]))]
    [[1], [27]]
    """
    if isinstance(dataset, Subset):
        n_sites, n_neighbors = item_sizes(dataset.dataset)
        index = np.asarray(dataset.indices)
        return n_sites[index], n_neighbors[index]
    if hasattr(dataset, "n_sites") and hasattr(dataset, "n_neighbors"):  # SiteNetDataset & co
        return np.asarray(dataset.n_sites), np.asarray(dataset.n_neighbors)
    items = [dataset[i][0] for i in range(len(dataset))]
    return np.array([x.n_sites for x in items]), np.array([x.n_neighbors for x in items])


def _offsets(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner (batch row) and position within the owner of every concatenated element."""
    owner = np.repeat(np.arange(len(sizes)), sizes)
    position = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return owner, position


def collate_sitenet(
    items: Sequence[tuple[SiteNetInput, np.ndarray | None]],
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Pad a list of (SiteNetInput, target) into a batch.

    Parameters
    ----------
    items : sequence of (SiteNetInput, target or None)
        What indexing a :class:`SiteNetDataset` returns.

    Returns
    -------
    batch : dict of tensors
        ``atomic_numbers`` (B, P) long; ``site_features`` (B, P, F);
        ``pair_features`` (B, P, J, C), channel 0 the distance in Angstrom;
        ``neighbor_site`` (B, J) long, the unit-cell site of supercell atom j
        (padding columns wrap around to real atoms, as in the original code);
        ``site_mask`` (B, P) and ``pair_mask`` (B, P, J) bool, True where real.
    y : tensor of shape (B,) or (B, k); (B, 0) when there are no targets

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.featurize import featurize
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> dataset = SiteNetDataset(featurize([cscl, po], max_atoms=30), y=[0.5, 0.0])
    >>> batch, y = collate_sitenet([dataset[0], dataset[1]])
    >>> {name: tuple(t.shape) for name, t in batch.items()}  # doctest: +NORMALIZE_WHITESPACE
    {'atomic_numbers': (2, 2), 'site_features': (2, 2, 8), 'pair_features': (2, 2, 27, 1),
     'neighbor_site': (2, 27), 'site_mask': (2, 2), 'pair_mask': (2, 2, 27)}
    >>> batch["site_mask"].tolist()  # Po has one site, the second row is padding
    [[True, True], [True, False]]
    >>> y.tolist()
    [0.5, 0.0]
    """
    inputs = [x for x, _ in items]
    n_sites = np.array([x.n_sites for x in inputs])
    n_neighbors = np.array([x.n_neighbors for x in inputs])
    batch, p_max, j_max = len(inputs), n_sites.max(), n_neighbors.max()
    n_pair_channels = inputs[0].pair_features.shape[-1]

    owner, position = _offsets(n_sites)
    site_features = np.zeros((batch, p_max, inputs[0].site_features.shape[1]), np.float32)
    site_features[owner, position] = np.concatenate([x.site_features for x in inputs])
    atomic_numbers = np.zeros((batch, p_max), np.int64)
    atomic_numbers[owner, position] = np.concatenate([x.atomic_numbers for x in inputs])

    pairs = n_sites * n_neighbors
    owner, position = _offsets(pairs)
    per_row = np.repeat(n_neighbors, pairs)
    pair_features = np.zeros((batch, p_max, j_max, n_pair_channels), np.float32)
    pair_features[owner, position // per_row, position % per_row] = np.concatenate(
        [x.pair_features.reshape(-1, n_pair_channels) for x in inputs]
    )

    start = np.cumsum(n_neighbors) - n_neighbors
    wrapped = start[:, None] + np.arange(j_max)[None, :] % n_neighbors[:, None]
    neighbor_site = np.concatenate([x.neighbor_site for x in inputs])[wrapped]

    site_mask = np.arange(p_max)[None, :] < n_sites[:, None]
    neighbor_mask = np.arange(j_max)[None, :] < n_neighbors[:, None]
    tensors = {
        "atomic_numbers": torch.from_numpy(atomic_numbers),
        "site_features": torch.from_numpy(site_features),
        "pair_features": torch.from_numpy(pair_features),
        "neighbor_site": torch.from_numpy(neighbor_site.astype(np.int64)),
        "site_mask": torch.from_numpy(site_mask),
        "pair_mask": torch.from_numpy(site_mask[:, :, None] & neighbor_mask[:, None, :]),
    }
    targets = [y for _, y in items]
    if targets[0] is None:
        return tensors, torch.zeros(batch, 0)
    return tensors, torch.as_tensor(np.asarray(targets, dtype=np.float32))


class PairBudgetBatchSampler(Sampler[list[int]]):
    """Batches whose padded pair count B x P_max x J_max stays under a budget.

    Parameters
    ----------
    n_sites, n_neighbors : array-like of int
        P and J of every item.
    max_pairs : int
        Budget of padded pairs per batch. A crystal larger than the budget
        gets a batch of its own.
    shuffle : bool, default=False
        Random order (training). Items are then sorted by size (site count
        P, then atom count J) inside random buckets of ``bucket_size`` items,
        which limits padding, and the batch order is shuffled. Without
        shuffling, items keep their order.
    min_crystals : int, default=1
        Smallest batch; a short last batch is merged into the one before it
        (DIM needs 2 crystals to draw negatives).
    random_state : int, numpy Generator or None, default=None
        Source of randomness; each pass over the data draws a new order.
    bucket_size : int, default=2048
        Items per sorting bucket when shuffling.

    Examples
    --------
    Four crystals with (P, J) = (2, 24), (1, 27), (3, 30), (1, 10) and a budget
    of 200 padded pairs: the first two pad to 2 x 2 x 27 = 108 pairs, adding the
    third would make 3 x 3 x 30 = 270.

    >>> sampler = PairBudgetBatchSampler([2, 1, 3, 1], [24, 27, 30, 10], max_pairs=200)
    >>> list(sampler)
    [[0, 1], [2, 3]]
    >>> len(sampler)
    2
    """

    def __init__(
        self,
        n_sites: Sequence[int],
        n_neighbors: Sequence[int],
        max_pairs: int,
        *,
        shuffle: bool = False,
        min_crystals: int = 1,
        random_state: int | np.random.Generator | None = None,
        bucket_size: int = 2048,
    ):
        self.n_sites = np.asarray(n_sites)
        self.n_neighbors = np.asarray(n_neighbors)
        self.max_pairs = max_pairs
        self.shuffle = shuffle
        self.min_crystals = min_crystals
        self.rng = np.random.default_rng(random_state)
        self.bucket_size = bucket_size

    def _order(self, rng: np.random.Generator) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.n_sites))
        order = rng.permutation(len(self.n_sites))
        buckets = [order[i : i + self.bucket_size] for i in range(0, len(order), self.bucket_size)]
        return np.concatenate(
            [b[np.lexsort((self.n_neighbors[b], self.n_sites[b]))] for b in buckets]
        )

    def _batches(self, rng: np.random.Generator) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        p_max = j_max = 0
        for index in self._order(rng).tolist():
            p, j = max(p_max, self.n_sites[index]), max(j_max, self.n_neighbors[index])
            if (
                current
                and (len(current) + 1) * p * j > self.max_pairs
                and (len(current) >= self.min_crystals)
            ):
                batches.append(current)
                current, p, j = [], self.n_sites[index], self.n_neighbors[index]
            current.append(index)
            p_max, j_max = p, j
        if current:
            if len(current) < self.min_crystals and batches:
                batches[-1].extend(current)
            else:
                batches.append(current)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches(self.rng))

    def __len__(self) -> int:
        return len(self._batches(copy.deepcopy(self.rng)))


def feature_scaling(inputs: Sequence[SiteNetInput]) -> dict[str, np.ndarray]:
    """Mean and standard deviation of site and pair features over real entries.

    Parameters
    ----------
    inputs : sequence of SiteNetInput
        Featurized training structures.

    Returns
    -------
    dict with ``site_mean``, ``site_std`` (F,) and ``pair_mean``, ``pair_std``
    (C,), float32. A constant feature gets std 1.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.featurize import featurize
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> stats = feature_scaling(featurize([cscl], max_atoms=20))
    >>> sorted(stats), stats["site_mean"].shape, stats["pair_std"].shape
    (['pair_mean', 'pair_std', 'site_mean', 'site_std'], (8,), (1,))
    >>> float(stats["site_mean"][0])  # mean atomic number of Cs (55) and Cl (17)
    36.0
    """
    sites = np.concatenate([x.site_features for x in inputs]).astype(np.float64)
    pairs = np.concatenate(
        [x.pair_features.reshape(-1, x.pair_features.shape[-1]) for x in inputs]
    ).astype(np.float64)
    stats = {}
    for name, values in (("site", sites), ("pair", pairs)):
        std = values.std(axis=0)
        stats[f"{name}_mean"] = values.mean(axis=0).astype(np.float32)
        stats[f"{name}_std"] = np.where(std > 1e-8, std, 1.0).astype(np.float32)
    return stats
