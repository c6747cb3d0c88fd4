"""Current-based LIF against the closed-form PSP (difference of exponentials), the LIF it becomes
under a steady synaptic current, and its δ-synapse limit."""
import math

import pytest
import torch

from neuroplastic import LIF, RK4, Exponential, Record, ResetTo, run
from neuroplastic.analysis import spike_times, step_current
from neuroplastic.integrators import Exact
from neuroplastic.neurons.current_lif import CurrentLIF

E_L = -65.0


def closed_form_psp(t, w, tau_m, tau_s, resistance=1.0):
    """V(t) − E_L after a jump ``w`` of I_syn at t = 0 (solution of τ_m V' = −V + R w e^{−t/τ_s})."""
    if tau_s == tau_m:
        return resistance * w * t / tau_m * math.exp(-t / tau_m)
    return resistance * w * tau_s / (tau_s - tau_m) * (math.exp(-t / tau_s) - math.exp(-t / tau_m))


def psp_trace(model, jumps, dt):
    """Voltage above rest after each step for a (T,) sequence of I_syn jumps, threshold out of reach."""
    result = run(model.replace(v_th=1e6), jumps.reshape(-1, 1), dt, probes=[Record("v"), Record("i_syn")])
    return result["v"][:, 0] - model.e_l, result["i_syn"][:, 0]


@pytest.mark.parametrize("tau_m,tau_s", [(10.0, 5.0), (10.0, 30.0), (20.0, 20.0), (7.0, 0.5)])
def test_single_spike_gives_the_closed_form_psp_to_rounding(tau_m, tau_s):
    dt, steps, w = 0.1, 1500, 2.5
    model = CurrentLIF(tau_m=tau_m, tau_s=tau_s, e_l=E_L, resistance=1.5)
    jumps = torch.zeros(steps, dtype=torch.float64)
    jumps[0] = w
    v, i_syn = psp_trace(model, jumps, dt)
    times = [(k + 1) * dt for k in range(steps)]
    psp = torch.tensor([closed_form_psp(t, w, tau_m, tau_s, 1.5) for t in times], dtype=torch.float64)
    current = torch.tensor([w * math.exp(-t / tau_s) for t in times], dtype=torch.float64)
    peak = psp.abs().max().item()
    assert (v - psp).abs().max().item() <= 1e-10 * peak
    assert (i_syn - current).abs().max().item() <= 1e-12 * w


def test_propagator_is_stable_next_to_equal_time_constants():
    """At τ_s = τ_m(1 + 1e-9) the naive τ_s/(τ_s − τ_m)(…) formula loses ~9 digits; the step must not,
    and must agree with the alpha function R w t/τ_m e^{−t/τ_m} to the size of the perturbation."""
    dt, steps, w, tau = 0.1, 1000, 1.0, 10.0
    jumps = torch.zeros(steps, dtype=torch.float64)
    jumps[0] = w
    v, _ = psp_trace(CurrentLIF(tau_m=tau, tau_s=tau * (1 + 1e-9), e_l=E_L), jumps, dt)
    alpha = torch.tensor([closed_form_psp((k + 1) * dt, w, tau, tau) for k in range(steps)], dtype=torch.float64)
    assert (v - alpha).abs().max().item() <= 1e-8 * alpha.max().item()


def test_spike_train_response_is_the_superposition_of_psps():
    dt, steps, tau_m, tau_s = 0.2, 600, 10.0, 3.0
    generator = torch.Generator().manual_seed(0)
    arrivals = torch.rand(steps, generator=generator, dtype=torch.float64) < 0.05
    jumps = torch.where(arrivals, torch.randn(steps, generator=generator, dtype=torch.float64), 0.0)
    v, _ = psp_trace(CurrentLIF(tau_m=tau_m, tau_s=tau_s, e_l=E_L), jumps, dt)
    sources = arrivals.nonzero().flatten().tolist()
    expected = torch.tensor(
        [sum(jumps[s].item() * closed_form_psp((k - s + 1) * dt, 1.0, tau_m, tau_s) for s in sources if s <= k)
         for k in range(steps)],
        dtype=torch.float64,
    )
    assert len(sources) > 10
    assert (v - expected).abs().max().item() <= 1e-11


def test_rk4_matches_the_exact_step_and_exponential_euler_is_off_by_order_dt():
    dt, steps, w = 0.01, 3000, 1.0
    jumps = torch.zeros(steps, dtype=torch.float64)
    jumps[0] = w
    model = CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=E_L)
    exact, _ = psp_trace(model, jumps, dt)
    rk4, _ = psp_trace(model.replace(integrator=RK4()), jumps, dt)
    exponential_euler, _ = psp_trace(model.replace(integrator=Exponential()), jumps, dt)
    peak = exact.max().item()
    assert (rk4 - exact).abs().max().item() <= 1e-10 * peak
    # exponential Euler freezes I_syn over each step: an O(dt/τ_s) error, visible but small
    error = (exponential_euler - exact).abs().max().item()
    assert 1e-4 * peak < error < 1e-2 * peak


