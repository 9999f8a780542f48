"""Deep InfoMax pieces: negative sampling, engineered negatives and critics."""

from __future__ import annotations

import torch
from torch import nn

from skdim.nn.activation import Mish, mish
from skdim.nn.layers import Linear, gather_sites


def derangement(n: int, *, random: bool, device: torch.device | None = None) -> torch.Tensor:
    """Permutation of range(n) without fixed points: crystal b is paired with sigma[b] != b.

    A random one is a cyclic shift in a random order (uniform over cyclic
    permutations); the fixed one (for validation) pairs b with b + 1.

    Parameters
    ----------
    n : int
        Crystals in the batch.
    random : bool
        Draw a random derangement (training) or return the fixed one.
    device : torch.device or None, default=None
        Device of the result.

    Returns
    -------
    long tensor of shape (n,)
        sigma, with ``sigma[b] != b`` for every b.

    Raises
    ------
    ValueError
        If n < 2: negatives would have to come from the same crystal.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import derangement
    >>> derangement(4, random=False).tolist()
    [1, 2, 3, 0]
    >>> sigma = derangement(5, random=True)
    >>> bool((sigma != torch.arange(5)).all()), sorted(sigma.tolist())
    (True, [0, 1, 2, 3, 4])
    """
    if n < 2:
        raise ValueError(
            f"Deep InfoMax needs at least 2 crystals per batch to draw negatives, got {n}"
        )
    if not random:
        return torch.roll(torch.arange(n, device=device), -1)
    order = torch.randperm(n, device=device)
    sigma = torch.empty_like(order)
    sigma[order] = torch.roll(order, -1)
    return sigma


