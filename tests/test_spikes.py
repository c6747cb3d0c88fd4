"""Surrogate spikes: analytic derivatives, and grad / vmap / jvp against finite differences."""
import math

import pytest
import torch
from torch.func import grad, jvp, vmap

from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Rescaled, Triangle, spike

X = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64) + 0.013  # avoid the kinks of the triangle/boxcar

# Each analytic derivative written from its paper, independently of the library's formulas.
ANALYTIC = [
    (FastSigmoid(scale=3.0), lambda x: 1.0 / (1.0 + 3.0 * x.abs()) ** 2),  # Zenke & Ganguli 2018
    (Triangle(gamma=0.3), lambda x: 0.3 * torch.relu(1.0 - x.abs())),  # Bellec et al. 2020
    (Boxcar(width=1.0), lambda x: (x.abs() < 0.5).double()),  # Payvand et al. 2020
    (Arctan(alpha=2.0), lambda x: 1.0 / (1.0 + (math.pi * x) ** 2)),  # Fang et al. 2021
    (Rescaled(Triangle(gamma=0.3), 0.6), lambda x: 0.3 / 0.6 * torch.relu(1.0 - (x / 0.6).abs())),  # e-prop ψ
]


@pytest.mark.parametrize("surrogate,analytic", ANALYTIC, ids=lambda s: type(s).__name__)
def test_backward_is_the_analytic_surrogate(surrogate, analytic):
    x = X.clone().requires_grad_()
    spike(x, surrogate).sum().backward()
    torch.testing.assert_close(x.grad, analytic(X))


@pytest.mark.parametrize("surrogate,_", ANALYTIC, ids=lambda s: type(s).__name__)
def test_forward_is_the_heaviside_step(surrogate, _):
    assert torch.equal(spike(X, surrogate), (X >= 0).double())
    assert spike(torch.zeros(1), surrogate).item() == 1.0


def finite_difference(fn, x, eps=1e-6):
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


@pytest.mark.parametrize("surrogate,_", ANALYTIC, ids=lambda s: type(s).__name__)
def test_func_transforms_agree_with_finite_differences_of_the_smooth_primitive(surrogate, _):
    reference = finite_difference(surrogate.smooth, X)
    per_element = vmap(grad(lambda x: spike(x, surrogate)))(X)
    torch.testing.assert_close(per_element, reference, rtol=1e-6, atol=1e-8)
    _, tangent = jvp(lambda x: spike(x, surrogate), (X,), (torch.ones_like(X),))
    torch.testing.assert_close(tangent, reference, rtol=1e-6, atol=1e-8)
    batched = vmap(lambda row: spike(row, surrogate))(X.reshape(-1, 1))
    assert torch.equal(batched.reshape(-1), (X >= 0).double())


def test_backward_is_differentiable_for_second_order_methods():
    surrogate = FastSigmoid(scale=2.0)
    x = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    (first,) = torch.autograd.grad(spike(x, surrogate).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), x)
    expected = -2 * 2.0 / (1 + 2.0 * 0.3) ** 3  # d/dx (1 + s x)^-2 = -2 s (1 + s x)^-3
    assert second.item() == pytest.approx(expected)


@pytest.mark.parametrize("make", [lambda: FastSigmoid(0.0), lambda: Triangle(gamma=-1.0),
                                  lambda: Boxcar(float("nan")), lambda: Arctan(float("inf"))])
def test_bad_surrogate_parameters_raise(make):
    with pytest.raises(ValueError):
        make()
