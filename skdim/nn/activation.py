r"""Mish, fused into one pass over memory: the activation Site-Net applies to every pair.

``torch.nn.functional.mish`` computes ``x * tanh(softplus(x))`` with three
transcendental functions, and on CPU it was the largest cost of a training
step (48 % of a DIM step, forward and backward, in ``torch.profiler``). The
same function can be written with one exponential,

.. math:: \tanh(\log(1 + e^x)) = \frac{n}{n + 2}, \qquad n = e^x (e^x + 2),

which ``torch.compile`` (with dynamic shapes, so it compiles once for every
batch shape) fuses into a single vectorized loop, forward and backward: about
4x faster than ``torch.nn.functional.mish`` on one CPU thread. Where Mish is
followed by a LayerNorm, as after every hidden layer of Site-Net,
:func:`mish_layer_norm` fuses the two, forward and backward. Where
``torch.compile`` is unavailable or fails (no C++ compiler, an unsupported
platform) the same formula runs eagerly, with a one-time warning; the
environment variable ``SKDIM_COMPILE=0`` turns compilation off.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import torch
import torch._dynamo
from torch import nn

__all__ = [
    "Mish",
    "mish",
    "mish_formula",
    "mish_gradient",
    "mish_layer_norm",
    "mish_layer_norm_formula",
    "mish_layer_norm_gradient",
    "mish_layer_norm_parts",
]

#: Above this, e^x (e^x + 2) would overflow float32; tanh(softplus(x)) is 1 there.
_CLAMP = 20.0


def mish_formula(x: torch.Tensor) -> torch.Tensor:
    """``x * tanh(softplus(x))`` with one exponential (eager).

    Parameters
    ----------
    x : tensor

    Returns
    -------
    tensor of the shape and dtype of ``x``

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(-30, 30, 601)
    >>> bool(torch.allclose(mish_formula(x), torch.nn.functional.mish(x), rtol=1e-5, atol=1e-7))
    True
    """
    e = torch.exp(x.clamp(max=_CLAMP))
    n = e * (e + 2)
    return x * n / (n + 2)


def mish_gradient(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`mish_formula` times ``grad`` (eager).

    ``d mish / dx = t + x sigmoid(x) (1 - t^2)`` with ``t = tanh(softplus(x))``.

    Parameters
    ----------
    x : tensor
        The input of the forward pass.
    grad : tensor
        The gradient of the output, shaped like ``x``.

    Returns
    -------
    tensor shaped like ``x``

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(-30, 30, 601, requires_grad=True)
    >>> torch.nn.functional.mish(x).sum().backward()
    >>> bool(torch.allclose(mish_gradient(x.detach(), torch.ones(601)), x.grad, atol=1e-6))
    True
    """
    return grad * _mish_slope(x)


def _mish_slope(x: torch.Tensor) -> torch.Tensor:
    """``d mish / dx``, with the one exponential of :func:`mish_formula`."""
    e = torch.exp(x.clamp(max=_CLAMP))
    n = e * (e + 2)
    t = n / (n + 2)
    return t + x * (e / (1 + e)) * (1 - t * t)


