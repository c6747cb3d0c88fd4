"""LIF against closed forms: the deterministic f-I curve and the Siegert rate under white noise."""
import math

import pytest
import torch
from scipy import integrate, special

from neuroplastic import LIF, Euler, ResetBySubtraction, ResetTo, SpikeCount, run
from neuroplastic.analysis import fi_curve, spike_times, step_current
from neuroplastic.sim import SpikeRaster

TAU, T_REF, THETA, V_R = 20.0, 2.0, 20.0, 10.0


def reference_lif(**changes):
    params = dict(tau_m=TAU, e_l=0.0, v_th=THETA, reset=ResetTo(V_R), t_ref=T_REF)
    params.update(changes)
    return LIF(**params)


def closed_form_isi(drive, tau=TAU, t_ref=T_REF, theta=THETA, v_r=V_R):
    """Interspike interval (ms) of τ dV/dt = −V + RI from V_r to θ, plus t_ref (Gerstner 2014, eq. 1.13)."""
    return t_ref + tau * math.log((drive - v_r) / (drive - theta))


@pytest.mark.parametrize("dt", [0.1, 0.05])
def test_fi_curve_matches_closed_form_within_one_step(dt):
    drives = [20.5, 22.0, 25.0, 30.0, 40.0, 80.0]
    model = reference_lif()
    raster = run(model, step_current(drives, 1000.0, dt), dt).spikes
    for i, drive in enumerate(drives):
        times = spike_times(raster[:, i : i + 1], dt)[0]
        isis = times[1:] - times[:-1]
        assert len(isis) >= 2
        assert abs(isis[1:] - closed_form_isi(drive)).max() <= dt + 1e-9


def test_subthreshold_drive_never_fires_and_relaxes_exactly():
    dt = 0.1
    model = reference_lif()
    result = run(model, step_current([19.9], 200.0, dt), dt)
    assert result.spikes.sum() == 0
    steps = result.spikes.shape[0]
    exact = 19.9 * (1 - math.exp(-steps * dt / TAU))
    assert result.state.v.item() == pytest.approx(exact, rel=1e-6)


def test_discrete_rate_is_the_quantized_closed_form():
    """ν = 1/((n* + n_ref) dt) with n* = ⌈ln((RI−V_r)/(RI−θ)) / (−ln α)⌉ (REFERENCE.md)."""
    dt, drives = 0.1, [25.0, 30.0, 50.0]
    alpha = math.exp(-dt / TAU)
    expected = []
    for drive in drives:
        n_star = math.ceil(math.log((drive - V_R) / (drive - THETA)) / (-math.log(alpha)) - 1e-9)
        expected.append(1000.0 / ((n_star + round(T_REF / dt)) * dt))
    rates = fi_curve(reference_lif(), drives, 4000.0, dt)
    for rate, want in zip(rates.tolist(), expected):
        assert rate == pytest.approx(want, rel=0.01)


def test_euler_converges_to_the_closed_form():
    dt = 0.01
    raster = run(reference_lif(integrator=Euler()), step_current([30.0], 100.0, dt), dt).spikes
    times = spike_times(raster, dt)[0]
    assert len(times) >= 5
    mean_isi = (times[-1] - times[0]) / (len(times) - 1)
    assert mean_isi == pytest.approx(closed_form_isi(30.0), rel=0.01)


def test_reset_by_subtraction_keeps_the_overshoot():
    dt = 1.0
    model = LIF(tau_m=10.0, e_l=0.0, v_th=1.0, reset=ResetBySubtraction(), t_ref=0.0, resistance=1.0)
    state = model.init_state((1,))
    state = state._replace(v=torch.tensor([1.5]))
    spikes, new = model.step(state, torch.tensor([0.0]), dt)
    after_leak = 1.5 * math.exp(-dt / 10.0)
    assert spikes.item() == 1.0
    assert new.v.item() == pytest.approx(after_leak - 1.0, rel=1e-6)


def test_refractory_period_holds_the_voltage():
    dt = 0.1
    result = run(reference_lif(t_ref=5.0), step_current([100.0], 50.0, dt), dt, probes=[])
    times = spike_times(result.spikes, dt)[0]
    assert (times[1:] - times[:-1]).min() >= 5.0


def siegert_rate(mu, sigma):
    """Siegert (1951) / Brunel (2000): 1/ν = t_ref + τ√π ∫ e^{u²}(1+erf u) du, as erfcx(−u)."""
    lower, upper = (V_R - mu) / sigma, (THETA - mu) / sigma
    integral, _ = integrate.quad(lambda u: special.erfcx(-u), lower, upper)
    return 1000.0 / (T_REF + TAU * math.sqrt(math.pi) * integral)


def test_siegert_reference_values():
    assert siegert_rate(15.0, 5.0) == pytest.approx(9.461, abs=1e-3)
    assert siegert_rate(25.0, 1.0) == pytest.approx(42.02, abs=1e-2)


@pytest.mark.parametrize("mu,sigma", [(15.0, 5.0), (25.0, 1.0)])
def test_noisy_rate_matches_siegert(mu, sigma):
    dt, neurons = 0.01, 4000
    model = reference_lif(sigma=sigma)
    generator = torch.Generator().manual_seed(1)
    warm = run(model, torch.full((int(100 / dt), neurons), mu), dt, noise=generator, keep_spikes=False)
    steps = int(500 / dt)
    drive = torch.full((1, neurons), mu).expand(steps, neurons)
    counted = run(model, drive, dt, state=warm.state, noise=generator, probes=[SpikeCount()], keep_spikes=False)
    rate = counted["count"].sum().item() / (neurons * 0.5)
    assert rate == pytest.approx(siegert_rate(mu, sigma), rel=0.03)


def test_frozen_noise_is_reproducible_and_seeded_noise_differs():
    dt, steps = 0.1, 5000
    model = reference_lif(sigma=4.0)
    drive = torch.full((steps, 3), 18.0)
    noise = torch.randn(steps, 3, generator=torch.Generator().manual_seed(3))
    a = run(model, drive, dt, noise=noise, probes=[SpikeRaster()])
    b = run(model, drive, dt, noise=noise.clone())
    assert torch.equal(a.spikes, b.spikes)
    assert a.spikes.sum() > 0
    c = run(model, drive, dt, noise=torch.Generator().manual_seed(4))
    assert not torch.equal(a.spikes, c.spikes)
