"""Hodgkin–Huxley (1952) against REFERENCE.md's [C] numbers (RK4, step current from rest): rest at
−65 mV, a single spike from ≈2.24 µA/cm², repetitive firing from ≈6.26 µA/cm² starting near 52.5 Hz
(class II), ≈68, 86 and 116 Hz at 10, 20 and 50 µA/cm²; and the removable singularities of α_n, α_m.

Runtime: the f-I run (8 currents batched, 0.8 s at dt = 0.025 ms, RK4) takes ~20 s on one core."""
import math

import numpy as np
import pytest
import torch

from neuroplastic.analysis import fi_curve, spike_times, step_current
from neuroplastic.integrators import RK4, Exponential
from neuroplastic.neurons.hodgkin_huxley import HodgkinHuxley, alpha_m, alpha_n
from neuroplastic.sim import Record, run

DT = 0.025  # ms
FI_CURRENTS = [6.0, 6.1, 6.2, 6.3, 6.4, 10.0, 20.0, 50.0]  # µA/cm²


@pytest.fixture(scope="module")
def rates():
    """Steady-state rate (Hz, spikes in the second half of 800 ms) per current, one batched run."""
    return dict(zip(FI_CURRENTS, fi_curve(HodgkinHuxley(), FI_CURRENTS, 800.0, DT).tolist()))


def test_repetitive_firing_starts_between_6_2_and_6_3_near_52_hz(rates):
    """Class II: below ≈6.26 µA/cm² a step gives transient spikes only; at onset the rate jumps from
    0 to ≈52.5 Hz (REFERENCE.md)."""
    assert [rates[i] for i in (6.0, 6.1, 6.2)] == [0.0, 0.0, 0.0]
    assert rates[6.3] >= 45.0
    assert rates[6.3] == pytest.approx(52.5, rel=0.05)
    assert rates[6.4] > 0


@pytest.mark.parametrize("current,expected", [(10.0, 68.0), (20.0, 86.0), (50.0, 116.0)])
def test_firing_rate_matches_the_reference(rates, current, expected):
    assert rates[current] == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("integrator", [RK4(), Exponential()], ids=["rk4", "rush-larsen"])
def test_rest_single_spike_threshold_and_rate(integrator):
    """Over 100 ms: rest holds at −65 mV; 2.2 µA/cm² gives no spike and 2.3 one (threshold ≈2.24);
    at 10 µA/cm² the interspike interval gives ≈68 Hz, with RK4 and with the exponential
    (Rush–Larsen) step through the relaxation form."""
    model = HodgkinHuxley(integrator=integrator)
    result = run(model, step_current([0.0, 2.2, 2.3, 10.0], 100.0, DT), DT, probes=[Record("v")])
    rest, below, above, driven = spike_times(result.spikes, DT)
    assert (result["v"][:, 0] + 65.0).abs().max() < 0.05
    assert len(rest) == 0 and len(below) == 0 and len(above) == 1
    assert len(driven) >= 6
    assert 1000.0 / np.diff(driven).mean() == pytest.approx(68.0, rel=0.03)


def test_initial_state_is_the_steady_state_at_minus_65():
    model = HodgkinHuxley()
    state = model.init_state((1,), dtype=torch.float64)
    _, dm, dh, dn = model.derivatives(tuple(state), 0.0)
    assert state.v.item() == -65.0
    assert max(abs(dm.item()), abs(dh.item()), abs(dn.item())) < 1e-15
    assert 0.0 < state.m.item() < state.n.item() < state.h.item() < 1.0


def test_rate_functions_are_finite_and_continuous_at_their_removable_singularities():
    """α_n = 0.01(V+55)/(1−e^{−(V+55)/10}) → 0.1 at −55 and α_m = 0.1(V+40)/(1−e^{−(V+40)/10}) → 1.0
    at −40; nearby they follow the direct formula and their gradients are finite."""

    def direct(scale, v, v_half):
        x = (v - v_half) / 10.0
        return scale * 10.0 * x / (1.0 - math.exp(-x))

    for rate, scale, v_half, limit in ((alpha_n, 0.01, -55.0, 0.1), (alpha_m, 0.1, -40.0, 1.0)):
        for dtype in (torch.float32, torch.float64):
            at = torch.tensor(v_half, dtype=dtype, requires_grad=True)
            value = rate(at)
            (slope,) = torch.autograd.grad(value, at)
            assert value.item() == pytest.approx(limit, rel=1e-6)
            # d/dx of x/(1−e^{−x}) is 1/2 at 0, so dα/dV = limit/20
            assert slope.item() == pytest.approx(limit / 20.0, rel=1e-3)
        for offset in (1e-9, 1e-7, 1e-5, 1e-3, 1e-1):
            for v in (v_half - offset, v_half + offset):
                expected = direct(scale, v, v_half) if offset >= 1e-5 else limit
                value = rate(torch.tensor(v, dtype=torch.float64)).item()
                assert value == pytest.approx(expected, rel=1e-6)


def test_relaxation_form_matches_the_derivatives():
    model = HodgkinHuxley()
    generator = torch.Generator().manual_seed(0)
    v = torch.empty(64, dtype=torch.float64).uniform_(-90.0, 40.0, generator=generator)
    v[:2] = torch.tensor([-55.0, -40.0])
    gates = [torch.rand(64, dtype=torch.float64, generator=generator) for _ in range(3)]
    y, current = (v, *gates), torch.linspace(-5.0, 50.0, 64, dtype=torch.float64)
    taus, targets = model.relaxation(y, current)
    for x, tau, target, derivative in zip(y, taus, targets, model.derivatives(y, current)):
        assert torch.allclose((target - x) / tau, derivative, rtol=1e-12, atol=1e-9)


def test_spikes_are_upward_zero_crossings_and_carry_surrogate_gradients():
    current = torch.full((200, 1), 10.0, dtype=torch.float64, requires_grad=True)
    result = run(HodgkinHuxley(), current, DT, probes=[Record("v")])
    v = result["v"][:, 0]
    previous = torch.cat([torch.tensor([-65.0], dtype=torch.float64), v[:-1]])
    crossings = (previous < 0) & (v >= 0)
    assert crossings.sum() == 1 and torch.equal(result.spikes[:, 0] > 0, crossings)
    (gradient,) = torch.autograd.grad(result.spikes.sum(), current)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
