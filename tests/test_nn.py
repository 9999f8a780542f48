"""Site-Net and Deep InfoMax modules on random tensors and real structures."""

import numpy as np
import pytest
import torch

from skdim.data import collate_sitenet, feature_scaling
from skdim.featurize import SiteNetInput, featurize
from skdim.nn import (
    PRESETS,
    DIMLoss,
    OutputActivation,
    SiteNet,
    SiteNetDIM,
    SiteNetEncoder,
    derangement,
    encoder_config,
    engineered_negatives,
    masked_softmax,
)


@pytest.fixture(scope="module")
def inputs(mp100):
    structures, _ = mp100
    small = [s for s in structures if len(s) <= 20][:24]
    return featurize(small, max_atoms=50)


@pytest.fixture(scope="module")
def scaling(inputs):
    return feature_scaling(inputs)


def batch_of(items):
    return collate_sitenet([(x, None) for x in items])[0]


def random_batch(b=3, p=4, j=10, f=8, c=1):
    n_sites = torch.tensor([p, p - 1, 2][:b])
    site_mask = torch.arange(p)[None] < n_sites[:, None]
    return {
        "atomic_numbers": torch.randint(1, 90, (b, p)),
        "site_features": torch.randn(b, p, f),
        "pair_features": torch.rand(b, p, j, c) * 6,
        "neighbor_site": torch.randint(0, 2, (b, j)),
        "site_mask": site_mask,
        "pair_mask": site_mask[:, :, None] & torch.ones(b, 1, j, dtype=torch.bool),
    }


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_encoder_shapes_on_random_tensors(preset):
    encoder = SiteNetEncoder(8, 1, **encoder_config(preset))
    batch = random_batch()
    local, summary = encoder.encode_sites(**batch)
    assert local.shape == (3, 4, encoder.local_dim)
    assert summary.shape == (3, 4, encoder.summary_dim)
    assert encoder(**batch).shape == (3, encoder.embedding_dim)


def test_presets_match_the_reference_widths():
    paper = SiteNetEncoder(8, 2, **encoder_config("paper"))
    assert paper.embedding_dim == 200 and paper.summary_dim == 180
    dim = SiteNetEncoder(8, 1, **encoder_config("dim"))
    assert dim.local_dim == 32 and dim.embedding_dim == 64
    with pytest.raises(ValueError, match="preset"):
        encoder_config("nope")
    with pytest.raises(ValueError, match="unknown"):
        encoder_config("dim", n_layers=3)


def test_embedding_ignores_padding_and_batch_position(inputs, scaling):
    encoder = SiteNetEncoder(8, 1, **encoder_config("paper")).eval()
    encoder.set_feature_scaling(**scaling)
    together = encoder(**batch_of(inputs[:8]))
    for k in (0, 5, 7):
        alone = encoder(**batch_of([inputs[k]]))
        torch.testing.assert_close(alone[0], together[k], atol=1e-5, rtol=0)
    reordered = encoder(**batch_of(inputs[:8][::-1]))
    torch.testing.assert_close(reordered.flip(0), together, atol=1e-5, rtol=0)


def permute_sites(x: SiteNetInput, rng) -> SiteNetInput:
    order = rng.permutation(x.n_sites)  # new row r holds old site order[r]
    inverse = np.argsort(order)
    columns = rng.permutation(x.n_neighbors)  # supercell atom order is arbitrary too
    return SiteNetInput(
        atomic_numbers=x.atomic_numbers[order],
        site_features=x.site_features[order],
        pair_features=x.pair_features[order][:, columns],
        neighbor_site=inverse[x.neighbor_site[columns]],
        n_images=x.n_images,
    )


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_embedding_invariant_to_site_and_atom_order(inputs, scaling, preset):
    encoder = SiteNetEncoder(8, 1, **encoder_config(preset)).eval()
    encoder.set_feature_scaling(**scaling)
    rng = np.random.default_rng(0)
    original = encoder(**batch_of(inputs[:6]))
    permuted = encoder(**batch_of([permute_sites(x, rng) for x in inputs[:6]]))
    torch.testing.assert_close(original, permuted, atol=1e-5, rtol=0)


def test_masked_softmax_is_finite_in_low_precision():
    logits = torch.randn(2, 3, 5, 1).to(torch.bfloat16)
    mask = torch.ones(2, 3, 5, 1, dtype=torch.bool)
    mask[0, 1] = False  # a fully masked row
    mask[1, :, 3:] = False
    weights = masked_softmax(logits, mask, dim=2)
    assert torch.isfinite(weights).all()
    assert weights[0, 1].sum() == 0
    torch.testing.assert_close(weights[1].sum(1), torch.ones(3, 1))
    assert (weights[1, :, 3:] == 0).all()


