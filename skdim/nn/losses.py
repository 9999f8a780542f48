"""Deep InfoMax objective: JSD (default) or InfoNCE estimators, Gaussian KL, prior term."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import cross_entropy

from skdim.nn.infomax import DIMScores
from skdim.nn.layers import MASK_FILL, softplus

#: The regression losses of ``SiteNetRegressor(loss=...)``, by name.
REGRESSION_LOSSES = {"mae": nn.L1Loss, "mse": nn.MSELoss, "huber": nn.HuberLoss}


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per dimension: 0.5 (mu^2 + s^2 - log s^2 - 1).

    Parameters
    ----------
    mean, logvar : tensor
        Mean and log-variance of a diagonal Gaussian, of the same shape.

    Returns
    -------
    tensor of the same shape
        The KL divergence of each dimension, in nats (0 for N(0, 1)).

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import gaussian_kl
    >>> gaussian_kl(torch.tensor([0.0, 1.0]), torch.zeros(2)).tolist()
    [0.0, 0.5]
    """
    return 0.5 * (mean**2 + logvar.exp() - logvar - 1.0)


def crystal_mean(per_site: torch.Tensor, site_mask: torch.Tensor) -> torch.Tensor:
    """Mean over each crystal's sites, then over crystals (every crystal counts once).

    Crystals without a site in ``site_mask`` are left out.
    """
    mask = site_mask.to(per_site.dtype)
    count = mask.sum(1)
    per_crystal = (per_site * mask).sum(1) / count.clamp(min=1)
    if bool((count > 0).all()):
        return per_crystal.mean()
    return per_crystal[count > 0].sum() / (count > 0).sum().clamp(min=1)


