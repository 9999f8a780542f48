"""Critics of Deep InfoMax: they score pairs of representations, real or negative.

A critic T(x, y) is high for pairs drawn together (a site and its true
neighbours, a crystal and its own sites) and low for pairs drawn apart (the
negatives of :mod:`skdim.nn.negatives`). Also here: the (d + 1)^-2 weights of
the local objective, the importance sampling of neighbours, and the gradient
reversal of adversarial prior matching.
"""

from __future__ import annotations

import torch
from torch import nn

from skdim.nn.activation import Mish, mish
from skdim.nn.layers import Linear, gather_sites


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


def distance_weights(distances: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(d + 1)^-2 weights normalized over the real neighbours of each site; 0 on padding.

    Parameters
    ----------
    distances : tensor of shape (B, P, J)
        Distances from each site to each neighbour.
    mask : bool tensor of shape (B, P, J)
        Real neighbours.

    Returns
    -------
    tensor of shape (B, P, J)
        Weights summing to 1 over the real neighbours of every real site.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn.critics import distance_weights
    >>> distances = torch.tensor([[[0.0, 1.0, 9.0]]])
    >>> weights = distance_weights(distances, torch.tensor([[[True, True, False]]]))
    >>> [round(w, 3) for w in weights[0, 0].tolist()]  # 1 : 1/4, normalized; padding 0
    [0.8, 0.2, 0.0]
    """
    weights = (distances + 1.0) ** -2 * mask
    return weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)


def sample_neighbors(weights: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Draw ``n_samples`` neighbour columns per site with probability ``weights``.

    Importance sampling of the distance-weighted local objective: the mean of
    a term over the drawn columns estimates its weighted sum over all
    neighbours without bias, at n_samples / J of the cost.

    Parameters
    ----------
    weights : tensor of shape (B, P, J)
        Normalized weights (rows of padding sites may be all zero).
    n_samples : int
        Columns drawn per site, with replacement.

    Returns
    -------
    long tensor of shape (B, P, n_samples)
    """
    flat = weights.flatten(0, 1)
    empty = flat.sum(-1, keepdim=True) <= 0
    flat = torch.where(empty, torch.ones_like(flat), flat)
    drawn = torch.multinomial(flat, n_samples, replacement=True)
    return drawn.view(*weights.shape[:2], n_samples)


class GradientReversal(torch.autograd.Function):
    """Identity forward, negated gradient backward (adversarial prior matching).

    The prior discriminators of :class:`~skdim.nn.SiteNetDIM` learn to tell
    codes from N(0, 1) samples; through this function the encoder receives the
    opposite gradient, which pushes its codes towards the prior.
    """

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        return -grad