def test_encoder_under_bfloat16_autocast(inputs, scaling):
    encoder = SiteNetEncoder(8, 1, **encoder_config("dim"))
    encoder.set_feature_scaling(**scaling)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(**batch_of(inputs[:4]))
    assert torch.isfinite(out).all()


def test_output_activations():
    x = torch.tensor([-1.0, 2.0], requires_grad=True)
    trelu = OutputActivation("trelu")(x)
    assert trelu.tolist() == [0.0, 2.0]
    trelu.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]  # transparent: gradient passes through
    assert (OutputActivation("softplus")(torch.tensor([-5.0])) > 0).all()
    with pytest.raises(ValueError):
        OutputActivation("relu")


def test_derangement_never_pairs_a_crystal_with_itself():
    for n in (2, 3, 7, 40):
        for _ in range(50):
            sigma = derangement(n, random=True)
            assert sorted(sigma.tolist()) == list(range(n))
            assert (sigma != torch.arange(n)).all()
        assert (derangement(n, random=False) != torch.arange(n)).all()
    with pytest.raises(ValueError, match="at least 2 crystals"):
        derangement(1, random=True)


def test_engineered_negatives_come_from_other_crystals(inputs):
    batch = batch_of(inputs[:5])
    sigma = derangement(5, random=True)
    corrupted = engineered_negatives(batch, sigma, random=True)
    assert corrupted["site_features"].shape[0] == 15
    n_sites = batch["site_mask"].sum(1)
    for b in range(5):
        partner = int(sigma[b])
        assert partner != b
        # wrong composition: the species of the partner crystal
        rows = torch.arange(batch["site_mask"].shape[1]) % n_sites[partner]
        torch.testing.assert_close(
            corrupted["site_features"][b], batch["site_features"][partner, rows]
        )
        # wrong geometry: the partner's distances, own species
        torch.testing.assert_close(
            corrupted["pair_features"][5 + b], batch["pair_features"][partner, rows]
        )
        torch.testing.assert_close(corrupted["site_features"][5 + b], batch["site_features"][b])
        # shuffled neighbours: same multiset of real identities, distances kept
        j = int(batch["pair_mask"][b, 0].sum())
        assert sorted(corrupted["neighbor_site"][10 + b, :j].tolist()) == sorted(
            batch["neighbor_site"][b, :j].tolist()
        )
        torch.testing.assert_close(corrupted["pair_features"][10 + b], batch["pair_features"][b])


def test_dim_module_and_loss(inputs, scaling):
    model = SiteNetDIM()
    model.encoder.set_feature_scaling(**scaling)
    embedding, scores = model(**batch_of(inputs[:6]))
    assert embedding.shape == (6, 64)
    assert scores.global_scores.shape[::2] == (6, 6)
    assert scores.global_engineered.shape[0] == 3
    assert (scores.derangement != torch.arange(6)).all()
    for estimator in ("jsd", "infonce"):
        terms = DIMLoss(estimator=estimator)(scores)
        assert terms["loss"].ndim == 0 and torch.isfinite(terms["loss"])
        assert terms["local"] >= 0 and terms["global"] >= 0 and terms["kl"] >= 0
    terms["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:5])


def test_dim_single_crystal_batch_is_an_error(inputs, scaling):
    with pytest.raises(ValueError, match="at least 2 crystals"):
        SiteNetDIM()(**batch_of(inputs[:1]))


def test_global_loss_detaches_local_encoder_when_asked(inputs, scaling):
    model = SiteNetDIM(global_trains_local=False, engineered_negatives=False)
    model.encoder.set_feature_scaling(**scaling)
    _, scores = model(**batch_of(inputs[:4]))
    DIMLoss(local_weight=0.0, kl_weight=0.0)(scores)["loss"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.blocks.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.post_pool.parameters())


@pytest.mark.slow
def test_supervised_sitenet_overfits_50_structures(mp100):
    structures, labels = mp100
    chosen = np.argsort([len(s) for s in structures], kind="stable")[:50]  # the smallest cells
    inputs = featurize(structures.iloc[chosen], max_atoms=30)
    y = torch.tensor(labels["e_form_per_atom"].to_numpy()[chosen], dtype=torch.float32)
    torch.manual_seed(0)
    model = SiteNet(preset="dim", head_hidden=(64,))
    model.encoder.set_feature_scaling(**feature_scaling(inputs))
    model.target_shift.fill_(float(y.mean()))
    model.target_scale.fill_(float(y.std()))
    batch = batch_of(inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    start = (model(**batch)[:, 0] - y).abs().mean().item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = ((model(**batch)[:, 0] - y) / y.std()).abs().mean()
        loss.backward()
        optimizer.step()
    final = (model(**batch)[:, 0] - y).abs().mean().item()
    assert final < 0.1 * start, (start, final)
