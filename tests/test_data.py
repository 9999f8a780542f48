import numpy as np
import pytest
import torch

from skdim.data import (
    PairBudgetBatchSampler,
    SiteNetDataset,
    collate_sitenet,
    feature_scaling,
    item_sizes,
)
from skdim.featurize import featurize


@pytest.fixture(scope="module")
def inputs(mp100):
    structures, _ = mp100
    return featurize(structures.iloc[:30], max_atoms=50, pair_features=("distance", "coulomb"))


def test_collate_pads_and_masks(inputs):
    items = [(x, np.float32(i)) for i, x in enumerate(inputs[:7])]
    batch, y = collate_sitenet(items)
    p_max = max(x.n_sites for x in inputs[:7])
    j_max = max(x.n_neighbors for x in inputs[:7])
    assert batch["site_features"].shape == (7, p_max, 8)
    assert batch["pair_features"].shape == (7, p_max, j_max, 2)
    assert batch["neighbor_site"].shape == (7, j_max)
    assert batch["pair_mask"].shape == (7, p_max, j_max)
    assert torch.equal(y, torch.arange(7, dtype=torch.float32))
    for b, x in enumerate(inputs[:7]):
        p, j = x.n_sites, x.n_neighbors
        np.testing.assert_array_equal(batch["site_features"][b, :p].numpy(), x.site_features)
        np.testing.assert_array_equal(batch["pair_features"][b, :p, :j].numpy(), x.pair_features)
        np.testing.assert_array_equal(batch["neighbor_site"][b, :j].numpy(), x.neighbor_site)
        assert batch["site_mask"][b].sum() == p
        assert batch["pair_mask"][b].sum() == p * j
        assert (
            not batch["pair_features"][b, p:].any() and not batch["pair_features"][b, :, j:].any()
        )
        # padding columns wrap around to real atoms of the same crystal
        assert (batch["neighbor_site"][b] < p).all()


def test_collate_without_targets(inputs):
    batch, y = collate_sitenet([(x, None) for x in inputs[:3]])
    assert y.shape == (3, 0)


def test_dataset_checks_lengths(inputs):
    with pytest.raises(ValueError, match="targets"):
        SiteNetDataset(inputs[:3], y=[1.0, 2.0])


def test_sampler_respects_pair_budget(inputs):
    n_sites = np.array([x.n_sites for x in inputs])
    n_neighbors = np.array([x.n_neighbors for x in inputs])
    budget = 4000
    sampler = PairBudgetBatchSampler(n_sites, n_neighbors, budget, shuffle=True, random_state=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(inputs)))
    for batch in batches:
        padded = len(batch) * n_sites[batch].max() * n_neighbors[batch].max()
        assert padded <= budget or len(batch) == 1
    assert len(sampler) == len(list(sampler))


def test_sampler_is_seeded_and_sequential_without_shuffle(inputs):
    n_sites = np.array([x.n_sites for x in inputs])
    n_neighbors = np.array([x.n_neighbors for x in inputs])
    first = list(PairBudgetBatchSampler(n_sites, n_neighbors, 3000, shuffle=True, random_state=1))
    again = list(PairBudgetBatchSampler(n_sites, n_neighbors, 3000, shuffle=True, random_state=1))
    assert first == again
    ordered = list(PairBudgetBatchSampler(n_sites, n_neighbors, 3000))
    assert [i for b in ordered for i in b] == list(range(len(inputs)))


def test_shuffled_batches_group_crystals_by_site_count_first():
    # the site count P (1..J) drives the padding more than the atom count J
    # (in [max_atoms / 2, max_atoms]): within a bucket, items sort by P, then J
    rng = np.random.default_rng(0)
    n_neighbors = rng.integers(26, 51, size=600)
    n_sites = np.minimum(rng.integers(1, 51, size=600), n_neighbors)
    sampler = PairBudgetBatchSampler(n_sites, n_neighbors, 32768, shuffle=True, random_state=0)
    batches = sorted(sampler, key=lambda b: (n_sites[b].min(), n_neighbors[b].min()))
    for batch, after in zip(batches, batches[1:]):  # consecutive ranges of P
        assert n_sites[batch].max() <= n_sites[after].min()
    assert sorted(i for b in batches for i in b) == list(range(600))


def test_sampler_min_crystals_merges_a_lone_last_batch():
    sampler = PairBudgetBatchSampler([10, 10, 10], [50, 50, 50], 600, min_crystals=2)
    batches = list(sampler)
    assert all(len(b) >= 2 for b in batches)
    assert sum(len(b) for b in batches) == 3


def test_item_sizes_of_subset(inputs):
    dataset = SiteNetDataset(inputs)
    subset = torch.utils.data.Subset(dataset, [3, 1])
    n_sites, n_neighbors = item_sizes(subset)
    assert list(n_sites) == [inputs[3].n_sites, inputs[1].n_sites]
    assert list(n_neighbors) == [inputs[3].n_neighbors, inputs[1].n_neighbors]


def test_feature_scaling(inputs):
    stats = feature_scaling(inputs)
    sites = np.concatenate([x.site_features for x in inputs])
    np.testing.assert_allclose(stats["site_mean"], sites.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["site_std"], sites.std(0), rtol=1e-4)
    assert stats["pair_mean"].shape == (2,)
    assert np.isfinite(stats["pair_std"]).all() and (stats["pair_std"] > 0).all()
