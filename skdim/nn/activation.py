r"""Mish, fused into one pass over memory: the activation Site-Net applies to every pair.

``torch.nn.functional.mish`` computes ``x * tanh(softplus(x))`` with three
transcendental functions, and on CPU it was the largest cost of a training
step (48 % of a DIM step, forward and backward, in ``torch.profiler``). The
same function can be written with one exponential,

.. math:: \tanh(\log(1 + e^x)) = \frac{n}{n + 2}, \qquad n = e^x (e^x + 2),

which ``torch.compile`` (with dynamic shapes, so it compiles once for every
batch shape) fuses into a single vectorized loop, forward and backward: about
4x faster than ``torch.nn.functional.mish`` on one CPU thread. Where
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

__all__ = ["Mish", "mish", "mish_formula", "mish_gradient"]

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
    e = torch.exp(x.clamp(max=_CLAMP))
    n = e * (e + 2)
    t = n / (n + 2)
    return grad * (t + x * (e / (1 + e)) * (1 - t * t))


#: Compiled variants allowed per kernel (torch's default is 8).
_RECOMPILE_LIMIT = 32
_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
_backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


def _kernels() -> tuple[Callable, Callable]:
    """The compiled (or, with SKDIM_COMPILE=0, eager) forward and backward."""
    global _forward, _backward
    if _forward is None:
        if os.environ.get("SKDIM_COMPILE", "1") == "0":
            _forward, _backward = mish_formula, mish_gradient
        else:
            _forward = torch.compile(mish_formula, dynamic=True)
            _backward = torch.compile(mish_gradient, dynamic=True)
    return _forward, _backward


def _fall_back(error: Exception) -> None:
    global _forward, _backward
    warnings.warn(
        f"torch.compile failed ({type(error).__name__}: {str(error)[:200]}); skdim runs "
        "its Mish activation without compiling (slower). Set SKDIM_COMPILE=0 to skip "
        "the attempt.",
        RuntimeWarning,
        stacklevel=3,
    )
    _forward, _backward = mish_formula, mish_gradient


def _call(kernel: int, *tensors: torch.Tensor) -> torch.Tensor:
    # Every call sees 2-D, detached tensors (no view base to guard on), no
    # autograd and no autocast, so the compiled code is specialized only on
    # dtype, device, contiguous or strided rows and a single row: a handful of
    # variants, under the raised limit after which torch would stop compiling.
    function = _kernels()[kernel]
    tensors = tuple(t.detach() for t in tensors)
    if function in (mish_formula, mish_gradient):
        return function(*tensors)
    try:
        with (
            torch.autocast(tensors[0].device.type, enabled=False),
            torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT),
        ):
            return function(*tensors)
    except Exception as error:  # torch.compile missing a compiler or backend
        _fall_back(error)
        return _kernels()[kernel](*tensors)


class _FusedMish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return _call(0, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            # contiguous: autograd hands in gradients of many layouts (expanded,
            # strided), each of which would be compiled anew
            return _call(1, x, grad.reshape(x.shape).contiguous())


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
            out = _call(0, flat)
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
