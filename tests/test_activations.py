"""pe_training.activations.Tanh: the same function and gradient as torch.tanh."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from pe_training.activations import ACTIVATIONS, Tanh


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1.2e-7), (torch.float64, 1e-15)])
def test_tanh_matches_torch_values_and_gradient(dtype, tol):
    leaf = torch.linspace(-20.0, 20.0, 100_000, dtype=dtype).reshape(-1, 8).requires_grad_(True)
    x = leaf[:, ::2]  # a strided (non-contiguous) view
    assert not x.is_contiguous()
    y = Tanh()(x)
    assert type(y.grad_fn).__name__ == "_NumpyTanhBackward"  # numpy's tanh, not the fallback
    ref = torch.tanh(x)
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y, ref, atol=tol, rtol=0)
    (grad,) = torch.autograd.grad((y * torch.cos(x)).sum(), leaf)
    (ref_grad,) = torch.autograd.grad((ref * torch.cos(x)).sum(), leaf)
    torch.testing.assert_close(grad, ref_grad, atol=4 * tol, rtol=0)


def test_tanh_of_a_scalar_tensor():
    x = torch.tensor(0.5)
    assert Tanh()(x).shape == () and torch.allclose(Tanh()(x), torch.tanh(x))


def test_tanh_of_other_dtypes_is_torch_tanh():
    x = torch.linspace(-3.0, 3.0, 11, dtype=torch.bfloat16)
    assert torch.equal(Tanh()(x), torch.tanh(x))


def test_tanh_is_the_configs_tanh_and_survives_save_and_load():
    assert ACTIVATIONS["tanh"] is Tanh and issubclass(Tanh, nn.Tanh)
    net = nn.Sequential(nn.Linear(3, 4), Tanh())
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    x = torch.randn(5, 3)
    assert torch.equal(loaded(x), net(x))
