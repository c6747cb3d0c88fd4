"""Conductance-based LIF against its closed-form relaxation under fixed conductances, the exact decay
of a conductance jump, the plain LIF (no conductances) and the Ornstein–Uhlenbeck variance σ²/2."""
import pytest
import torch

from neuroplastic import LIF, RK4, Record, ResetTo, run
from neuroplastic.analysis import step_current
from neuroplastic.neurons.conductance_lif import ConductanceLIF, conductance_input

FROZEN = 1e15  # a synaptic time constant (ms) long enough to hold a conductance fixed


def simulate(model, inputs, dt, probes=(), noise=None):
    return run(model, inputs, dt, probes=list(probes), noise=noise)


@pytest.mark.parametrize("integrator,dt,tolerance", [(None, 0.1, 1e-10), (RK4(), 0.05, 1e-9)])
def test_fixed_conductances_relax_to_the_closed_form(integrator, dt, tolerance):
    g_e = torch.tensor([0.0, 0.5, 0.2, 1.5], dtype=torch.float64)
    g_i = torch.tensor([0.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    current = torch.tensor([5.0, 0.0, 20.0, -4.0], dtype=torch.float64)
    model = ConductanceLIF(tau_e=FROZEN, tau_i=FROZEN, v_th=1e6)
    if integrator is not None:
        model = model.replace(integrator=integrator)
    steps = round(300.0 / dt)
    at_start = torch.zeros(steps, 1, dtype=torch.float64)
    at_start[0] = 1.0
    inputs = conductance_input(current.expand(steps, 4), at_start * g_e, at_start * g_i)
    result = simulate(model, inputs, dt, [Record("v")])
    total = 1 + g_e + g_i
    v_inf = (model.e_l + g_e * model.e_e + g_i * model.e_i + model.resistance * current) / total
    times = torch.arange(1, steps + 1, dtype=torch.float64)[:, None] * dt
    expected = v_inf + (model.e_l - v_inf) * torch.exp(-times * total / model.tau_m)
    assert (result["v"] - expected).abs().max().item() <= tolerance
    assert (result["v"][-1] - v_inf).abs().max().item() <= 1e-5


def test_a_conductance_jump_decays_exactly_and_depolarizes_towards_e_e():
    dt, steps, jump = 0.1, 600, 0.3
    model = ConductanceLIF()
    pulse = torch.zeros(steps, 1, dtype=torch.float64)
    pulse[0] = jump
    zero = torch.zeros_like(pulse)
    probes = [Record("g_e"), Record("g_i"), Record("v")]
    result = simulate(model, conductance_input(zero, pulse, zero), dt, probes)
    times = torch.arange(1, steps + 1, dtype=torch.float64) * dt
    assert torch.allclose(result["g_e"][:, 0], jump * torch.exp(-times / model.tau_e), rtol=1e-12, atol=0)
    assert (result["g_i"] == 0).all()
    assert (result["v"] > model.e_l).all() and (result["v"] < model.e_e).all()
    inhibited = simulate(model, conductance_input(zero, zero, 2 * pulse), dt, [Record("g_i"), Record("v")])
    assert torch.allclose(inhibited["g_i"][:, 0], 2 * jump * torch.exp(-times / model.tau_i), rtol=1e-12, atol=0)
    assert (inhibited["v"] < model.e_l).all() and (inhibited["v"] > model.e_i).all()


def test_exponential_euler_error_is_first_order_while_conductances_change():
    def trace(dt, integrator=None):
        steps = round(40.0 / dt)
        g_e = torch.zeros(steps, 1, dtype=torch.float64)
        g_e[0] = 1.0
        model = ConductanceLIF(v_th=1e6)
        model = model if integrator is None else model.replace(integrator=integrator)
        v = simulate(model, conductance_input(torch.zeros_like(g_e), g_e), dt, [Record("v")])["v"][:, 0]
        every = round(0.2 / dt)
        return v[every - 1 :: every]  # samples every 0.2 ms

    reference = trace(0.02, RK4())
    coarse, fine = [(trace(dt) - reference).abs().max().item() for dt in (0.1, 0.05)]
    assert coarse / fine == pytest.approx(2.0, rel=0.1)


def test_without_conductances_it_is_the_lif():
    dt, currents = 0.1, torch.linspace(5.0, 40.0, 8, dtype=torch.float64)
    model = ConductanceLIF()
    coba = simulate(model, model.drive(step_current(currents, 300.0, dt)), dt)
    lif = LIF(tau_m=20.0, e_l=-60.0, v_th=-50.0, t_ref=5.0, reset=ResetTo(-60.0))
    plain = run(lif, step_current(currents, 300.0, dt), dt)
    assert coba.spikes.sum() > 50
    assert torch.equal(coba.spikes, plain.spikes)


def test_free_membrane_noise_has_the_ornstein_uhlenbeck_variance():
    """τ dV = −(V − E_L)dt + σ√τ dW has stationary variance σ²/2 (threshold out of reach)."""
    dt, trials, sigma = 0.1, 2000, 3.0
    model = ConductanceLIF(sigma=sigma, v_th=1e6)
    generator = torch.Generator().manual_seed(11)
    warm = simulate(model, torch.zeros(int(100 / dt), trials, 3, dtype=torch.float64), dt, noise=generator)
    inputs = torch.zeros(int(200 / dt), trials, 3, dtype=torch.float64)
    result = run(model, inputs, dt, state=warm.state, probes=[Record("v")], noise=generator, keep_spikes=False)
    v = result["v"][::10]  # every ms
    assert v.mean().item() == pytest.approx(model.e_l, abs=0.1)  # standard error ≈ 0.02 mV
    assert v.var().item() == pytest.approx(sigma**2 / 2, rel=0.03)  # standard error ≈ 0.8%


def test_seeded_noise_is_reproducible():
    dt, steps = 0.1, 1000
    model = ConductanceLIF(sigma=4.0)
    inputs = model.drive(torch.full((steps, 5), 8.0, dtype=torch.float64))

    def spikes(seed):
        return simulate(model, inputs, dt, noise=torch.Generator().manual_seed(seed)).spikes

    first = spikes(5)
    assert first.sum() > 0
    assert torch.equal(first, spikes(5))
    assert not torch.equal(first, spikes(6))


def test_bad_parameters_and_inputs_raise():
    with pytest.raises(ValueError, match="sigma"):
        ConductanceLIF(sigma=-1.0)
    with pytest.raises(ValueError, match="tau_e"):
        ConductanceLIF(tau_e=0.0)
    with pytest.raises(ValueError, match="tau_i"):
        ConductanceLIF(tau_i=-10.0)
    model = ConductanceLIF()
    assert run(model, model.drive(torch.zeros(10, 4)), 0.1).state.v.shape == (4,)
    with pytest.raises(ValueError, match="last dimension of 3"):
        run(model, torch.zeros(10, 4), 0.1)  # a plain current without its channels
    with pytest.raises(ValueError, match="channel dimension of 3"):
        model.step(model.init_state((4,)), torch.zeros(5, 3), 0.1)
