"""The fused Mish activation equals torch's Mish, values and gradients."""

import warnings

import pytest
import torch

import skdim.nn.activation as activation
from skdim.nn.activation import mish, mish_formula


@pytest.mark.parametrize("function", [mish, mish_formula], ids=["fused", "eager"])
def test_matches_torch_mish_and_its_gradient(function):
    x = torch.cat([torch.linspace(-60, 60, 1201), torch.randn(3, 500).flatten()])
    x.requires_grad_(True)
    reference = x.detach().clone().requires_grad_(True)
    y, expected = function(x), torch.nn.functional.mish(reference)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-6)
    y.sum().backward()
    expected.sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-4, atol=1e-6)
    assert torch.isfinite(function(torch.tensor([1e4, -1e4, 0.0]))).all()


def test_any_shape_and_bfloat16():
    for shape in [(7,), (3, 5, 11, 64), (1, 1)]:
        x = torch.randn(shape)
        assert mish(x).shape == x.shape
    x = torch.randn(4, 32).bfloat16()
    torch.testing.assert_close(
        mish(x).float(), torch.nn.functional.mish(x.float()), rtol=2e-2, atol=2e-2
    )


def test_falls_back_when_compiling_fails(monkeypatch):
    def broken(*tensors):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(activation, "_forward", broken)
    monkeypatch.setattr(activation, "_backward", broken)
    x = torch.randn(10, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = mish(x)
    assert any("torch.compile failed" in str(w.message) for w in caught)
    torch.testing.assert_close(y, torch.nn.functional.mish(x), rtol=1e-5, atol=1e-6)
    assert activation._forward is mish_formula  # no second attempt
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_compiles_once_for_training_validation_and_every_rank():
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    activation._forward = activation._backward = None
    shapes = [(5,), (3, 7), (2, 3, 4), (2, 3, 4, 6), (9, 2, 5, 3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recompile-limit warning would fail here
        for shape in shapes:
            x = torch.randn(shape, requires_grad=True)
            mish(x).sum().backward()  # training
            with torch.no_grad():
                mish(x)  # validation, prediction
            mish(x[..., ::2].detach())  # strided views, as from split()
    # forward and backward, each: size-1 rows, contiguous or strided rows; far
    # from torch's limit of 8 variants per function, after which it stops compiling
    assert counters["stats"]["unique_graphs"] <= 8
