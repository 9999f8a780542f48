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
    def broken(x):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(activation, "_fused", broken)
    x = torch.randn(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = mish(x)
    assert any("torch.compile failed" in str(w.message) for w in caught)
    torch.testing.assert_close(y, torch.nn.functional.mish(x), rtol=1e-5, atol=1e-6)
    assert activation._fused is mish_formula  # no second attempt