def partner_rows(site_mask: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Row of crystal sigma[b] that stands in for site i of crystal b: i mod P_sigma[b]."""
    n_sites = site_mask.sum(1)
    rows = torch.arange(site_mask.shape[1], device=site_mask.device)
    return rows[None, :] % n_sites[sigma][:, None]


def take_rows(x: torch.Tensor, sigma: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x[sigma[b], rows[b, i]] for a tensor x of shape (B, P, ...)."""
    return x[sigma[:, None], rows]


def engineered_negatives(
    batch: dict[str, torch.Tensor], sigma: torch.Tensor, *, random: bool
) -> dict[str, torch.Tensor]:
    """Three corrupted copies of a batch, stacked along the batch axis (3B crystals).

    1. wrong composition: site features (and atomic numbers) of crystal
       sigma[b] on the geometry of crystal b;
    2. wrong geometry: species of b with the pair features and neighbour
       mask of sigma[b];
    3. shuffled neighbours: the unit-cell identities of the supercell atoms
       of b permuted at random over its real atoms, distances kept.

    Parameters
    ----------
    batch : dict of tensors
        A padded batch (:func:`skdim.data.collate_sitenet`), optionally with
        ``pair_embedding`` (B, P, J, pair_dim), which is corrupted like the
        pair features.
    sigma : long tensor of shape (B,)
        Partner crystal of each crystal (:func:`derangement`).
    random : bool
        Shuffle neighbours at random (training), or shift each real atom's
        identity to the next real atom (deterministic, for validation).

    Returns
    -------
    dict of tensors
        The same keys as ``batch``, each with 3 B crystals: the
        wrong-composition, wrong-geometry and shuffled-neighbour copies, in
        that order.

    Examples
    --------
    >>> from pymatgen.core import Lattice, Structure
    >>> from skdim.data import SiteNetDataset, collate_sitenet
    >>> from skdim.featurize import featurize
    >>> from skdim.nn import derangement, engineered_negatives
    >>> cscl = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    >>> po = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    >>> batch, _ = collate_sitenet(list(SiteNetDataset(featurize([cscl, po], max_atoms=30))))
    >>> fake = engineered_negatives(batch, derangement(2, random=False), random=False)
    >>> fake["site_features"].shape  # 3 x 2 crystals
    torch.Size([6, 2, 8])
    >>> fake["atomic_numbers"][:2, 0].tolist()  # wrong composition: Po on CsCl, Cs on Po
    [84, 55]
    """
    site_mask, pair_mask = batch["site_mask"], batch["pair_mask"]
    rows = partner_rows(site_mask, sigma)
    composition = dict(batch)
    composition["site_features"] = take_rows(batch["site_features"], sigma, rows)
    composition["atomic_numbers"] = take_rows(batch["atomic_numbers"], sigma, rows)
    geometry = dict(batch)
    for key in ("pair_features", "pair_embedding"):
        if key in batch:
            geometry[key] = take_rows(batch[key], sigma, rows)
    geometry["pair_mask"] = site_mask[..., None] & take_rows(pair_mask, sigma, rows)
    shuffled = dict(batch)
    valid = pair_mask[:, 0]  # (B, J): real supercell atoms
    if random:
        keys = torch.rand(valid.shape, device=valid.device).masked_fill(~valid, 2.0)
        order = keys.argsort(dim=1)
    else:  # shift every real atom's identity to the next real atom
        n = valid.sum(1, keepdim=True)
        j = torch.arange(valid.shape[1], device=valid.device)[None]
        order = torch.where(valid, (j + 1) % n, j)
    shuffled["neighbor_site"] = torch.gather(batch["neighbor_site"], 1, order)
    return {k: torch.cat([composition[k], geometry[k], shuffled[k]]) for k in batch}


def _projection(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(Linear(in_dim, hidden), Mish(), Linear(hidden, out_dim))


class LocalCritic(nn.Module):
    """Bilinear critic between a site representation and one neighbour's raw inputs.

    T(l_i, s_j, d_ij) = q(l_i) . k(s_u(j), d_ij), with q and k two-layer MLPs
    into a ``projection_dim`` space. The key MLP's first layer is factorized
    (site term per site, distance term per pair) and the dot product is taken
    before the key's output layer, so no (B, P, J, projection_dim) tensor is
    built.

    Parameters
    ----------
    local_dim : int
        Width of the site representation.
    n_site_features : int
        Width of the (standardized) raw site features.
    hidden : int, default=64
        Hidden width of both MLPs.
    projection_dim : int, default=128
        Width of the shared projection space.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import LocalCritic
    >>> critic = LocalCritic(local_dim=32, n_site_features=8)
    >>> B, P, J = 2, 3, 10
    >>> local, sites = torch.randn(B, P, 32), torch.randn(B, P, 8)
    >>> neighbors, distances = torch.randint(0, P, (B, J)), 5 * torch.rand(B, P, J)
    >>> critic(local, sites, neighbors, distances).shape  # one score per (site, atom)
    torch.Size([2, 3, 10])
    """

    def __init__(
        self, local_dim: int, n_site_features: int, hidden: int = 64, projection_dim: int = 128
    ):
        super().__init__()
        self.query = _projection(local_dim, hidden, projection_dim)
        self.key_site = Linear(n_site_features, hidden)
        self.key_distance = Linear(1, hidden, bias=False)
        self.key_out = Linear(hidden, projection_dim)

    def forward(
        self,
        local: torch.Tensor,
        site_inputs: torch.Tensor,
        neighbors: torch.Tensor,
        distances: torch.Tensor,
    ) -> torch.Tensor:
        """Scores (B, P, K) of site i against its neighbours k.

        Parameters
        ----------
        local : tensor of shape (B, P, local_dim)
        site_inputs : tensor of shape (B, P', F)
            Features of the crystal whose atoms the neighbours are.
        neighbors : long tensor of shape (B, J) or (B, P, K)
            Unit-cell site (row of ``site_inputs``) of every neighbour: the
            same for all sites (B, J), or per site (B, P, K).
        distances : tensor of shape (B, P, K)

        Returns
        -------
        tensor of shape (B, P, K)
            Scores, higher for neighbours the critic takes to be real.
        """
        query = self.query(local)  # (B, P, D)
        folded = query @ self.key_out.weight  # (B, P, hidden)
        bias = query @ self.key_out.bias  # (B, P)
        keys = self.key_site(site_inputs)  # (B, P', hidden)
        if neighbors.dim() == 2:
            identity = gather_sites(keys, neighbors)[:, None]  # (B, 1, J, hidden)
        else:
            identity = gather_sites(keys, neighbors.flatten(1)).view(*neighbors.shape, -1)
        hidden = mish(identity + self.key_distance(distances[..., None]))
        return torch.einsum("bpjh,bph->bpj", hidden, folded) + bias[..., None]


def sample_neighbors(weights: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Draw ``n_samples`` neighbour columns per site with probability ``weights``.

    Importance sampling of the distance-weighted local objective: the mean of
    a term over the drawn columns estimates its weighted sum over all
    neighbours without bias, at n_samples / J of the cost.

    Parameters
    ----------
    weights : tensor of shape (B, P, J)
        Normalized weights (rows of padding sites may be all zero).

    Returns
    -------
    long tensor of shape (B, P, n_samples)
    """
    flat = weights.flatten(0, 1)
    empty = flat.sum(-1, keepdim=True) <= 0
    flat = torch.where(empty, torch.ones_like(flat), flat)
    drawn = torch.multinomial(flat, n_samples, replacement=True)
    return drawn.view(*weights.shape[:2], n_samples)


def distance_weights(distances: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(d + 1)^-2 weights normalized over the real neighbours of each site; 0 on padding."""
    weights = (distances + 1.0) ** -2 * mask
    return weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)


class GlobalCritic(nn.Module):
    """Bilinear critic between a crystal embedding and a site representation.

    Parameters
    ----------
    embedding_dim, local_dim : int
        Widths of the crystal embedding and the site representation.
    hidden : int, default=64
        Hidden width of both projection MLPs.
    projection_dim : int, default=128
        Width of the shared projection space.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import GlobalCritic
    >>> critic = GlobalCritic(embedding_dim=64, local_dim=32)
    >>> embedding, local = torch.randn(2, 64), torch.randn(2, 3, 32)  # B=2, P=3
    >>> scores, engineered = critic(embedding, local, torch.randn(3, 2, 3, 32))
    >>> scores.shape, engineered.shape
    (torch.Size([2, 3, 2]), torch.Size([3, 2, 3]))
    """

    def __init__(
        self, embedding_dim: int, local_dim: int, hidden: int = 64, projection_dim: int = 128
    ):
        super().__init__()
        self.crystal = _projection(embedding_dim, hidden, projection_dim)
        self.site = _projection(local_dim, hidden, projection_dim)

    def forward(
        self, embedding: torch.Tensor, local: torch.Tensor, negatives: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Score sites against crystals.

        Parameters
        ----------
        embedding : tensor of shape (B, E)
        local : tensor of shape (B, P, L)
        negatives : tensor of shape (K, B, P, L) or None
            Engineered false site representations, scored against their own
            crystal's embedding.

        Returns
        -------
        scores : tensor of shape (B, P, B)
            scores[b, i, c]: site i of crystal b against crystal c.
        engineered : tensor of shape (K, B, P) or None
        """
        crystals = self.crystal(embedding)  # (B, D)
        scores = torch.einsum("bpd,cd->bpc", self.site(local), crystals)
        if negatives is None:
            return scores, None
        return scores, torch.einsum("kbpd,bd->kbp", self.site(negatives), crystals)


class GradientReversal(torch.autograd.Function):
    """Identity forward, negated gradient backward (adversarial prior matching)."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return -grad