def mish_layer_norm_parts(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``layer_norm(mish(x)) * weight + bias`` and what its gradient needs (eager).

    Parameters
    ----------
    x : tensor of shape (rows, width)
        Pre-activations, any float dtype.
    weight, bias : tensor of shape (width,)
        The LayerNorm's affine parameters.
    eps : float
        The LayerNorm's epsilon.

    Returns
    -------
    output : float32 tensor of shape (rows, width)
    normalized : float32 tensor of shape (rows, width)
        The normalized activations, before the affine.
    inverse_std : float32 tensor of shape (rows, 1)
        1 / sqrt(variance + eps) of each row's activations.
    """
    centered = (y := mish_formula(x.float())) - y.mean(-1, keepdim=True)
    inverse_std = torch.rsqrt((centered * centered).mean(-1, keepdim=True) + eps)
    normalized = centered * inverse_std
    return normalized * weight + bias, normalized, inverse_std


def mish_layer_norm_formula(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """``layer_norm(mish(x)) * weight + bias`` over the last dimension, in float32 (eager).

    The output of :func:`mish_layer_norm_parts` alone (for inference).

    Parameters
    ----------
    x, weight, bias, eps
        As in :func:`mish_layer_norm_parts`.

    Returns
    -------
    float32 tensor of shape (rows, width)

    Examples
    --------
    >>> import torch
    >>> x, w, b = torch.randn(5, 8), torch.randn(8), torch.randn(8)
    >>> expected = torch.nn.functional.layer_norm(torch.nn.functional.mish(x), (8,), w, b)
    >>> bool(torch.allclose(mish_layer_norm_formula(x, w, b, 1e-5), expected, atol=1e-5))
    True
    """
    return mish_layer_norm_parts(x, weight, bias, eps)[0]


def mish_layer_norm_gradient(
    x: torch.Tensor,
    normalized: torch.Tensor,
    inverse_std: torch.Tensor,
    weight: torch.Tensor,
    grad: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`mish_layer_norm_formula`, from :func:`mish_layer_norm_parts` (eager).

    The row reductions read only the saved normalized activations; Mish's
    slope, the one exponential, is computed once per element at the end.

    Parameters
    ----------
    x : tensor of shape (rows, width)
        The input of the forward pass.
    normalized, inverse_std : float32 tensors of shape (rows, width) and (rows, 1)
        As returned by :func:`mish_layer_norm_parts`.
    weight : tensor of shape (width,)
    grad : float32 tensor of shape (rows, width)
        The gradient of the output.

    Returns
    -------
    input_grad : tensor of shape (rows, width), the dtype of ``x``
    weight_rows : float32 tensor of shape (rows, width)
        ``grad`` times the normalized activation: its column sums are the
        weight's gradient (the bias's are those of ``grad``).
    """
    g = grad * weight
    g = inverse_std * (
        g - g.mean(-1, keepdim=True) - normalized * (g * normalized).mean(-1, keepdim=True)
    )
    return (g * _mish_slope(x.float())).to(x.dtype), grad * normalized


#: The functions compiled by torch.compile, by name, with their eager forms.
_EAGER: dict[str, Callable] = {
    "mish": mish_formula,
    "mish_gradient": mish_gradient,
    "mish_layer_norm": mish_layer_norm_formula,
    "mish_layer_norm_parts": mish_layer_norm_parts,
    "mish_layer_norm_gradient": mish_layer_norm_gradient,
}
#: The elementwise kernels, compiled for any shape; the others for their row width.
_ELEMENTWISE = ("mish", "mish_gradient")
#: Compiled variants allowed per kernel (torch's default is 8).
_RECOMPILE_LIMIT = 32
_compiled: dict[str, Callable] = {}


def _kernel(name: str) -> Callable:
    """The compiled (or, with SKDIM_COMPILE=0, eager) function called ``name``."""
    if name not in _compiled:
        if os.environ.get("SKDIM_COMPILE", "1") == "0":
            _compiled[name] = _EAGER[name]
        else:
            # row normalizations compile for their width (a handful of widths),
            # which lets the compiler unroll the row; the rows are dynamic (_call)
            _compiled[name] = torch.compile(_EAGER[name], dynamic=name in _ELEMENTWISE)
    return _compiled[name]


def _compile_cache() -> str:
    """The folder where torch.compile keeps its built kernels."""
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        return cache_dir()
    except Exception:  # a torch without this helper
        return os.environ.get("TORCHINDUCTOR_CACHE_DIR", "torch's inductor cache")


def _fall_back(error: Exception) -> None:
    warnings.warn(
        f"torch.compile failed ({type(error).__name__}: {str(error)[:200]}); skdim runs "
        "its Mish activation without compiling from here on (slower, and its results "
        "differ in the last bits from a compiled run's). If the error names a file in "
        f"{_compile_cache()}, a compile interrupted earlier may have left it incomplete: "
        "delete that folder and run again. Set SKDIM_COMPILE=0 to skip the attempt.",
        RuntimeWarning,
        stacklevel=3,
    )
    _compiled.update(_EAGER)


def _call(name: str, *args):
    # Every call sees 2-D, detached tensors (no view base to guard on), no
    # autograd and no autocast, so the compiled code is specialized only on
    # dtype, device, contiguous or strided rows and a single row: a handful of
    # variants, under the raised limit after which torch would stop compiling.
    function = _kernel(name)
    args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
    if function is _EAGER[name]:
        return function(*args)
    for a in args:
        if isinstance(a, torch.Tensor) and a.dim() == 2:
            torch._dynamo.maybe_mark_dynamic(a, 0)  # any number of rows
    try:
        with (
            torch.autocast(args[0].device.type, enabled=False),
            torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT),
        ):
            return function(*args)
    except Exception as error:  # torch.compile missing a compiler or backend
        _fall_back(error)
        return _EAGER[name](*args)


