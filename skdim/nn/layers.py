"""Building blocks: the Site-Net MLP layer, factorized pair projection, masked ops."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from skdim.nn.activation import Mish, mish_layer_norm

#: Fill value for masked logits: finite, so fp16/bf16 autocast cannot make NaNs.
MASK_FILL = -1e9


#: Elements per piece in :func:`softplus`: below torch's parallel grain
#: (32,768), so no piece is split over threads, and a multiple of every
#: vector width, so the pieces keep the vector/scalar split of a serial run.
_SERIAL_PIECE = 16384


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``torch.nn.functional.softplus`` that does not depend on the number of CPU threads.

    Above 32,768 elements torch splits an elementwise op over its threads, and
    each thread finishes its share with a scalar loop whose softplus differs
    from the vectorized one in the last bit; which elements take the scalar
    loop then depends on the thread count. Here the (contiguous) input is cut
    into pieces too small to be split, at vector-aligned boundaries, which
    gives exactly the values, and gradients, of a one-thread run.

    Parameters
    ----------
    x : tensor

    Returns
    -------
    tensor of the shape of ``x``

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(50_001)
    >>> bool(torch.allclose(softplus(x), torch.nn.functional.softplus(x)))
    True
    """
    if x.numel() <= _SERIAL_PIECE or x.device.type != "cpu":
        return nn.functional.softplus(x)
    pieces = x.contiguous().view(-1).split(_SERIAL_PIECE)
    return torch.cat([nn.functional.softplus(piece) for piece in pieces]).view(x.shape)


class _AddBias(torch.autograd.Function):
    """``x + bias`` whose bias gradient is a matrix product, not a reduction."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.bias_dtype = bias.dtype
        return x + bias.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        rows = grad.reshape(-1, grad.shape[-1])
        bias_grad = rows.new_ones(1, rows.shape[0]) @ rows
        return grad, bias_grad[0].to(ctx.bias_dtype)


class Linear(nn.Linear):
    """``torch.nn.Linear`` whose gradients do not depend on the number of CPU threads.

    On CPU, torch sums the bias gradient over all rows with one partial sum
    per thread, so a run on two threads differs in the last bits from a run
    on one, and training amplifies the difference. skdim chooses its thread
    count from the idle cores (:mod:`skdim._threads`), so the load of the
    machine must not change the model (bitwise on the CPU kind tested, see
    the training guide). Here the bias gradient is the matrix
    product ``ones @ grad``, which the BLAS computes identically on any number
    of threads in the reproducible mode skdim selects. On other devices this
    is ``torch.nn.Linear``. Same parameters and state-dict keys.

    Examples
    --------
    >>> import torch
    >>> layer = Linear(4, 2)
    >>> x = torch.randn(3, 4)
    >>> bool(torch.allclose(layer(x), torch.nn.functional.linear(x, layer.weight, layer.bias)))
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``x W^T + b``.

        Parameters
        ----------
        x : tensor, last dimension ``in_features``

        Returns
        -------
        tensor, last dimension ``out_features``
        """
        if self.bias is None or x.device.type != "cpu" or not torch.is_grad_enabled():
            return nn.functional.linear(x, self.weight, self.bias)
        return _AddBias.apply(nn.functional.linear(x, self.weight), self.bias)


class LayerNorm(nn.LayerNorm):
    """``torch.nn.LayerNorm`` whose gradients do not depend on the number of threads.

    torch's fused CPU kernel sums the weight and bias gradients over the rows
    with one partial sum per thread, so two threads give other last bits than
    one. skdim chooses its thread count from the idle cores
    (:mod:`skdim._threads`), so the load of the machine must not change the
    model (bitwise on the CPU kind tested, see the training guide). Here the
    normalization runs without the affine, and the affine is a broadcast
    product and sum, whose gradients torch reduces the same way
    on any thread count. Same parameters and state-dict keys as
    ``torch.nn.LayerNorm``.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(3, 8)
    >>> norm = LayerNorm(8)
    >>> bool(torch.allclose(norm(x), torch.nn.LayerNorm(8)(x), atol=1e-6))
    True
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize the last dimension, then scale and shift.

        Parameters
        ----------
        x : tensor, last dimension ``normalized_shape``

        Returns
        -------
        tensor of the shape of ``x``
        """
        normalized = nn.functional.layer_norm(x, self.normalized_shape, eps=self.eps)
        if self.weight is None:
            return normalized
        if self.bias is None:
            return normalized * self.weight
        return torch.addcmul(self.bias, normalized, self.weight)


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
            layers += [Linear(in_dim, width), Mish(), LayerNorm(width)]
            in_dim = width
        if out_dim is not None:
            layers.append(Linear(in_dim, out_dim))
            in_dim = out_dim
        super().__init__(*layers)
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layers, each Mish -> LayerNorm pair fused.

        See :func:`~skdim.nn.activation.mish_layer_norm`.

        Parameters
        ----------
        x : tensor, last dimension ``in_dim``

        Returns
        -------
        tensor, last dimension :attr:`out_dim`
        """
        layers = list(self)
        k = 0
        while k < len(layers):
            if k + 2 < len(layers) and isinstance(layers[k + 1], Mish):
                x = mish_layer_norm(layers[k](x), layers[k + 2])
                k += 3
            else:
                x = layers[k](x)
                k += 1
        return x


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
        self.center = Linear(site_dim, out_dim)
        self.neighbor = Linear(site_dim, out_dim, bias=False)
        self.pair = Linear(pair_dim, out_dim, bias=False)

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


def masked_stats(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation, minimum and maximum of (B, P, D) over real sites: (B, 4 D).

    Parameters
    ----------
    x : tensor of shape (B, P, D)
        Per-site values.
    mask : bool tensor of shape (B, P)
        True for real sites.

    Returns
    -------
    tensor of shape (B, 4 D)
        ``[mean, std, min, max]``; the standard deviation is the population one
        (0 for one-site crystals).

    Examples
    --------
    >>> import torch
    >>> from skdim.nn.layers import masked_stats
    >>> x = torch.tensor([[[1.0], [3.0]], [[2.0], [100.0]]])
    >>> masked_stats(x, torch.tensor([[True, True], [True, False]])).tolist()
    [[2.0, 1.0, 1.0, 3.0], [2.0, 0.0, 2.0, 2.0]]
    """
    mean = masked_pool(x, mask, "mean")
    weights = mask.to(x.dtype)[..., None]
    variance = (((x - mean[:, None]) ** 2) * weights).sum(1) / weights.sum(1).clamp(min=1)
    low = -masked_pool(-x, mask, "max")
    return torch.cat([mean, variance.clamp(min=0).sqrt(), low, masked_pool(x, mask, "max")], -1)


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
            return softplus(x)
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