class DIMLoss(nn.Module):
    """Weighted Deep InfoMax loss computed from the scores of :class:`SiteNetDIM`.

    It reads a :class:`~skdim.nn.DIMScores` record, whatever module built it.

    ``loss = local_weight * local + global_weight * global
    + kl_weight * (KL_local + KL_global) + prior_weight * prior``.

    With ``estimator="jsd"`` (default) each objective is the Jensen-Shannon
    bound of the original: ``E_pos[sp(-T)] + E_neg[sp(T)]``, minimized. It is
    the default because, unlike InfoNCE, its value and gradients do not depend
    on the number of negatives, which varies with the pair-budget batches, and
    it was the estimator that DIM (Hjelm et al., 2019) found most stable.
    ``estimator="infonce"`` uses a softmax over the candidates instead: all
    crystals of the batch plus the engineered negatives for the global term,
    the three corrupted neighbours for the local term.

    Parameters
    ----------
    local_weight, global_weight : float, default=1.0
        Weights of the local (site against neighbours) and global (crystal
        against sites) objectives.
    kl_weight : float, default=0.1
        Weight of the Gaussian KL regularizer of site and crystal codes.
    prior_weight : float, default=0.0
        Weight of adversarial prior matching (needs a :class:`SiteNetDIM`
        built with ``prior_matching=True``).
    estimator : {"jsd", "infonce"}, default="jsd"
        Mutual-information estimator.
    pretext_weights : mapping of str to float or None, default=None
        Weight of each pretext task's loss (:mod:`skdim.nn.pretext`), by the
        task's name; a task without a weight counts with weight 1.

    Examples
    --------
    >>> import torch
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import DIMLoss, SiteNetDIM
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> _ = torch.manual_seed(0)
    >>> embedding, scores = SiteNetDIM()(**batch)
    >>> terms = DIMLoss()(scores)
    >>> sorted(terms)
    ['global', 'global_mi', 'kl', 'local', 'local_mi', 'loss', 'prior']
    >>> terms["loss"].requires_grad, terms["loss"].shape
    (True, torch.Size([]))
    """

    def __init__(
        self,
        local_weight: float = 1.0,
        global_weight: float = 1.0,
        kl_weight: float = 0.1,
        prior_weight: float = 0.0,
        estimator: str = "jsd",
        pretext_weights: dict[str, float] | None = None,
    ):
        super().__init__()
        if estimator not in ("jsd", "infonce"):
            raise ValueError(f"estimator must be 'jsd' or 'infonce', got {estimator!r}")
        self.local_weight, self.global_weight = local_weight, global_weight
        self.kl_weight, self.prior_weight = kl_weight, prior_weight
        self.estimator = estimator
        self.pretext_weights = dict(pretext_weights or {})

    def forward(self, scores: DIMScores) -> dict[str, torch.Tensor]:
        """Compute the loss and its parts.

        Parameters
        ----------
        scores : DIMScores
            The second output of :meth:`SiteNetDIM.forward`.

        Returns
        -------
        dict with ``loss`` (the scalar to minimize), ``local``, ``global``,
        ``kl``, ``prior`` (terms) and ``local_mi``, ``global_mi`` (the
        estimator's mutual-information estimates in nats, 0 at chance and
        higher is better: 2 log 2 - loss for JSD, log(candidates) - loss for
        InfoNCE); for each pretext task ``name``, its loss ``name`` and its
        figure ``name_metric``. Terms of parts the model did not compute
        (``infomax=False``) are 0.
        """
        mask = scores.site_mask
        zero = torch.zeros((), device=mask.device)
        local = local_mi = global_ = global_mi = kl = zero
        if scores.local_pos is not None:
            local, local_mi = self._local(scores)
            global_, global_mi = self._global(scores)
            kl = (
                crystal_mean(gaussian_kl(scores.local_mean, scores.local_logvar).mean(-1), mask)
                + gaussian_kl(scores.global_mean, scores.global_logvar).mean()
            )
        prior = zero
        if scores.prior_real is not None:
            prior = softplus(-scores.prior_real).mean() + softplus(scores.prior_fake).mean()
        loss = (
            self.local_weight * local
            + self.global_weight * global_
            + self.kl_weight * kl
            + self.prior_weight * prior
        )
        pretext = {}
        for name, (task_loss, metric) in scores.pretext.items():
            loss = loss + self.pretext_weights.get(name, 1.0) * task_loss
            pretext[name] = task_loss.detach()
            pretext[f"{name}_metric"] = metric.detach()
        return {
            "loss": loss,
            "local": local.detach(),
            "global": global_.detach(),
            "kl": kl.detach(),
            "prior": prior.detach(),
            "local_mi": local_mi.detach(),
            "global_mi": global_mi.detach(),
            **pretext,
        }

    def _local(self, s: DIMScores) -> tuple[torch.Tensor, torch.Tensor]:
        pos, pos_w = s.local_pos.float(), s.local_pos_weight
        neg, neg_w = s.local_neg.float(), s.local_neg_weight
        if self.estimator == "jsd":
            pos_term = (pos_w * softplus(-pos)).sum(-1)  # (B, P)
            neg_term = (neg_w * softplus(neg)).sum(-1).mean(0)
            per_site = pos_term + neg_term
            loss = crystal_mean(per_site, s.site_mask)
            return loss, 2 * math.log(2) - loss
        logits = torch.cat([pos[None], neg.masked_fill(neg_w <= 0, MASK_FILL)])  # (4, B, P, J)
        nll = -torch.log_softmax(logits, dim=0)[0]
        per_site = (pos_w * nll).sum(-1)
        loss = crystal_mean(per_site, s.site_mask)
        return loss, math.log(logits.shape[0]) - loss

    def _global(self, s: DIMScores) -> tuple[torch.Tensor, torch.Tensor]:
        scores, sigma = s.global_scores.float(), s.derangement
        mask = s.site_mask if s.global_site_mask is None else s.global_site_mask
        batch = torch.arange(scores.shape[0], device=scores.device)
        engineered, identical = s.global_engineered, s.engineered_identical
        if self.estimator == "jsd":
            positive = scores[batch, :, batch]  # (B, P)
            negatives = [scores[batch, :, sigma]]
            if engineered is not None:
                negatives += list(engineered.float())
            terms = torch.stack([softplus(n) for n in negatives])  # (1 + N, B, P)
            if identical is None:
                neg_term = terms.mean(0)
            else:  # the partner always counts; identical copies do not
                keep = torch.cat([torch.ones_like(identical[:1]), ~identical]).to(terms.dtype)
                neg_term = (terms * keep[..., None]).sum(0) / keep.sum(0)[:, None]
            per_site = softplus(-positive) + neg_term
            loss = crystal_mean(per_site, mask)
            return loss, 2 * math.log(2) - loss
        if engineered is not None:
            engineered = engineered.float()
            if identical is not None:
                engineered = engineered.masked_fill(identical[..., None], MASK_FILL)
        logits = (
            scores if engineered is None else torch.cat([scores, engineered.permute(1, 2, 0)], -1)
        )
        target = batch[:, None].expand(-1, scores.shape[1])
        nll = cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
        loss = crystal_mean(nll.view_as(target), mask)
        return loss, math.log(logits.shape[-1]) - loss
