"""Synapses and traces against hand-written products, gradients and closed forms."""
import math

import pytest
import torch

from neuroplastic.synapses import (
    DaleDense,
    DaleRecurrent,
    Dense,
    Recurrent,
    Trace,
    excitatory_count,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------- dense


def test_dense_forward_is_the_matrix_product_plus_bias():
    layer = Dense(7, 5, bias=True, generator=_gen())
    x = torch.randn(3, 4, 7, generator=_gen(1))
    by_hand = torch.einsum("abj,ij->abi", x, layer.weight) + layer.bias
    torch.testing.assert_close(layer(x), by_hand)
    assert layer(x).shape == (3, 4, 5)


def test_dense_init_is_uniform_with_bound_scale_over_sqrt_fan_in():
    n_in, scale = 400, 2.0
    w = Dense(n_in, 500, scale=scale, generator=_gen()).weight.detach().double()
    bound = scale / math.sqrt(n_in)
    assert w.abs().max() <= bound
    # U(−b, b): mean 0, variance b²/3; 2·10⁵ samples give standard errors far below these margins.
    assert abs(w.mean().item()) < 0.01 * bound
    assert w.var().item() == pytest.approx(bound**2 / 3, rel=0.02)
    same_seed = Dense(4, 3, generator=_gen(5)), Dense(4, 3, generator=_gen(5))
    torch.testing.assert_close(same_seed[0].weight, same_seed[1].weight)


# --------------------------------------------------------------------------------------- recurrent


def _mask(n):
    return 1.0 - torch.eye(n)


def test_recurrent_forward_equals_masked_product_by_hand():
    layer = Recurrent(6, generator=_gen())
    raw = layer.parametrizations.weight.original.detach().clone()
    raw += torch.diag(torch.arange(1.0, 7.0))  # a non-zero raw diagonal must still be ignored
    with torch.no_grad():
        layer.parametrizations.weight.original.copy_(raw)
    x = torch.randn(10, 6, generator=_gen(1))
    torch.testing.assert_close(layer(x), x @ (raw * _mask(6)).T)
    assert torch.all(torch.diagonal(layer.weight) == 0)


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
])
def test_recurrent_diagonal_stays_zero_and_gets_no_gradient_under_training(make_optimizer):
    n = 8
    layer = Recurrent(n, generator=_gen())
    original = layer.parametrizations.weight.original
    optimizer = make_optimizer(layer.parameters())
    g = _gen(2)
    for _ in range(50):
        x, target = torch.randn(16, n, generator=g), torch.randn(16, n, generator=g)
        optimizer.zero_grad()
        loss = ((layer(x) - target) ** 2).sum()
        loss.backward()
        # dL/dW_eff = (2 (y − target))ᵀ x; the trained tensor gets it masked.
        expected = (2 * (layer(x) - target)).T.detach() @ x * _mask(n)
        torch.testing.assert_close(original.grad, expected)
        assert torch.all(torch.diagonal(original.grad) == 0)
        optimizer.step()
        assert torch.all(torch.diagonal(layer.weight) == 0)
    assert torch.all(torch.diagonal(original) == 0)


# -------------------------------------------------------------------------------------------- dale


def _assert_dale(weight, n_excitatory):
    assert torch.all(weight[..., :n_excitatory] >= 0), "an excitatory column went negative"
    assert torch.all(weight[..., n_excitatory:] <= 0), "an inhibitory column went positive"


@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.5),
    lambda p: torch.optim.SGD(p, lr=0.2, momentum=0.9),
    lambda p: torch.optim.Adam(p, lr=0.1),
    lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.5),
])
@pytest.mark.parametrize("make_layer", [
    lambda: DaleDense(10, 6, n_excitatory=7, generator=_gen()),
    lambda: DaleRecurrent(10, excitatory_fraction=0.7, generator=_gen()),
])
def test_dale_signs_survive_adversarial_updates(make_layer, make_optimizer):
    layer = make_layer()
    n_exc = layer.n_excitatory
    assert n_exc == 7
    optimizer = make_optimizer(layer.parameters())
    g = _gen(3)
    for step in range(200):
        optimizer.zero_grad()
        if step % 2 == 0:
            # Descending on Σ W ⊙ D = Σ magnitudes pushes every magnitude below zero.
            loss = (layer.weight * layer.sign).sum()
        else:
            # A random target that asks for sign-breaking weights in every column.
            noise = torch.randn(layer.weight.shape, generator=g)
            loss = ((layer.weight + noise.abs() * layer.sign) ** 2).sum()
        loss.backward()
        optimizer.step()
        _assert_dale(layer.weight, n_exc)
        assert torch.all(layer.magnitude >= 0)
    # The attack worked on the unconstrained tensor, so the signs held because of the
    # parametrization, not because the updates were harmless.
    assert (layer.parametrizations.weight.original < 0).any()


def test_dale_gradient_reaches_the_magnitudes():
    layer = DaleDense(5, 4, n_excitatory=3, generator=_gen())
    raw = layer.parametrizations.weight.original
    with torch.no_grad():  # trained tensors of both signs, as after updates that crossed zero
        raw.copy_(torch.randn(4, 5, generator=_gen(3)))
    assert (raw < 0).any() and (raw > 0).any()
    x, g = torch.randn(8, 5, generator=_gen(1)), torch.randn(8, 4, generator=_gen(2))
    (layer(x) * g).sum().backward()
    d = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    torch.testing.assert_close(layer.sign, d)
    # W = |W̃| D, so dL/dW̃ = (gᵀ x) ⊙ D ⊙ sgn(W̃): no synapse is dead (unlike rectification).
    expected = (g.T @ x) * d * torch.sign(raw.detach())
    torch.testing.assert_close(raw.grad, expected)
    assert torch.all(raw.grad != 0)


