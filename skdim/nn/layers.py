"""Building blocks: the Site-Net MLP layer, factorized pair projection, masked ops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skdim.nn.activation import Mish

#: Fill value for masked logits: finite, so fp16/bf16 autocast cannot make NaNs.
MASK_FILL = -1e9


class MLP(nn.Sequential):
    """Stack of Linear -> mish -> LayerNorm layers, optionally a plain Linear on top.

    Parameters
    ----------
    in_dim : int
        Input width.
    hidden : sequence of int
        Widths of the Linear -> mish -> LayerNorm layers.
    out_dim : int or None, default=None
        Width of a final plain Linear layer; None for no such layer.

    Attributes
    ----------
    out_dim : int
        Width of the output (``out_dim``, else the last hidden width, else
        ``in_dim``).

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import MLP
    >>> mlp = MLP(8, [16, 16], out_dim=1)
    >>> mlp(torch.zeros(4, 8)).shape, mlp.out_dim
    (torch.Size([4, 1]), 1)
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int | None = None):
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(in_dim, width), Mish(), nn.LayerNorm(width)]
            in_dim = width
        if out_dim is not None:
            layers.append(nn.Linear(in_dim, out_dim))
            in_dim = out_dim
        super().__init__(*layers)
        self.out_dim = in_dim


class PairwiseLinear(nn.Module):
    """Linear map of the bond vector concat(x_i, x_u(j), e_ij) without building it.

    Computes ``W_a x_i + W_b x_u(j) + W_c e_ij + b``: the two site terms are
    computed once per site and broadcast or gathered, so the (B, P, J, 2 D + E)
    concatenation is never materialized and the per-pair cost is E x out.

    Parameters
    ----------
    site_dim, pair_dim, out_dim : int
        Widths of x, e and the output.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import PairwiseLinear
    >>> project = PairwiseLinear(site_dim=4, pair_dim=2, out_dim=6)
    >>> sites, pairs = torch.randn(1, 3, 4), torch.randn(1, 3, 5, 2)  # B=1, P=3, J=5
    >>> neighbor_site = torch.tensor([[0, 1, 2, 0, 1]])
    >>> project(sites, pairs, neighbor_site).shape
    torch.Size([1, 3, 5, 6])
    """

    def __init__(self, site_dim: int, pair_dim: int, out_dim: int):
        super().__init__()
        self.center = nn.Linear(site_dim, out_dim)
        self.neighbor = nn.Linear(site_dim, out_dim, bias=False)
        self.pair = nn.Linear(pair_dim, out_dim, bias=False)

    def forward(
        self,
        sites: torch.Tensor,
        pairs: torch.Tensor,
        neighbor_site: torch.Tensor,
        n_out: int | None = None,
    ) -> torch.Tensor:
        """Project bonds.

        Parameters
        ----------
        sites : tensor of shape (B, P, site_dim)
        pairs : tensor of shape (B, P, J, pair_dim)
        neighbor_site : long tensor of shape (B, J)
        n_out : int, optional
            Compute only the first ``n_out`` outputs.

        Returns
        -------
        tensor of shape (B, P, J, n_out or out_dim)
        """
        n = self.center.out_features if n_out is None else n_out
        center = nn.functional.linear(sites, self.center.weight[:n], self.center.bias[:n])
        neighbors = gather_sites(sites @ self.neighbor.weight[:n].T, neighbor_site)  # (B, J, n)
        return center[:, :, None] + neighbors[:, None] + pairs @ self.pair.weight[:n].T


def gather_sites(sites: torch.Tensor, neighbor_site: torch.Tensor) -> torch.Tensor:
    """Rows of ``sites`` (B, P, D) picked by ``neighbor_site`` (B, J): (B, J, D)."""
    index = neighbor_site[..., None].expand(-1, -1, sites.shape[-1])
    return torch.gather(sites, 1, index)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax in float32 over ``dim`` ignoring masked entries; all-masked rows give 0.

    Parameters
    ----------
    logits : tensor
        Scores, any shape and float dtype.
    mask : bool tensor
        True where an entry takes part; broadcastable to ``logits``.
    dim : int
        Axis of the softmax.

    Returns
    -------
    tensor of the shape of ``logits``, float32
        Probabilities over the unmasked entries, 0 on masked ones.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import masked_softmax
    >>> logits = torch.tensor([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    >>> mask = torch.tensor([[True, True, False], [False, False, False]])
    >>> masked_softmax(logits, mask, dim=1).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]
    """
    logits = logits.float().masked_fill(~mask, MASK_FILL)
    return torch.softmax(logits, dim=dim) * mask


def masked_pool(x: torch.Tensor, mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool (B, P, D) over real sites (mask (B, P)) to (B, D) by mean or max.

    Parameters
    ----------
    x : tensor of shape (B, P, D)
        Per-site values.
    mask : bool tensor of shape (B, P)
        True for real sites, False for padding.
    mode : {"mean", "max"}, default="mean"
        Pooling.

    Returns
    -------
    tensor of shape (B, D)

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import masked_pool
    >>> x = torch.tensor([[[1.0], [3.0]], [[2.0], [100.0]]])
    >>> mask = torch.tensor([[True, True], [True, False]])  # the 100 is padding
    >>> masked_pool(x, mask).tolist(), masked_pool(x, mask, "max").tolist()
    ([[2.0], [2.0]], [[3.0], [2.0]])
    """
    if mode == "mean":
        weights = mask.to(x.dtype)[..., None]
        return (x * weights).sum(1) / weights.sum(1).clamp(min=1)
    if mode == "max":
        return x.masked_fill(~mask[..., None], torch.finfo(x.dtype).min).amax(1)
    raise ValueError(f"pooling must be 'mean' or 'max', got {mode!r}")


class OutputActivation(nn.Module):
    """Output nonlinearity of a regression head.

    Parameters
    ----------
    kind : {"identity", "softplus", "trelu"}
        "trelu" is the transparent ReLU of the original Site-Net: clamped at
        0 in the forward pass, identity gradient in the backward pass.

    Examples
    --------
    >>> import torch
    >>> from skdim.nn import OutputActivation
    >>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
    >>> y = OutputActivation("trelu")(x)
    >>> y.sum().backward()
    >>> y.tolist(), x.grad.tolist()
    ([0.0, 2.0], [1.0, 1.0])
    """

    def __init__(self, kind: str = "identity"):
        super().__init__()
        if kind not in ("identity", "softplus", "trelu"):
            raise ValueError(f"output must be 'identity', 'softplus' or 'trelu', got {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the nonlinearity elementwise.

        Parameters
        ----------
        x : tensor, any shape

        Returns
        -------
        tensor of the shape of ``x``
        """
        if self.kind == "softplus":
            return nn.functional.softplus(x)
        if self.kind == "trelu":
            return x + (x.clamp(min=0) - x).detach()
        return x

    def extra_repr(self) -> str:
        """The kind, shown by ``repr``.

        Returns
        -------
        str
        """
        return self.kind
