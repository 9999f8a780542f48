"""Fake neighbours of the local objective that keep the crystal's composition.

The paper's local negatives put the partner crystal's elements around a
site, which "is this element in my crystal?" tells apart. The ones here
(``SiteNetDIM(local_negatives="matched")``) use only the crystal's own
atoms, so the critic has to read where they are:

1. one's own atoms at the partner crystal's distances;
2. one's own distances with the identities of the supercell atoms shuffled;
3. one's own atoms at distances strained by 10-25 %.

A fake pair equal to a true one (the same element within
:data:`SAME_DISTANCE` of a real neighbour of that site) is not a negative
and weighs nothing.
"""

from __future__ import annotations

import torch

from skdim.nn.negatives import strain_negative_scales

#: Distances (Angstrom) within which a fake pair equals a true one.
SAME_DISTANCE = 1e-3


def pick_columns(ids: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Ids (B, J) at per-site columns (B, P, K): (B, P, K)."""
    return torch.gather(ids[:, None].expand(-1, columns.shape[1], -1), 2, columns)


def equals_a_true_pair(
    batch: dict[str, torch.Tensor], pair_mask: torch.Tensor, ids: torch.Tensor, d: torch.Tensor
) -> torch.Tensor:
    """Which fake pairs (element of site ``ids``, distance ``d``) equal a true pair of the site.

    Parameters
    ----------
    batch : dict of tensors
        The padded batch (``atomic_numbers``, ``neighbor_site``, ``pair_features``).
    pair_mask : bool tensor of shape (B, P, J)
        The true pairs that count.
    ids : long tensor of shape (B, J) or (B, P, K)
        Unit-cell site of each fake neighbour.
    d : tensor of shape (B, P, K)
        Distance of each fake neighbour.

    Returns
    -------
    bool tensor of shape (B, P, K)
    """
    z = batch["atomic_numbers"]
    z_atoms = torch.gather(z, 1, batch["neighbor_site"])  # (B, J)
    if ids.dim() == 2:
        ids = ids[:, None].expand(-1, d.shape[1], -1)
    z_fake = torch.gather(z, 1, ids.flatten(1)).view_as(ids)  # (B, P, K)
    true_d = batch["pair_features"][..., 0]  # (B, P, J)
    same = (z_fake[..., None] == z_atoms[:, None, None, :]) & (
        (d[..., None] - true_d[:, :, None, :]).abs() <= SAME_DISTANCE
    )
    return (same & pair_mask[:, :, None, :]).any(-1)


def matched_fake_neighbours(
    batch: dict[str, torch.Tensor],
    pair_mask: torch.Tensor,
    true: tuple,
    fake: tuple,
    *,
    random: bool,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The three composition-matched fake neighbour sets, as (ids, distances, weights).

    Parameters
    ----------
    batch : dict of tensors
        The padded batch.
    pair_mask : bool tensor of shape (B, P, J)
        The true pairs of the local objective.
    true : tuple
        ``(distances, ids, weights, columns)`` of the true neighbours scored
        (``columns`` (B, P, K) of the sampled ones, or None for all J).
    fake : tuple
        ``(distances, ids, weights)`` of the partner-distance neighbours.
    random : bool
        Random shuffles and strains (training) or fixed ones (validation).

    Returns
    -------
    list of three (ids, distances, weights)
        Weights are 0 where a fake pair equals a true one.
    """
    d_true, own_true, true_weight, true_cols = true
    d_fake, own_fake, fake_weight = fake
    valid = pair_mask[:, 0]  # (B, J): real supercell atoms
    if random:
        keys = torch.rand(valid.shape, device=valid.device).masked_fill(~valid, 2.0)
        order = keys.argsort(dim=1)
    else:  # every real atom takes the next real atom's identity
        n = valid.sum(1, keepdim=True)
        j = torch.arange(valid.shape[1], device=valid.device)[None]
        order = torch.where(valid, (j + 1) % n, j)
    shuffled = torch.gather(batch["neighbor_site"], 1, order)
    shuffled_true = pick_columns(shuffled, true_cols) if true_cols is not None else shuffled
    scale = strain_negative_scales(len(valid), random=random, device=valid.device)
    d_strained = d_true * scale[:, None, None].to(d_true.dtype)
    candidates = [(own_fake, d_fake, fake_weight), (shuffled_true, d_true, true_weight),
                  (own_true, d_strained, true_weight)]  # fmt: skip
    return [
        (ids, d, weight * ~equals_a_true_pair(batch, pair_mask, ids, d))
        for ids, d, weight in candidates
    ]