def test_dale_recurrent_forward_by_hand():
    layer = DaleRecurrent(6, n_excitatory=4, generator=_gen())
    raw = layer.parametrizations.weight.original.detach()
    d = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    x = torch.randn(3, 6, generator=_gen(1))
    torch.testing.assert_close(layer(x), x @ (raw.abs() * d * _mask(6)).T)
    assert torch.all(torch.diagonal(layer.weight) == 0)
    _assert_dale(layer.weight, 4)


def test_dale_init_balances_excitation_and_inhibition():
    layer = DaleDense(500, 4000, excitatory_fraction=0.8, generator=_gen())
    w = layer.weight.detach().double()
    _assert_dale(w, 400)
    row_sums = w.sum(1)
    assert abs(row_sums.mean().item()) < 3 * row_sums.std().item() / math.sqrt(len(row_sums))
    # Inhibitory synapses are n_E/n_I = 4 times stronger on average.
    assert (-w[:, 400:].mean() / w[:, :400].mean()).item() == pytest.approx(4.0, rel=0.02)


def test_dale_weight_assignment_is_checked():
    layer = DaleDense(3, 2, n_excitatory=2)
    good = torch.tensor([[0.5, 0.0, -1.0], [0.1, 0.2, -0.3]])
    with torch.no_grad():
        layer.weight = good
    torch.testing.assert_close(layer.weight, good)
    with pytest.raises(ValueError, match="Dale's principle.*\\[1\\]"):
        with torch.no_grad():
            layer.weight = torch.tensor([[0.5, -0.1, -1.0], [0.1, 0.2, -0.3]])


def test_excitatory_count():
    assert excitatory_count(10) == 8
    assert excitatory_count(10, excitatory_fraction=0.5) == 5
    assert excitatory_count(10, n_excitatory=3) == 3
    assert excitatory_count(10, n_excitatory=0) == 0
    for kwargs, message in [
        (dict(excitatory_fraction=0.5, n_excitatory=3), "not both"),
        (dict(excitatory_fraction=1.5), r"\[0, 1\]"),
        (dict(excitatory_fraction=float("nan")), r"\[0, 1\]"),
        (dict(n_excitatory=11), "exceeds"),
        (dict(n_excitatory=-1), ">= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            excitatory_count(10, **kwargs)


@pytest.mark.parametrize("make, message", [
    (lambda: Dense(0, 3), "n_in"),
    (lambda: Dense(3, 2.5), "n_out"),
    (lambda: Dense(3, 2, scale=0), "scale"),
    (lambda: Recurrent(1), "n must be"),
    (lambda: DaleRecurrent(4, scale=-1.0), "scale"),
])
def test_bad_layer_sizes(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------------------------------------------ traces


def test_trace_impulse_response_is_exponential():
    tau, jump, dt = 20.0, 0.7, 0.5
    trace = Trace(tau, jump)
    x = trace.init((2,), dtype=torch.float64)
    values = []
    for k in range(200):
        s = torch.tensor([1.0 if k == 0 else 0.0, 0.0], dtype=torch.float64)
        x = trace.step(x, s, dt)  # decay first, then the jump: the spike step reads exactly `jump`
        values.append(x[0].item())
        assert x[1].item() == 0.0
    closed_form = [jump * math.exp(-k * dt / tau) for k in range(200)]
    assert values == pytest.approx(closed_form, rel=1e-12)


def test_trace_of_a_regular_train_reaches_the_geometric_series():
    tau, jump, dt, period = 15.0, 1.3, 0.25, 40  # a spike every 40 steps = 10 ms
    trace = Trace(tau, jump)
    q = math.exp(-period * dt / tau)
    x = trace.init((), dtype=torch.float64)
    after_spike = []
    for k in range(period * 60):
        x = trace.step(x, torch.tensor(float(k % period == 0), dtype=torch.float64), dt)
        if k % period == 0:
            after_spike.append(x.item())
        elif k % period == period - 1:
            before_next = x.item()
    # Just after the n-th spike: jump (1 − qⁿ)/(1 − q), converging to jump/(1 − q).
    expected = [jump * (1 - q ** (n + 1)) / (1 - q) for n in range(60)]
    assert after_spike == pytest.approx(expected, rel=1e-12)
    assert after_spike[-1] == pytest.approx(jump / (1 - q), rel=1e-9)
    assert before_next == pytest.approx(jump * q / (1 - q) * math.exp(dt / tau), rel=1e-9)


def test_trace_decay_composes_over_split_steps():
    trace = Trace(8.0)
    x = torch.tensor([2.0, 3.0], dtype=torch.float64)
    zero = torch.zeros(2, dtype=torch.float64)
    two_steps = trace.step(trace.step(x, zero, 0.3), zero, 0.7)
    torch.testing.assert_close(two_steps, trace.step(x, zero, 1.0))


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf")])
def test_trace_rejects_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        Trace(tau)


def test_trace_rejects_bad_dt_and_jump():
    with pytest.raises(ValueError, match="dt"):
        Trace(5.0).step(torch.zeros(1), torch.ones(1), 0.0)
    with pytest.raises(ValueError, match="jump"):
        Trace(5.0, jump=float("nan"))
