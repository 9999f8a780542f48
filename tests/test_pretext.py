"""Pretraining objectives without composition shortcuts, and structure-forcing pretext tasks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import FAST
from pymatgen.core import Lattice, Structure

from skdim import DIMPretrainer
from skdim.data import SiteNetDataset, collate_sitenet
from skdim.featurize import featurize
from skdim.nn import DIMLoss, SiteNetDIM, SiteNetEncoder, derangement
from skdim.nn.layers import masked_stats
from skdim.nn.negatives import (
    composition_matched_negatives,
    identical_copies,
    permuted_species,
    strained_pairs,
)
from skdim.nn.objectives import OBJECTIVES, objective_settings
from skdim.nn.pretext import MaskedSiteTask, StrainTask


@pytest.fixture(scope="module")
def crystals(toy_structures):
    """NaCl, CsCl, Si, ZnO, Li2O, SrTiO3 and Po, featurized and batched."""
    srtio3 = Structure(
        Lattice.cubic(3.9),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    inputs = featurize([*toy_structures, srtio3, po], max_atoms=40)
    return collate_sitenet(list(SiteNetDataset(inputs)))[0]


def _scaled(batch):
    encoder = SiteNetEncoder()
    sites = batch["site_features"][batch["site_mask"]]
    encoder.set_feature_scaling(sites.mean(0), sites.std(0) + 1e-3, [3.0], [1.5])
    return encoder


# ------------------------------------------------------------------ negatives
def test_permuted_species_keeps_composition_and_geometry(crystals):
    for random in (False, True):
        copy = permuted_species(crystals, random=random)
        mask = crystals["site_mask"]
        for b in range(len(mask)):
            before = sorted(crystals["atomic_numbers"][b][mask[b]].tolist())
            assert sorted(copy["atomic_numbers"][b][mask[b]].tolist()) == before
        assert torch.equal(copy["pair_features"], crystals["pair_features"])
        srtio3 = 5
        assert not torch.equal(copy["atomic_numbers"][srtio3], crystals["atomic_numbers"][srtio3])


def test_identical_copies_are_found(crystals):
    sigma = derangement(len(crystals["site_mask"]), random=False)
    copies = composition_matched_negatives(crystals, sigma, random=False)
    identical = identical_copies(crystals, copies)
    # NaCl and CsCl with species swapped, Si and Po (one element) are themselves;
    # ZnO's swap (wurtzite is polar), Li2O's and SrTiO3's permutations are not
    assert identical[0].tolist() == [True, True, True, False, False, False, True]
    assert not identical[1].any()  # strained copies never are


def test_strained_pairs_move_distance_and_coulomb():
    pairs = torch.tensor([[[[2.0, 1.0], [4.0, -9.95]]]])
    out = strained_pairs(pairs, torch.tensor([1.1]), ("distance", "coulomb"))
    assert torch.allclose(out[..., 0], pairs[..., 0] * 1.1)
    assert torch.allclose(out[..., 1], torch.tensor([[[1.0 - math.log(1.1), -10.0]]]))
    with pytest.raises(ValueError, match="pair channels"):
        strained_pairs(pairs, torch.tensor([1.1]))


# -------------------------------------------------------------- fixed DIM
def test_fixed_local_term_has_no_self_pairs_and_no_negative_equal_to_a_positive(crystals):
    torch.manual_seed(0)
    model = SiteNetDIM(**objective_settings("dim_fixed"))
    model.encoder = _scaled(crystals)
    for training in (False, True):
        scores = model.train(training)(**crystals)[1]
        weight = scores.local_pos_weight
        assert torch.allclose(weight.sum(-1)[crystals["site_mask"]], torch.ones(()))
        if not training:  # every neighbour: the d = 0 columns weigh nothing
            own_copy = (crystals["pair_features"][..., 0] <= 1e-4) & crystals["pair_mask"]
            assert (weight[own_copy] == 0).all()
        # Po: every fake neighbour is a Po atom; the fake-distance and shuffled
        # ones at true Po-Po distances are true pairs and weigh nothing
        po = 6
        assert scores.local_neg_weight[1, po].sum() == 0


def test_paper_local_term_keeps_self_pairs(crystals):
    model = SiteNetDIM().eval()
    model.encoder = _scaled(crystals)
    weight = model(**crystals)[1].local_pos_weight
    own_copy = (crystals["pair_features"][..., 0] <= 1e-4) & crystals["pair_mask"]
    largest = weight.amax(-1, keepdim=True).expand_as(weight)
    assert torch.equal(weight[own_copy], largest[own_copy])  # the self pair weighs most


def test_leave_one_out_scores_a_site_against_the_other_sites(crystals):
    torch.manual_seed(0)
    model = SiteNetDIM(leave_one_out=True, engineered_negatives=False).eval()
    model.encoder = _scaled(crystals)
    scores = model(**crystals)[1]
    nacl = 0  # two sites: the summary of site 0 is the crystal of site 1 alone
    local = scores.local_mean[nacl : nacl + 1]
    alone = torch.tensor([[False, True] + [False] * (local.shape[1] - 2)])
    embedding, _ = model.encoder.readout(local, alone)
    critic = model.global_critic
    expected = (critic.site(local[0, 0]) * critic.crystal(embedding[0])).sum()
    assert torch.allclose(scores.global_scores[nacl, 0, nacl], expected, atol=1e-5)
    po = 6  # one site: nothing to compare it with
    assert not scores.global_site_mask[po].any()
    assert scores.global_site_mask[nacl, :2].all()


@pytest.mark.parametrize("with_grad", [False, True])
def test_negatives_train_the_encoder_only_when_asked(crystals, with_grad):
    torch.manual_seed(0)
    model = SiteNetDIM(corruption="matched", negatives_grad=with_grad).train()
    model.encoder = _scaled(crystals)
    scores = model(**crystals)[1]
    assert scores.global_engineered.requires_grad  # the critic always learns from them
    gradient = torch.autograd.grad(
        scores.global_engineered.sum(), model.encoder.site_in.parameters(), allow_unused=True
    )
    reached = any(g is not None and g.abs().sum() > 0 for g in gradient)
    assert reached == with_grad


def test_identical_copies_leave_the_global_loss(crystals):
    model = SiteNetDIM(corruption="matched", drop_identical=True).eval()
    model.encoder = _scaled(crystals)
    scores = model(**crystals)[1]
    assert scores.engineered_identical[0].tolist() == [True, True, True, False, False, False, True]
    loss = DIMLoss()(scores)["global"]
    # changing the scores of identical copies does not change the loss
    engineered = scores.global_engineered.clone()
    engineered[0, :3] += 100.0
    moved = DIMLoss()(type(scores)(**{**scores.__dict__, "global_engineered": engineered}))
    assert torch.allclose(moved["global"], loss)


# ------------------------------------------------------------- pretext tasks
def test_masked_site_prediction_cannot_see_the_masked_element(crystals):
    encoder = _scaled(crystals)
    task = MaskedSiteTask(encoder.local_dim, 8).eval()
    masked = task.choose(crystals["site_mask"], random=False)
    assert torch.equal(masked, task.choose(crystals["site_mask"], random=False))  # fixed
    assert (masked.sum(1) >= 1).all()
    assert not (masked & ~crystals["site_mask"]).any()
    loss, _ = task(encoder, crystals, random=False)
    # give every masked site another element: the loss's input logits stay the same
    other = dict(crystals)
    other["site_features"] = torch.where(
        masked[..., None], crystals["site_features"] + 3.0, crystals["site_features"]
    )
    other["atomic_numbers"] = crystals["atomic_numbers"].masked_fill(masked, 1)
    captured = []
    handle = task.head.register_forward_hook(lambda m, i, o: captured.append(o))
    task(encoder, crystals, random=False)
    task(encoder, other, random=False)
    handle.remove()
    assert torch.allclose(captured[0], captured[1], atol=1e-6)


def test_strain_task_encodes_the_strained_crystal(crystals):
    encoder = _scaled(crystals)
    task = StrainTask(encoder.embedding_dim).eval()
    scales = task.scales(7, random=False)
    assert scales.min() > 0.85 and scales.max() < 1.15
    seen = []
    handle = encoder.register_forward_pre_hook(lambda m, a, k: seen.append(k), with_kwargs=True)
    loss, error = task(encoder, crystals, random=False)
    handle.remove()
    expected = crystals["pair_features"][..., 0] * scales[:, None, None]
    assert torch.allclose(seen[0]["pair_features"][..., 0], expected)
    assert loss.requires_grad and 0 <= float(error) < 50
    with pytest.raises(ValueError, match="low < 1 < high"):
        StrainTask(64, low=1.0)


def test_pretext_only_model_has_no_dim_terms(crystals):
    model = SiteNetDIM(**objective_settings("masked"))
    terms = DIMLoss(pretext_weights={"masked": 2.0})(model(**crystals)[1])
    assert terms["local"] == 0 and terms["global"] == 0 and terms["kl"] == 0
    assert torch.allclose(terms["loss"], 2.0 * terms["masked"])
    assert 0 <= float(terms["masked_metric"]) <= 100


def test_masked_stats_pools_mean_std_min_max():
    x = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]])
    out = masked_stats(x, torch.tensor([[True, True, False]]))
    assert out.tolist() == [[2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 3.0, 2.0]]


# --------------------------------------------------------------- estimator
@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_every_objective_pretrains_saves_and_loads(small, objective, tmp_path):
    structures, _ = small
    model = DIMPretrainer(**{**FAST, "max_epochs": 1}, objective=objective).fit(structures)
    assert np.isfinite(model.history[-1, "train_loss"])
    for task in objective_settings(objective).get("pretext", ()):
        assert f"{task}_metric" in model.history[-1]
    model.save(tmp_path / "m")
    loaded = DIMPretrainer.load(tmp_path / "m")
    assert np.array_equal(loaded.transform(structures[:5]), model.transform(structures[:5]))


def test_fixed_objective_is_reproducible(small):
    structures, _ = small
    first, second = (
        DIMPretrainer(**FAST, objective="dim_fixed").fit(structures).transform(structures)
        for _ in range(2)
    )
    assert np.array_equal(first, second)


def test_site_stats_embedding(small, fitted_pretrainer):
    structures, _ = small
    model = fitted_pretrainer
    try:
        model.set_params(embedding="site_stats")
        out = model.transform(structures[:6])
        assert out.shape == (6, 256)
        assert list(model.get_feature_names_out()[[0, -1]]) == ["dim0", "dim255"]
    finally:
        model.set_params(embedding="pooled")


def test_unknown_objective_is_refused(small):
    structures, _ = small
    with pytest.raises(ValueError, match="objective"):
        DIMPretrainer(**FAST, objective="dim").fit(structures)


def test_cli_pretrain_offers_every_objective(capsys):
    from skdim.cli import main

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in OBJECTIVES:
        assert name in help_text
