"""Deep InfoMax as parts: critics, negatives, the typed scores record, and their assembly."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import FAST

from skdim import DIMPretrainer
from skdim.featurize import featurize
from skdim.nn import (
    DIMLoss,
    DIMScores,
    GlobalCritic,
    LocalCritic,
    SiteNetDIM,
    SiteNetEncoder,
    derangement,
    encoder_config,
    engineered_negatives,
)
from skdim.nn.critics import distance_weights, sample_neighbors
from skdim.nn.negatives import partner_rows, take_rows


def random_batch(b=4, p=3, j=9, f=8):
    n_sites = torch.tensor([p, p - 1, 1, 2][:b])
    site_mask = torch.arange(p)[None] < n_sites[:, None]
    pair_mask = site_mask[:, :, None] & (torch.arange(j) < j - 2)[None, None]  # 2 padding
    return {
        "atomic_numbers": torch.randint(1, 90, (b, p)),
        "site_features": torch.randn(b, p, f),
        "pair_features": torch.rand(b, p, j, 1) * 6,
        "neighbor_site": (torch.arange(j)[None] % n_sites[:, None]).long(),
        "site_mask": site_mask,
        "pair_mask": pair_mask,
    }


class SpyCorruption:
    """A corruption of K copies (each the partner's site features) that records its calls."""

    def __init__(self, copies: int = 2):
        self.copies = copies
        self.calls = []

    def __call__(self, batch, partners, *, random):
        self.calls.append({"batch": batch, "partners": partners, "random": random})
        rows = partner_rows(batch["site_mask"], partners)
        fake = {**batch, "site_features": take_rows(batch["site_features"], partners, rows)}
        return {k: torch.cat([v] * self.copies) for k, v in fake.items()}


# ------------------------------------------------------------------ assembly
def test_dim_receives_its_encoder_and_corruption():
    encoder = SiteNetEncoder(8, 1, **encoder_config("dim", local_dim=16, n_blocks=2))
    spy = SpyCorruption(copies=2)
    model = SiteNetDIM(encoder=encoder, corruption=spy)
    assert model.encoder is encoder and model.corruption is spy
    assert model.local_critic.query[0].weight.shape[1] == 16  # critics sized by the encoder
    batch = random_batch()
    for training in (True, False):
        model.train(training)
        embedding, scores = model(**batch)
        call = spy.calls[-1]
        assert call["random"] is training
        assert torch.equal(call["partners"], scores.derangement)
        assert not call["batch"]["pair_embedding"].requires_grad  # encoded without gradients
        assert scores.global_engineered.shape == (2, 4, 3)  # (K, B, P)
        for estimator in ("jsd", "infonce"):
            assert torch.isfinite(DIMLoss(estimator=estimator)(scores)["loss"])
    assert len(spy.calls) == 2


def test_corruption_follows_the_models_training_flag():
    """A subclass may switch ``training`` on the model alone (see tests/test_distributed.py)."""
    spy = SpyCorruption(copies=1)
    model = SiteNetDIM(corruption=spy)
    model.training = False  # the children stay in training mode
    model(**random_batch())
    assert spy.calls[-1]["random"] is False


def test_default_parts_and_contradictory_arguments():
    assert SiteNetDIM().corruption is engineered_negatives
    model = SiteNetDIM(engineered_negatives=False)
    assert model.corruption is None
    assert model.eval()(**random_batch())[1].global_engineered is None
    with pytest.raises(ValueError, match="engineered_negatives=False"):
        SiteNetDIM(corruption=SpyCorruption(), engineered_negatives=False)
    with pytest.raises(ValueError, match="n_blocks"):
        SiteNetDIM(encoder=SiteNetEncoder(8, 1), n_blocks=2)


def test_given_encoder_keeps_the_parameter_layout():
    torch.manual_seed(0)
    built = SiteNetDIM(prior_matching=True)
    torch.manual_seed(0)
    given = SiteNetDIM(encoder=SiteNetEncoder(8, 1, **encoder_config("dim")), prior_matching=True)
    assert list(built.state_dict()) == list(given.state_dict())
    assert all(torch.equal(v, given.state_dict()[k]) for k, v in built.state_dict().items())


def test_pretrainer_passes_a_corruption_to_its_module(small):
    structures, _ = small
    spy = SpyCorruption(copies=1)
    model = DIMPretrainer(**FAST, module__corruption=spy).fit(featurize(structures[:12]))
    assert model.module_.corruption is spy
    assert {call["random"] for call in spy.calls} == {True, False}  # training and validation


# ------------------------------------------------------------------ the record
def record(b=3, p=2, k=5, width=4, e=6, **extra) -> DIMScores:
    """Scores of a critic that cannot tell real from fake (all zero)."""
    site_mask = torch.tensor([[True, True], [True, False], [True, True]])[:b]
    weight = site_mask[..., None].float().expand(b, p, k) / k
    zeros = torch.zeros
    return DIMScores(
        site_mask=site_mask,
        derangement=derangement(b, random=False),
        local_mean=zeros(b, p, width),
        local_logvar=zeros(b, p, width),
        global_mean=zeros(b, e),
        global_logvar=zeros(b, e),
        local_pos=zeros(b, p, k),
        local_pos_weight=weight,
        local_neg=zeros(3, b, p, k),
        local_neg_weight=torch.stack([weight] * 3),
        global_scores=zeros(b, p, b),
        **extra,
    )


def test_dim_loss_reads_the_typed_record():
    scores = record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores.local_pos = torch.ones(1)
    terms = DIMLoss()(scores)  # a critic at chance: JSD 2 log 2, no information
    for name in ("local", "global"):
        assert terms[name].item() == pytest.approx(2 * math.log(2))
        assert terms[f"{name}_mi"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["kl"] == 0 and terms["prior"] == 0  # N(0, 1) codes, no prior fields
    terms = DIMLoss(estimator="infonce")(record(global_engineered=torch.zeros(2, 3, 2)))
    assert terms["local"].item() == pytest.approx(math.log(4))  # 1 true among 4 candidates
    assert terms["global"].item() == pytest.approx(math.log(3 + 2))  # 3 crystals, 2 copies
    prior = record(prior_real=torch.zeros(4, 1), prior_fake=torch.zeros(4, 1))
    assert DIMLoss(prior_weight=1.0)(prior)["prior"].item() == pytest.approx(2 * math.log(2))


# ------------------------------------------------------------------ critics
def test_local_critic_scores_gathered_neighbours_as_the_full_set():
    critic = LocalCritic(local_dim=4, n_site_features=8)
    batch = random_batch()
    local = torch.randn(4, 3, 4)
    distances = batch["pair_features"][..., 0]
    full = critic(local, batch["site_features"], batch["neighbor_site"], distances)
    columns = torch.randint(0, 9, (4, 3, 5))
    ids = torch.gather(batch["neighbor_site"][:, None].expand(-1, 3, -1), 2, columns)
    picked = critic(local, batch["site_features"], ids, distances.gather(2, columns))
    torch.testing.assert_close(picked, full.gather(2, columns))


def test_global_critic_scores_a_copy_of_the_sites_as_the_sites():
    critic = GlobalCritic(embedding_dim=6, local_dim=4)
    embedding, local = torch.randn(3, 6), torch.randn(3, 2, 4)
    scores, engineered = critic(embedding, local, torch.stack([local, local]))
    assert scores.shape == (3, 2, 3) and engineered.shape == (2, 3, 2)
    own = scores[torch.arange(3), :, torch.arange(3)]  # (B, P): each site with its crystal
    torch.testing.assert_close(engineered[0], own)
    assert critic(embedding, local, None)[1] is None


def test_distance_weights_and_neighbour_sampling():
    batch = random_batch()
    weights = distance_weights(batch["pair_features"][..., 0], batch["pair_mask"])
    sums = weights.sum(-1)
    torch.testing.assert_close(sums[batch["site_mask"]], torch.ones(int(batch["site_mask"].sum())))
    assert (sums[~batch["site_mask"]] == 0).all() and (weights[~batch["pair_mask"]] == 0).all()
    drawn = sample_neighbors(weights, 4000)
    assert drawn.shape == (4, 3, 4000)
    real = batch["site_mask"]
    assert batch["pair_mask"].gather(2, drawn)[real].all()  # never a padding neighbour
    frequency = torch.nn.functional.one_hot(drawn, 9).float().mean(2)
    torch.testing.assert_close(frequency[real], weights[real], atol=0.03, rtol=0)


# ------------------------------------------------------------------ negatives
def test_partner_rows_take_real_sites_of_the_partner():
    batch = random_batch()
    sigma = derangement(4, random=True)
    rows = partner_rows(batch["site_mask"], sigma)
    assert take_rows(batch["site_mask"], sigma, rows).all()
    torch.testing.assert_close(
        take_rows(batch["site_features"], sigma, rows)[0, 0], batch["site_features"][sigma[0], 0]
    )


def test_engineered_negatives_are_fixed_in_validation_and_drawn_in_training():
    batch = random_batch()
    sigma = derangement(4, random=False)
    first, again = (engineered_negatives(batch, sigma, random=False) for _ in range(2))
    assert all(torch.equal(first[k], again[k]) for k in batch)
    assert first.keys() == batch.keys() and first["site_mask"].shape[0] == 12
    torch.manual_seed(1)
    drawn = [engineered_negatives(batch, sigma, random=True)["neighbor_site"] for _ in range(5)]
    assert any(not torch.equal(drawn[0], other) for other in drawn[1:])
