"""Assembled networks: supervised Site-Net and the Deep InfoMax pretraining model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import torch
from torch import nn

from skdim.nn.critics import (
    GlobalCritic,
    GradientReversal,
    LocalCritic,
    distance_weights,
    sample_neighbors,
)
from skdim.nn.encoder import SiteNetEncoder, encoder_config
from skdim.nn.infomax import DIMScores
from skdim.nn.layers import MLP, Linear, OutputActivation
from skdim.nn.local_negatives import matched_fake_neighbours, pick_columns
from skdim.nn.negatives import (
    Corruption,
    composition_matched_negatives,
    derangement,
    identical_copies,
    partner_rows,
    take_rows,
)
from skdim.nn.negatives import engineered_negatives as _engineered_negatives
from skdim.nn.pretext import build_pretext

#: Distances (Angstrom) up to which a pair is a site's own copy (d = 0).
SELF_DISTANCE = 1e-4


class SiteNet(nn.Module):
    """Site-Net encoder with a regression (or classification-logit) head.

    Predictions are ``output(head(embedding)) * target_scale + target_shift``;
    the two buffers are set by the estimator from the training targets, so the
    head works on standardized targets.

    Parameters
    ----------
    n_site_features, n_pair_features : int
        Input widths (F and C).
    preset : {"paper", "dim"}, default="paper"
        Encoder architecture (see :data:`skdim.nn.PRESETS`).
    n_outputs : int, default=1
        Number of targets (or classes).
    head_hidden : sequence of int, default=()
        Hidden widths of the head MLP.
    output : {"identity", "softplus", "trelu"}, default="identity"
        Output nonlinearity.
    **encoder_options
        Replace settings of the preset (e.g. ``n_blocks=3``).

    Attributes
    ----------
    encoder : SiteNetEncoder
        The encoder (the part a DIM pretrainer initializes).
    head : MLP
        Regression head on the crystal embedding.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNet
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> model = SiteNet(n_blocks=1, output="softplus")  # "paper" preset, one block
    >>> prediction = model(**batch)
    >>> prediction.shape, bool((prediction >= 0).all())
    (torch.Size([2, 1]), True)
    """

    def __init__(
        self,
        n_site_features: int = 8,
        n_pair_features: int = 1,
        *,
        preset: str = "paper",
        n_outputs: int = 1,
        head_hidden: Sequence[int] = (),
        output: str = "identity",
        **encoder_options,
    ):
        super().__init__()
        config = encoder_config(preset, **encoder_options)
        self.encoder = SiteNetEncoder(n_site_features, n_pair_features, **config)
        self.head = MLP(self.encoder.embedding_dim, head_hidden, n_outputs)
        self.output = OutputActivation(output)
        self.register_buffer("target_shift", torch.zeros(n_outputs))
        self.register_buffer("target_scale", torch.ones(n_outputs))

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """Predictions for a padded batch.

        Parameters
        ----------
        **batch : tensor
            The batch of :func:`skdim.data.collate_sitenet` (see
            :meth:`SiteNetEncoder.encode_sites` for the shapes).

        Returns
        -------
        tensor of shape (B, n_outputs)
        """
        prediction = self.output(self.head(self.encoder(**batch)))
        return prediction * self.target_scale + self.target_shift


class SiteNetDIM(nn.Module):
    """Deep InfoMax around a Site-Net encoder: encoder, corruption and critics as parts.

    Composed like PyTorch Geometric's ``DeepGraphInfomax``: it receives an
    encoder and a corruption (or builds the defaults) and adds the critics.
    One forward pass computes everything :class:`~skdim.nn.DIMLoss` needs (a
    :class:`~skdim.nn.DIMScores`):

    * local: the site representation l_i (with reparameterized Gaussian noise
      in training) against its true neighbours (s_u(j), d_ij) and three
      corrupted neighbour sets taken from a deranged partner crystal (all
      fake; fake distances; fake identities), weighted by (d + 1)^-2;
    * global: the crystal embedding g against its sites' l_i, against the
      partner crystal's g, and against sites re-encoded from the corrupted
      copies of the batch (by default the engineered negatives: wrong
      composition, wrong geometry, shuffled neighbours), encoded in one
      batched pass without gradients.

    Parameters
    ----------
    n_site_features, n_pair_features : int
        Input widths (F and C) of the encoder it builds.
    encoder : SiteNetEncoder or None, default=None
        The encoder to pretrain; None builds one from ``preset``,
        ``n_site_features``, ``n_pair_features`` and ``**encoder_options``
        (which must then be left out). It needs a ``local_dim`` bottleneck.
    corruption : Corruption, "matched" or None, default=None
        Turns a batch into corrupted copies whose sites are global negatives
        (see :class:`~skdim.nn.negatives.Corruption`); "matched" uses
        :func:`~skdim.nn.negatives.composition_matched_negatives`; None uses
        :func:`~skdim.nn.engineered_negatives` when ``engineered_negatives``
        is True.
    preset : {"dim", "paper"}, default="dim"
        Architecture of the encoder it builds; it needs a ``local_dim``
        bottleneck.
    projection_dim : int, default=128
        Width of the critics' projection spaces.
    critic_hidden : int, default=64
        Hidden width of the critics.
    engineered_negatives : bool, default=True
        Add the corrupted copies to the global objective; False leaves the
        partner crystals as the only global negatives (and refuses a
        ``corruption``).
    global_trains_local : bool, default=False
        Let the global objective's gradients reach the local encoder (the
        original detaches the site representations, which gave better
        embeddings in our tests).
    prior_matching : bool, default=False
        Add adversarial prior matching against N(0, 1) (discriminators trained
        through a gradient-reversal layer).
    local_samples : int or None, default=16
        In training, estimate the distance-weighted local objective from this
        many neighbours per site, drawn with probability (d + 1)^-2
        (importance sampling: unbiased, J / local_samples times cheaper).
        None uses every neighbour; validation always does.
    self_pairs : bool, default=True
        Keep each site's own copy (d = 0) among its neighbours in the local
        objective, as the original does. False drops it: with it the local
        term is largely an identity check.
    local_negatives : {"partner", "matched"}, default="partner"
        The local objective's three fake neighbour sets. "partner" (the
        original): the partner crystal's atoms at its distances, one's own
        atoms at the partner's distances, the partner's atoms at one's own
        distances. "matched" keeps one's composition: one's own atoms at the
        partner's distances, one's own distances with the atoms' identities
        shuffled over the supercell, one's own atoms at distances strained by
        10-25 %. Fake pairs equal to a true pair (same element within
        1e-3 Angstrom) are dropped.
    leave_one_out : bool, default=False
        Score each site against the crystal embedding of the *other* sites
        (mean pooling only); sites of one-site crystals leave the global term.
    negatives_grad : bool, default=False
        Encode the corrupted copies with gradient, so the global objective's
        negatives train the encoder (the original encodes them without).
    drop_identical : bool, default=False
        Leave out corrupted copies that are the crystal itself (for example
        the species of rock salt swapped), found by
        :func:`~skdim.nn.negatives.identical_copies`.
    infomax : bool, default=True
        Compute the Deep InfoMax critics. False leaves only the ``pretext``
        tasks (and no Gaussian codes).
    pretext : mapping of str to module, sequence of str, or None, default=None
        Pretext tasks (:mod:`skdim.nn.pretext`) run on the same encoder, as
        modules by name or as names of :data:`~skdim.nn.pretext.PRETEXT_TASKS`
        (built for the encoder); their losses go into ``DIMScores.pretext``.
    pair_channels : tuple of str, default=("distance",)
        Names of the pair channels, for the corruptions that strain distances.
    **encoder_options
        Replace settings of the preset.

    Attributes
    ----------
    encoder : SiteNetEncoder
        The encoder being pretrained.
    corruption : Corruption or None
        The corruption of the global negatives.
    local_critic : LocalCritic
        Scores a site representation against its neighbours.
    global_critic : GlobalCritic
        Scores a crystal embedding against site representations.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import SiteNetDIM, SiteNetEncoder, encoder_config
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> model = SiteNetDIM().eval()  # eval: fixed negatives, all neighbours
    >>> embedding, scores = model(**batch)
    >>> embedding.shape, scores.global_scores.shape  # (B, E), (B, P, B)
    (torch.Size([2, 64]), torch.Size([2, 2, 2]))
    >>> scores.local_neg.shape  # 3 kinds of fake neighbours, (3, B, P, J)
    torch.Size([3, 2, 2, 27])
    >>> encoder = SiteNetEncoder(8, 1, **encoder_config("dim", n_blocks=2))
    >>> SiteNetDIM(encoder=encoder).encoder is encoder  # an encoder of one's own
    True
    """

    def __init__(
        self,
        n_site_features: int = 8,
        n_pair_features: int = 1,
        *,
        encoder: SiteNetEncoder | None = None,
        corruption: Corruption | str | None = None,
        preset: str = "dim",
        projection_dim: int = 128,
        critic_hidden: int = 64,
        engineered_negatives: bool = True,
        global_trains_local: bool = False,
        prior_matching: bool = False,
        local_samples: int | None = 16,
        self_pairs: bool = True,
        local_negatives: str = "partner",
        leave_one_out: bool = False,
        negatives_grad: bool = False,
        drop_identical: bool = False,
        infomax: bool = True,
        pretext: Mapping[str, nn.Module] | Sequence[str] | None = None,
        pair_channels: Sequence[str] = ("distance",),
        **encoder_options,
    ):
        super().__init__()
        if encoder is None:
            config = encoder_config(preset, **encoder_options)
            encoder = SiteNetEncoder(n_site_features, n_pair_features, **config)
        elif encoder_options:
            raise ValueError(
                f"encoder options {sorted(encoder_options)} apply to the encoder SiteNetDIM "
                "builds; with encoder=..., set them on that encoder"
            )
        if corruption is not None and not engineered_negatives:
            raise ValueError("a corruption was given but engineered_negatives=False")
        if local_negatives not in ("partner", "matched"):
            raise ValueError(
                f"local_negatives must be 'partner' or 'matched', got {local_negatives!r}"
            )
        if leave_one_out and encoder.pooling != "mean":
            raise ValueError("leave_one_out needs an encoder with mean pooling")
        pair_channels = tuple(pair_channels)
        if corruption == "matched":
            corruption = partial(composition_matched_negatives, channels=pair_channels)
        elif corruption is None and engineered_negatives:
            corruption = _engineered_negatives
        self.encoder = encoder
        self.local_samples = local_samples
        local_dim, embedding_dim = encoder.local_dim, encoder.embedding_dim
        self.local_logvar = Linear(encoder.summary_dim, local_dim)
        self.global_logvar = Linear(encoder.post_pool.out_dim, embedding_dim)
        n_sites = encoder.site_mean.shape[0]  # the width of the raw site features
        self.local_critic = LocalCritic(local_dim, n_sites, critic_hidden, projection_dim)
        self.global_critic = GlobalCritic(embedding_dim, local_dim, critic_hidden, projection_dim)
        self.corruption = corruption
        self.global_trains_local = global_trains_local
        self.prior_local = MLP(local_dim, [256], 1) if prior_matching else None
        self.prior_global = MLP(embedding_dim, [256], 1) if prior_matching else None
        self.self_pairs, self.local_negatives = self_pairs, local_negatives
        self.leave_one_out, self.negatives_grad = leave_one_out, negatives_grad
        self.drop_identical, self.infomax = drop_identical, infomax
        self.pair_channels = pair_channels
        if pretext is not None and not isinstance(pretext, Mapping):
            pretext = {name: build_pretext(name, encoder, pair_channels) for name in pretext}
        self.pretext = nn.ModuleDict(pretext or {})

    def forward(self, **batch: torch.Tensor) -> tuple[torch.Tensor, DIMScores]:
        """Embeddings and the critics' scores for :class:`DIMLoss`.

        Parameters
        ----------
        **batch : tensor
            The batch of :func:`skdim.data.collate_sitenet` (see
            :meth:`SiteNetEncoder.encode_sites` for the shapes), with at
            least 2 crystals.

        Returns
        -------
        embedding : tensor of shape (B, embedding_dim)
            The crystal embeddings g (noise-free).
        scores : DIMScores
            Positive and negative critic scores, weights, masks, Gaussian
            code parameters and pretext losses: the input of :class:`DIMLoss`.
        """
        site_mask = batch["site_mask"]
        pretext = {
            name: task(self.encoder, batch, random=self.training)
            for name, task in self.pretext.items()
        }
        if not self.infomax:  # the embedding is returned, not trained: no graph for it
            with torch.no_grad():
                embedding = self.encoder(**batch)
            return embedding, DIMScores(site_mask=site_mask, pretext=pretext)
        sigma = derangement(len(site_mask), random=self.training, device=site_mask.device)
        batch = {**batch, "pair_embedding": self.encoder.embed_pairs(batch["pair_features"])}
        local, summary = self.encoder.encode_sites(**batch)
        local_logvar = self.local_logvar(summary)
        noisy_local = _sample(local, local_logvar, self.training)
        global_input = local if self.global_trains_local else local.detach()
        embedding, hidden = self.encoder.readout(global_input, site_mask)
        global_logvar = self.global_logvar(hidden)
        local_scores = self._local_scores(batch, noisy_local, sigma)
        corrupted = identical = None
        if self.corruption is not None:
            with torch.set_grad_enabled(self.negatives_grad and torch.is_grad_enabled()):
                source = batch
                if not self.negatives_grad:
                    source = {**batch, "pair_embedding": batch["pair_embedding"].detach()}
                copies = self.corruption(source, sigma, random=self.training)
                corrupted = self.encoder.encode_sites(**copies)[0].unflatten(0, (-1, len(sigma)))
            if self.drop_identical:
                identical = identical_copies(batch, copies)
        noisy_embedding = _sample(embedding, global_logvar, self.training)
        if self.leave_one_out:
            global_scores, engineered, global_mask = self._leave_one_out_scores(
                global_input, site_mask, noisy_embedding, global_logvar, corrupted
            )
        else:
            global_scores, engineered = self.global_critic(
                noisy_embedding, global_input, corrupted
            )
            global_mask = None
        prior_real = prior_fake = None
        if self.prior_local is not None:
            fake_local = GradientReversal.apply(local[site_mask])
            fake_global = GradientReversal.apply(embedding)
            prior_real = torch.cat(
                [
                    self.prior_local(torch.randn_like(fake_local)),
                    self.prior_global(torch.randn_like(fake_global)),
                ]
            )
            prior_fake = torch.cat([self.prior_local(fake_local), self.prior_global(fake_global)])
        scores = DIMScores(
            site_mask=site_mask,
            derangement=sigma,
            local_mean=local,
            local_logvar=local_logvar,
            global_mean=embedding,
            global_logvar=global_logvar,
            **local_scores,
            global_scores=global_scores,
            global_site_mask=global_mask,
            global_engineered=engineered,
            engineered_identical=identical,
            prior_real=prior_real,
            prior_fake=prior_fake,
            pretext=pretext,
        )
        return embedding, scores

    def _leave_one_out_scores(self, local, site_mask, embedding, logvar, corrupted):
        """Global scores with each site's own crystal summarized without it.

        ``scores[b, i, c]`` is site i of b against crystal c's embedding, and
        against the embedding of b's other sites where c = b. Returns the
        scores, the engineered negatives' scores (against the same
        leave-one-out embeddings) and the sites that have other sites.
        """
        encoder = self.encoder
        per_site = encoder.pre_pool(local) * site_mask[..., None]  # (B, P, H)
        n_sites = site_mask.sum(1, keepdim=True)  # (B, 1)
        others = (per_site.sum(1, keepdim=True) - per_site) / (n_sites - 1).clamp(min=1)[..., None]
        hidden = encoder.post_pool(others)
        own = encoder.project(hidden) if encoder.project is not None else hidden  # (B, P, E)
        if self.training:
            own = own + torch.exp(0.5 * logvar)[:, None] * torch.randn_like(own)
        critic = self.global_critic
        sites = critic.site(local)  # (B, P, D)
        scores = torch.einsum("bpd,cd->bpc", sites, critic.crystal(embedding))
        own_crystal = critic.crystal(own)  # (B, P, D)
        diagonal = torch.eye(len(local), dtype=torch.bool, device=local.device)[:, None, :]
        scores = torch.where(diagonal, (sites * own_crystal).sum(-1)[..., None], scores)
        engineered = None
        if corrupted is not None:
            engineered = torch.einsum("kbpd,bpd->kbp", critic.site(corrupted), own_crystal)
        return scores, engineered, site_mask & (n_sites > 1)

    def _local_scores(self, batch, local, sigma) -> dict[str, torch.Tensor]:
        site_mask, pair_mask = batch["site_mask"], batch["pair_mask"]
        encoder = self.encoder
        sites = (batch["site_features"] - encoder.site_mean) / encoder.site_std
        distances = batch["pair_features"][..., 0]
        if not self.self_pairs:
            pair_mask = pair_mask & (distances > SELF_DISTANCE)
        rows = partner_rows(site_mask, sigma)
        fake_distances = take_rows(distances, sigma, rows)
        fake_mask = site_mask[..., None] & take_rows(pair_mask, sigma, rows)
        own_ids, partner_ids = batch["neighbor_site"], batch["neighbor_site"][sigma]
        true_weight = distance_weights(distances, pair_mask)
        fake_weight = distance_weights(fake_distances, fake_mask)
        if self.training and self.local_samples:
            true_cols = sample_neighbors(true_weight, self.local_samples)
            fake_cols = sample_neighbors(fake_weight, self.local_samples)
            d_true, d_fake = distances.gather(2, true_cols), fake_distances.gather(2, fake_cols)
            own_true, own_fake = pick_columns(own_ids, true_cols), pick_columns(own_ids, fake_cols)
            partner_true, partner_fake = (
                pick_columns(partner_ids, true_cols),
                pick_columns(partner_ids, fake_cols),
            )
            true_weight = fake_weight = (
                site_mask[..., None].to(d_true.dtype).expand_as(d_true) / self.local_samples
            )
        else:
            true_cols = fake_cols = None
            d_true, d_fake = distances, fake_distances
            own_true = own_fake = own_ids
            partner_true = partner_fake = partner_ids
        critic, partner_sites = self.local_critic, sites[sigma]
        if self.local_negatives == "matched":
            fakes = matched_fake_neighbours(
                batch, pair_mask, (d_true, own_true, true_weight, true_cols),
                (d_fake, own_fake, fake_weight), random=self.training,
            )  # fmt: skip
            return {
                "local_pos": critic(local, sites, own_true, d_true),
                "local_pos_weight": true_weight,
                "local_neg": torch.stack([critic(local, sites, i, d) for i, d, _ in fakes]),
                "local_neg_weight": torch.stack([w for _, _, w in fakes]),
            }
        return {
            "local_pos": critic(local, sites, own_true, d_true),
            "local_pos_weight": true_weight,
            "local_neg": torch.stack(
                [
                    critic(local, partner_sites, partner_fake, d_fake),  # all fake
                    critic(local, sites, own_fake, d_fake),  # fake distances
                    critic(local, partner_sites, partner_true, d_true),  # fake identities
                ]
            ),
            "local_neg_weight": torch.stack([fake_weight, fake_weight, true_weight]),
        }


def _sample(mean: torch.Tensor, logvar: torch.Tensor, training: bool) -> torch.Tensor:
    """Reparameterized Gaussian sample in training, the mean otherwise."""
    if not training:
        return mean
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