def test_psp_tends_to_the_lif_impulse_response_as_tau_s_vanishes():
    """A jump q/τ_s carries the charge q; as τ_s → 0 the PSP becomes (R q/τ_m) e^{−t/τ_m}, with an
    error of order τ_s/τ_m."""
    dt, steps, q, tau_m = 0.1, 500, 2.0, 10.0
    times = torch.arange(1, steps + 1, dtype=torch.float64) * dt
    lif_kernel = q / tau_m * torch.exp(-times / tau_m)
    errors = []
    for tau_s in (1e-2, 1e-3, 1e-4):
        jumps = torch.zeros(steps, dtype=torch.float64)
        jumps[0] = q / tau_s
        v, _ = psp_trace(CurrentLIF(tau_m=tau_m, tau_s=tau_s, e_l=E_L), jumps, dt)
        errors.append((v - lif_kernel).abs().max().item() / lif_kernel.max().item())
    for tau_s, error in zip((1e-2, 1e-3, 1e-4), errors):
        assert error <= 2 * tau_s / tau_m
    assert errors[0] / errors[1] == pytest.approx(10.0, rel=0.05)


def test_steady_synaptic_drive_is_the_lif_with_the_equivalent_current():
    """A constant jump x per step, started at its steady state, keeps I_syn at x/(1 − e^{−dt/τ_s}) after
    each jump; V then obeys exactly the LIF map with current I = G x / (R(1 − e^{−dt/τ_s})(1 − e^{−dt/τ_m}))
    where G is the exact one-step gain. Same spikes as the LIF, and the quantized closed-form rate."""
    dt, tau_m, tau_s, t_ref, theta = 0.1, 10.0, 5.0, 2.0, -50.0
    jumps = torch.tensor([0.25, 0.4, 0.8, 1.5, 3.0], dtype=torch.float64)
    model = CurrentLIF(tau_m=tau_m, tau_s=tau_s, e_l=E_L, v_th=theta, t_ref=t_ref, reset=ResetTo(E_L))
    p_s, p_m = math.exp(-dt / tau_s), math.exp(-dt / tau_m)
    i_after_jump = jumps / (1 - p_s)
    state = model.init_state((len(jumps),), dtype=torch.float64)._replace(i_syn=i_after_jump * p_s)
    cuba = run(model, step_current(jumps, 500.0, dt), dt, state=state)
    gain = (p_s - p_m) * tau_s / (tau_s - tau_m)  # closed-form one-step gain, R = 1
    drive = gain * i_after_jump / (1 - p_m)  # R·I of the equivalent LIF, mV
    lif = LIF(tau_m=tau_m, e_l=E_L, v_th=theta, t_ref=t_ref, reset=ResetTo(E_L))
    assert torch.equal(cuba.spikes, run(lif, step_current(drive, 500.0, dt), dt).spikes)
    height, fired = theta - E_L, 0
    for ri, times in zip(drive.tolist(), spike_times(cuba.spikes, dt)):
        if ri <= height:
            assert len(times) == 0
            continue
        fired += 1
        n_star = math.ceil(math.log(ri / (ri - height)) * tau_m / dt - 1e-9)
        assert set((times[1:] - times[:-1]).round(6)) == {round((n_star + round(t_ref / dt)) * dt, 6)}
    assert fired == len(jumps) - 1


def test_refractory_clamp_holds_v_while_the_synaptic_current_keeps_decaying():
    dt, t_ref = 0.1, 3.0
    model = CurrentLIF(t_ref=t_ref, reset=ResetTo(-70.0))
    jumps = torch.zeros(80, 1, dtype=torch.float64)
    jumps[0] = 100.0
    result = run(model, jumps, dt, probes=[Record("v"), Record("i_syn")])
    first = int(result.spikes[:, 0].nonzero()[0])
    n_ref = round(t_ref / dt)
    assert (result["v"][first : first + n_ref + 1, 0] == -70.0).all()
    assert result["v"][first + n_ref + 1, 0] > -70.0
    decay = math.exp(-dt / model.tau_s)
    assert torch.allclose(result["i_syn"][1:, 0], result["i_syn"][:-1, 0] * decay, rtol=1e-14, atol=0)


def test_bad_parameters_and_missing_propagator_raise():
    with pytest.raises(ValueError, match="tau_s"):
        CurrentLIF(tau_s=0.0)
    with pytest.raises(ValueError, match="tau_m"):
        CurrentLIF(tau_m=-1.0)
    with pytest.raises(ValueError, match="propagator"):
        Exact()(LIF(), (torch.zeros(1),), torch.zeros(1), 0.1)
    with pytest.raises(ValueError, match="dt"):
        CurrentLIF().step(CurrentLIF().init_state((1,)), torch.zeros(1), 0.0)

