"""What a Deep InfoMax model hands to its loss: the typed record :class:`DIMScores`.

The parts of Deep InfoMax live in modules of their own: the critics in
:mod:`skdim.nn.critics`, the negatives (partners and corruptions) in
:mod:`skdim.nn.negatives`, the objective in :mod:`skdim.nn.losses`
(:class:`~skdim.nn.DIMLoss`), and the model that assembles them around an
encoder in :mod:`skdim.nn.models` (:class:`~skdim.nn.SiteNetDIM`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True, kw_only=True)
class DIMScores:
    """Critic scores, weights and Gaussian codes of one batch, for :class:`~skdim.nn.DIMLoss`.

    The second output of :meth:`SiteNetDIM.forward <skdim.nn.SiteNetDIM.forward>`.
    B crystals of at most P sites, J neighbours (K sampled ones in training),
    E and L the widths of the crystal embedding and the site representation.
    Every Deep InfoMax field is None for a model built with ``infomax=False``.

    Parameters
    ----------
    site_mask : bool tensor of shape (B, P)
        Real sites.
    derangement : long tensor of shape (B,)
        Partner crystal of each crystal (:func:`~skdim.nn.derangement`).
    local_mean, local_logvar : tensor of shape (B, P, L)
        Gaussian code of each site (mean and log-variance).
    global_mean, global_logvar : tensor of shape (B, E)
        Gaussian code of each crystal.
    local_pos : tensor of shape (B, P, K)
        Local critic on each site's true neighbours.
    local_pos_weight : tensor of shape (B, P, K)
        Weight of each true neighbour (summing to 1 over a real site's).
    local_neg : tensor of shape (3, B, P, K)
        Local critic on the corrupted neighbours (all fake; fake distances;
        fake identities).
    local_neg_weight : tensor of shape (3, B, P, K)
        Their weights.
    global_scores : tensor of shape (B, P, B)
        Global critic: site i of crystal b against crystal c, at ``[b, i, c]``.
    global_site_mask : bool tensor of shape (B, P) or None, default=None
        Sites that take part in the global objective (None: every real site;
        a leave-one-out summary leaves out one-site crystals).
    global_engineered : tensor of shape (N, B, P) or None, default=None
        Global critic on the N corrupted copies of each crystal's sites
        against its own crystal (None without a corruption).
    engineered_identical : bool tensor of shape (N, B) or None, default=None
        Corrupted copies that are the crystal itself, left out of the loss
        (None: none are).
    prior_real, prior_fake : tensor of shape (M, 1) or None, default=None
        Prior discriminators on N(0, 1) samples and on the codes (None
        without prior matching).
    pretext : dict of str to (loss, metric) tensors, default={}
        Losses of the pretext tasks (:mod:`skdim.nn.pretext`) and the figure
        each records.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import DIMScores, SiteNetDIM
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> embedding, scores = SiteNetDIM(engineered_negatives=False).eval()(**batch)
    >>> isinstance(scores, DIMScores), scores.global_scores.shape, scores.global_engineered
    (True, torch.Size([2, 2, 2]), None)
    """

    site_mask: torch.Tensor
    derangement: torch.Tensor | None = None
    local_mean: torch.Tensor | None = None
    local_logvar: torch.Tensor | None = None
    global_mean: torch.Tensor | None = None
    global_logvar: torch.Tensor | None = None
    local_pos: torch.Tensor | None = None
    local_pos_weight: torch.Tensor | None = None
    local_neg: torch.Tensor | None = None
    local_neg_weight: torch.Tensor | None = None
    global_scores: torch.Tensor | None = None
    global_site_mask: torch.Tensor | None = None
    global_engineered: torch.Tensor | None = None
    engineered_identical: torch.Tensor | None = None
    prior_real: torch.Tensor | None = None
    prior_fake: torch.Tensor | None = None
    pretext: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
