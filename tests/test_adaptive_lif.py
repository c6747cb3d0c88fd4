"""Multi-current adaptive LIF against the plain LIF (K = 0), the matrix exponential of its linear
subthreshold system, its closed-form fixed point and the exponential filtering of its spike train."""
import math

import numpy as np
import pytest
import torch
from scipy.linalg import expm

from neuroplastic import LIF, RK4, Euler, Record, ResetTo, run
from neuroplastic.analysis import spike_times, step_current
from neuroplastic.neurons.adaptive_lif import AdaptiveLIF

COMMON = {"tau_m": 10.0, "e_l": -65.0, "v_th": -50.0, "resistance": 1.2, "t_ref": 2.0, "reset": ResetTo(-70.0)}


@pytest.mark.parametrize("integrator", [RK4(), Euler()])
def test_without_adaptation_currents_it_is_the_lif(integrator):
    dt, currents = 0.1, torch.linspace(5.0, 60.0, 12, dtype=torch.float64)
    inputs = step_current(currents, 200.0, dt)
    without = AdaptiveLIF(**COMMON, a=(), b=(), tau_w=(), integrator=integrator)
    adaptive = run(without, inputs, dt, probes=[Record("v")])
    lif = run(LIF(**COMMON, integrator=integrator), inputs, dt, probes=[Record("v")])
    assert adaptive.spikes.sum() > 100
    assert torch.equal(adaptive.spikes, lif.spikes)
    assert torch.allclose(adaptive["v"], lif["v"], rtol=0, atol=1e-12)
    assert adaptive.state.w.shape == (12, 0)


def linear_system(model, current):
    """dx/dt = M x + c for x = (u − u_rest, w_1 … w_K), as an augmented (K+2)-square matrix."""
    a, tau_w, k = np.array(model.a), np.array(model.tau_w), len(model.a)
    augmented = np.zeros((k + 2, k + 2))
    augmented[0, 0] = -1.0 / model.tau_m
    augmented[0, 1 : k + 1] = -model.resistance / model.tau_m
    augmented[0, -1] = model.resistance * current / model.tau_m
    augmented[1 : k + 1, 0] = a / tau_w
    augmented[1 : k + 1, 1 : k + 1] = np.diag(-1.0 / tau_w)
    return augmented


def test_subthreshold_response_matches_the_matrix_exponential():
    dt, steps = 0.1, 3000
    subthreshold = {**COMMON, "v_th": 1e6}
    model = AdaptiveLIF(**subthreshold, a=(0.4, 0.05, -0.02), b=(0.0, 0.0, 0.0), tau_w=(30.0, 200.0, 5.0))
    currents = [4.0, 10.0, -3.0]
    result = run(model, step_current(currents, steps * dt, dt), dt, probes=[Record("v"), Record("w")])
    assert result.spikes.sum() == 0
    for n, current in enumerate(currents):
        augmented = linear_system(model, current)
        for k in range(0, steps, 97):
            x = expm(augmented * (k + 1) * dt) @ np.r_[0.0, 0.0, 0.0, 0.0, 1.0]
            assert result["v"][k, n].item() - model.e_l == pytest.approx(x[0], abs=1e-9)
            np.testing.assert_allclose(result["w"][k, n].numpy(), x[1:4], rtol=0, atol=1e-10)


def test_stationary_voltage_is_the_closed_form():
    """w_k* = a_k(u* − u_rest) in τ_k dw_k/dt = 0, so 0 = −(u* − u_rest)(1 + R Σ a_k) + R I."""
    dt, current = 0.5, torch.tensor([3.0, 8.0], dtype=torch.float64)
    model = AdaptiveLIF(**{**COMMON, "v_th": 1e6}, a=(0.3, 0.1), b=(0.0, 0.0), tau_w=(10.0, 25.0))
    result = run(model, step_current(current, 700.0, dt), dt)  # slowest mode: 23 ms
    depolarization = model.resistance * current / (1 + model.resistance * sum(model.a))
    assert torch.allclose(result.state.v - model.e_l, depolarization, rtol=1e-9, atol=0)
    expected_w = depolarization[:, None] * torch.tensor(model.a, dtype=torch.float64)
    assert torch.allclose(result.state.w, expected_w, rtol=1e-9, atol=0)


def test_spike_triggered_adaptation_lengthens_successive_intervals():
    dt = 0.25
    model = AdaptiveLIF(**COMMON, a=(0.0,), b=(1.5,), tau_w=(150.0,))
    times = spike_times(run(model, step_current([25.0], 400.0, dt), dt).spikes, dt)[0]
    plain = spike_times(run(model.replace(b=(0.0,)), step_current([25.0], 400.0, dt), dt).spikes, dt)[0]
    isis = np.diff(times)
    assert len(isis) >= 8
    assert (np.diff(isis[:6]) > 0).all()
    assert isis[-1] > 1.5 * isis[0]
    assert plain[0] == times[0]  # no adaptation before the first spike
    assert len(plain) > len(times)


def test_spike_triggered_current_is_the_exponential_filter_of_the_spike_train():
    """With a_k = 0: w_k(t) = b_k Σ_f e^{−(t − t_f)/τ_k} (jump at the spike, then pure decay)."""
    dt, steps = 0.1, 2000
    model = AdaptiveLIF(**COMMON, a=(0.0, 0.0), b=(0.8, 0.3), tau_w=(40.0, 300.0))
    result = run(model, step_current([40.0], steps * dt, dt), dt, probes=[Record("w")])
    spikes = result.spikes[:, 0].numpy()
    fired = np.flatnonzero(spikes)
    assert len(fired) > 20
    lag = np.arange(steps)[:, None] - fired[None, :]
    for k, (b, tau) in enumerate(zip(model.b, model.tau_w)):
        expected = (b * np.exp(-np.clip(lag, 0, None) * dt / tau) * (lag >= 0)).sum(1)
        np.testing.assert_allclose(result["w"][:, 0, k].numpy(), expected, rtol=1e-9, atol=1e-12)


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="one entry per adaptation current"):
        AdaptiveLIF(a=(0.1, 0.2), b=(1.0,), tau_w=(100.0,))
    with pytest.raises(ValueError, match="tau_w"):
        AdaptiveLIF(a=(0.1,), b=(1.0,), tau_w=(-5.0,))
    with pytest.raises(ValueError, match="tau_m"):
        AdaptiveLIF(tau_m=0.0)
    with pytest.raises(ValueError, match="tuple"):
        AdaptiveLIF(a=0.1)
    with pytest.raises(ValueError, match="finite"):
        AdaptiveLIF(b=(math.inf,))


def test_state_shapes_and_list_parameters():
    model = AdaptiveLIF(a=[0.1, 0.2], b=[1.0, 2.0], tau_w=[50.0, 500.0])
    assert model.a == (0.1, 0.2) and hash(model) == hash(model.replace())
    state = model.init_state((3, 4), dtype=torch.float64)
    assert state.v.shape == (3, 4) and state.w.shape == (3, 4, 2) and state.w.dtype == torch.float64
    _, new = model.step(state, torch.zeros(3, 4, dtype=torch.float64), 0.1)
    assert new.w.shape == (3, 4, 2)