class _FusedMish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return _call("mish", x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            # contiguous: autograd hands in gradients of many layouts (expanded,
            # strided), each of which would be compiled anew
            return _call("mish_gradient", x, grad.reshape(x.shape).contiguous())


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish activation, fused by ``torch.compile`` when it can be (see the module notes).

    Parameters
    ----------
    x : tensor

    Returns
    -------
    tensor of the shape and dtype of ``x``

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(4, 8)
    >>> bool(torch.allclose(mish(x), torch.nn.functional.mish(x), rtol=1e-5, atol=1e-6))
    True
    """
    flat = x.reshape(-1, x.shape[-1]) if x.dim() else x.reshape(1, 1)
    if torch.is_grad_enabled() and x.requires_grad:
        out = _FusedMish.apply(flat)
    else:
        with torch.no_grad():
            out = _call("mish", flat)
    return out.reshape(x.shape)


class _FusedMishLayerNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        out, normalized, inverse_std = _call("mish_layer_norm_parts", x, weight, bias, eps)
        ctx.save_for_backward(x, normalized, inverse_std, weight)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, normalized, inverse_std, weight = ctx.saved_tensors
        with torch.no_grad():
            grad = grad.reshape(x.shape).contiguous()
            input_grad, weight_rows = _call(
                "mish_layer_norm_gradient", x, normalized, inverse_std, weight, grad
            )
            # column sums as products with a row of ones: the BLAS computes them
            # identically on any number of threads (see skdim.nn.layers.Linear)
            ones = grad.new_ones(1, grad.shape[0])
            weight_grad = (ones @ weight_rows)[0].to(weight.dtype)
            bias_grad = (ones @ grad)[0].to(weight.dtype)
        return input_grad, weight_grad, bias_grad, None


def mish_layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """``norm(mish(x))`` in one pass over memory forward and one backward.

    Site-Net follows every hidden Linear layer by Mish and a LayerNorm. Run
    apart, the two read and write every (site, atom) pair's activations three
    times each way and keep three copies for the backward pass; fused, the
    forward pass keeps the input and the normalized activations, and the
    backward pass computes Mish's slope once per element. The weight and
    bias gradients are column sums taken as matrix products, so they do not
    depend on the number of CPU threads. Like ``torch.autocast`` does for
    LayerNorm, the output is float32.

    Parameters
    ----------
    x : tensor, last dimension ``norm.normalized_shape[0]``
        Pre-activations.
    norm : torch.nn.LayerNorm
        A LayerNorm over the last dimension, with its affine parameters.

    Returns
    -------
    float32 tensor of the shape of ``x``

    Examples
    --------
    >>> import torch
    >>> norm, x = torch.nn.LayerNorm(8), torch.randn(2, 3, 8)
    >>> expected = norm(torch.nn.functional.mish(x))
    >>> bool(torch.allclose(mish_layer_norm(x, norm), expected, atol=1e-5))
    True
    """
    flat = x.reshape(-1, x.shape[-1]) if x.dim() > 1 else x.reshape(1, -1)
    if torch.is_grad_enabled() and (x.requires_grad or norm.weight.requires_grad):
        out = _FusedMishLayerNorm.apply(flat, norm.weight, norm.bias, norm.eps)
    else:
        with torch.no_grad():
            out = _call("mish_layer_norm", flat, norm.weight, norm.bias, norm.eps)
    return out.reshape(x.shape)


class Mish(nn.Module):
    """Module form of :func:`mish` (a drop-in for ``torch.nn.Mish``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply Mish elementwise.

        Parameters
        ----------
        x : tensor

        Returns
        -------
        tensor of the shape of ``x``
        """
        return mish(x)
