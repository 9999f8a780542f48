"""The fused Mish, alone and with LayerNorm, equals torch's: values and gradients."""

import warnings

import pytest
import torch

import skdim.nn.activation as activation
from skdim.nn.activation import mish, mish_formula, mish_layer_norm
from skdim.nn.layers import MLP, LayerNorm


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

    monkeypatch.setattr(activation, "_compiled", dict.fromkeys(activation._EAGER, broken))
    x = torch.randn(10, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = mish(x)
    (message,) = [str(w.message) for w in caught if "torch.compile failed" in str(w.message)]
    assert "no compiler" in message  # the cause
    assert activation._compile_cache() in message  # where an incomplete kernel would be
    torch.testing.assert_close(y, torch.nn.functional.mish(x), rtol=1e-5, atol=1e-6)
    assert activation._compiled["mish"] is mish_formula  # no second attempt
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_compiles_once_for_training_validation_and_every_rank():
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    activation._compiled.clear()
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
        # Mish -> LayerNorm compiles for its width, once for any number of rows
        counters.clear()
        norm = torch.nn.LayerNorm(16)
        for shape in [(3, 16), (2, 5, 16), (4, 3, 7, 16), (1000, 16), (2, 3, 40, 16)]:
            x = torch.randn(shape, requires_grad=True)
            mish_layer_norm(x, norm).sum().backward()
            with torch.no_grad():
                mish_layer_norm(x, norm)
            wide = torch.randn(*shape[:-1], 32, requires_grad=True)
            mish_layer_norm(wide[..., 16:], norm).sum().backward()  # a block of columns
        # training forward, backward and inference, each for contiguous or strided rows
        assert counters["stats"]["unique_graphs"] <= 6


def reference_mish_layer_norm(x, norm):
    return torch.nn.functional.layer_norm(
        torch.nn.functional.mish(x.float()),
        norm.normalized_shape,
        norm.weight,
        norm.bias,
        norm.eps,
    )


@pytest.mark.parametrize("compiled", [True, False], ids=["fused", "eager"])
def test_mish_layer_norm_matches_torch_and_its_gradients(compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(activation, "_compiled", dict(activation._EAGER))
    generator = torch.Generator().manual_seed(0)
    norm = torch.nn.LayerNorm(64)
    with torch.no_grad():
        norm.weight.normal_(generator=generator)
        norm.bias.normal_(generator=generator)
    reference_norm = torch.nn.LayerNorm(64)
    reference_norm.load_state_dict(norm.state_dict())
    # strided rows, as a column block of the attention's first layer
    wide = 5 * torch.randn(4, 7, 9, 192, generator=generator)
    x = wide[..., 64:128].requires_grad_(False).clone().requires_grad_(True)
    x_strided = wide.clone().requires_grad_(True)
    reference = x.detach().clone().requires_grad_(True)
    upstream = torch.randn(4, 7, 9, 64, generator=generator)
    y = mish_layer_norm(x, norm)
    expected = reference_mish_layer_norm(reference, reference_norm)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    (y * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.weight.grad, reference_norm.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(norm.bias.grad, reference_norm.bias.grad, rtol=1e-4, atol=1e-4)
    strided = mish_layer_norm(x_strided[..., 64:128], norm)
    torch.testing.assert_close(strided, y, rtol=0, atol=0)
    (strided * upstream).sum().backward()
    torch.testing.assert_close(x_strided.grad[..., 64:128], x.grad)
    assert not x_strided.grad[..., :64].any()


def test_mish_layer_norm_without_gradients_and_in_bfloat16():
    norm = torch.nn.LayerNorm(16)
    x = torch.randn(3, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            mish_layer_norm(x, norm), reference_mish_layer_norm(x, norm), rtol=1e-5, atol=1e-5
        )
    y = mish_layer_norm(x.bfloat16(), norm)
    assert y.dtype == torch.float32  # as autocast's LayerNorm
    torch.testing.assert_close(
        y, reference_mish_layer_norm(x.bfloat16(), norm), rtol=1e-5, atol=1e-5
    )


def test_mlp_fuses_each_layer_and_keeps_its_parameters():
    torch.manual_seed(0)
    mlp = MLP(8, [16, 32], out_dim=3)
    assert [type(m).__name__ for m in mlp] == [
        "Linear", "Mish", "LayerNorm", "Linear", "Mish", "LayerNorm", "Linear"
    ]  # fmt: skip
    x = torch.randn(10, 8)
    expected = x
    for layer in mlp:
        expected = layer(expected)  # the layers one by one: Mish and LayerNorm apart
    torch.testing.assert_close(mlp(x), expected, rtol=1e-5, atol=1e-5)
    assert isinstance(mlp[2], LayerNorm)
