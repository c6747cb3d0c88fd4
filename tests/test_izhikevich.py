"""Izhikevich (2003) model against its own equations' exact fixed points and bifurcations, and against
the firing patterns the paper describes for each named type (Fig. 2), measured through spike-train
features. Patterns depend on the step scheme, so every simulation pins forward Euler and ``dt``."""
import math

import numpy as np
import pytest
import torch

from neuroplastic.analysis import spike_times, steady_state_rate, step_current
from neuroplastic.neurons.izhikevich import PRESETS, Izhikevich
from neuroplastic.sim import Record, run

DT = 0.1  # ms, forward Euler, for the pattern tests
RS_CURRENTS = [3.5, 3.75, 3.85, 5.0, 10.0]


def isis(times):
    return np.diff(times)


def simulate(model, currents, duration, dt=DT, **kwargs):
    """Spike times (ms) per current of a step-current run from the model's initial state."""
    result = run(model, step_current(currents, duration, dt), dt, **kwargs)
    return spike_times(result.spikes, dt), result


def jacobian_at(model, v, u, current=0.0):
    y = (torch.tensor(v, dtype=torch.float64), torch.tensor(u, dtype=torch.float64))
    rows = torch.autograd.functional.jacobian(lambda v, u: model.derivatives((v, u), current), y)
    return torch.tensor([[float(d) for d in row] for row in rows], dtype=torch.float64)


@pytest.fixture(scope="module")
def regular_spiking():
    """RS at REFERENCE.md's scheme (Euler, dt = 0.01 ms, 1 s), all currents in one run."""
    dt = 0.01
    times, result = simulate(Izhikevich.preset("RS"), RS_CURRENTS, 1000.0, dt=dt)
    rates = steady_state_rate(result.spikes, dt)
    return dict(zip(RS_CURRENTS, times)), dict(zip(RS_CURRENTS, rates.tolist()))


def test_unknown_preset_is_a_clear_error_and_presets_take_overrides():
    with pytest.raises(ValueError, match=r"unknown Izhikevich preset 'XY'; choose from RS, IB"):
        Izhikevich.preset("XY")
    model = Izhikevich.preset("FS", d=3.0)
    assert (model.a, model.b, model.c, model.d) == (0.1, 0.2, -65.0, 3.0)
    assert set(PRESETS) == {"RS", "IB", "CH", "FS", "LTS", "TC", "RZ"}


def test_equilibria_at_zero_current_are_exact_and_have_the_right_stability():
    """b = 0.2, I = 0: 0.04v² + 4.8v + 140 = 0 at v = −70 (stable node) and −50 (saddle)."""
    model = Izhikevich.preset("RS")
    for v in (-70.0, -50.0):
        v = torch.tensor(v, dtype=torch.float64)
        dv, du = model.derivatives((v, 0.2 * v), 0.0)
        assert dv.item() == pytest.approx(0.0, abs=1e-12) and du.item() == pytest.approx(0.0, abs=1e-12)
    assert torch.linalg.eigvals(jacobian_at(model, -70.0, -14.0)).real.max() < 0
    assert torch.linalg.det(jacobian_at(model, -50.0, -10.0)) < 0  # one eigenvalue of each sign

    start = torch.tensor([-69.0, -71.0, -49.9, -50.1], dtype=torch.float64)
    state = model.State(start, torch.tensor([-14.0, -14.0, -10.0, -10.0], dtype=torch.float64))
    result = run(model, torch.zeros(3000, 4, dtype=torch.float64), DT, state=state, probes=[Record("v")])
    spikes = result.spikes.sum(0)
    final = result.state.v
    assert spikes[:2].sum() == 0 and (final[:2] + 70).abs().max() < 0.05  # perturbations of −70 decay
    assert spikes[2] >= 1  # just above −50 the voltage runs away into a spike
    assert spikes[3] == 0 and result["v"][:, 3].min() < -69  # just below it falls to −70


@pytest.mark.parametrize("b", [0.2, 0.25])
def test_equilibria_vanish_at_the_saddle_node_current(b):
    """With u = bv the equilibria solve 0.04v² + (5−b)v + 140 + I = 0: a double root at
    v = −(5−b)/0.08 when I = (5−b)²/0.16 − 140 (4.000 for b = 0.2), none above."""
    model = Izhikevich(b=b)
    saddle_node = (5 - b) ** 2 / 0.16 - 140
    v_double = torch.tensor(-(5 - b) / 0.08, dtype=torch.float64)
    dv, _ = model.derivatives((v_double, b * v_double), saddle_node)
    assert dv.item() == pytest.approx(0.0, abs=1e-9)
    v = torch.linspace(-100.0, 0.0, 100001, dtype=torch.float64)
    below, _ = model.derivatives((v, b * v), saddle_node - 0.01)
    above, _ = model.derivatives((v, b * v), saddle_node + 0.01)
    assert below.min() < 0 < above.min()
    if b == 0.2:
        assert saddle_node == pytest.approx(4.0, abs=1e-12)


def test_regular_spiking_is_silent_below_threshold_and_fires_above(regular_spiking):
    """No sustained firing at I = 3.5 < 4, repetitive firing at 5. Firing from rest starts at the
    Andronov–Hopf current, where trace J = 0 (v = (a−5)/0.08 on the nullcline u = bv): 3.7975,
    just below the saddle-node at 4."""
    _, rates = regular_spiking
    a, b = PRESETS["RS"]["a"], PRESETS["RS"]["b"]
    v_hopf = (a - 5) / 0.08
    hopf = -(0.04 * v_hopf**2 + (5 - b) * v_hopf + 140)
    assert hopf == pytest.approx(3.7975)
    assert rates[3.5] == 0 and rates[3.75] == 0
    assert rates[3.85] > 0 and rates[5.0] > 0


def test_regular_spiking_adapts_as_in_the_reference(regular_spiking):
    """REFERENCE.md [C], Euler dt = 0.01 ms, I = 10, 1 s: 23 spikes, ISIs growing from 23 to 44.8 ms."""
    times, _ = regular_spiking
    intervals = isis(times[10.0])
    assert len(times[10.0]) == 23
    assert intervals[0] == pytest.approx(23.15, abs=0.1)
    assert intervals[-1] == pytest.approx(44.84, abs=0.1)
    assert np.all(np.diff(intervals) > -0.05)  # never speeds up


def test_intrinsically_bursting_fires_a_burst_then_tonic_spikes():
    (times,), _ = simulate(Izhikevich.preset("IB"), [10.0], 500.0)
    intervals = isis(times)
    short = intervals < 10.0
    n_burst = int(np.argmin(short))  # ISIs of the initial burst
    assert n_burst >= 1
    assert not short[n_burst:].any() and intervals[n_burst:].min() > 25.0
    late = intervals[len(intervals) // 2 :]
    assert late.std() / late.mean() < 0.02  # tonic, regular


def test_chattering_fires_repeated_bursts_with_bimodal_intervals():
    (times,), _ = simulate(Izhikevich.preset("CH"), [10.0], 500.0)
    intervals = isis(times)
    within, between = intervals[intervals < 8.0], intervals[intervals > 40.0]
    assert len(within) + len(between) == len(intervals)  # nothing in between: bimodal
    bursts = len(between) + 1
    assert bursts >= 8
    assert 4.0 <= len(times) / bursts <= 6.0  # REFERENCE.md: bursts of ~5 spikes


def test_fast_spiking_fires_fast_without_adaptation():
    (times,), result = simulate(Izhikevich.preset("FS"), [10.0], 500.0)
    assert steady_state_rate(result.spikes, DT).item() > 100.0
    intervals = isis(times)[3:]
    assert intervals.max() / intervals.min() < 1.05


def test_low_threshold_spiking_adapts_from_a_high_initial_rate_and_fires_at_low_current():
    """b = 0.25 lowers the threshold: LTS fires at I = 2, where RS (b = 0.2) stays silent."""
    (weak, strong), result = simulate(Izhikevich.preset("LTS"), [2.0, 10.0], 500.0)
    intervals = isis(strong)
    assert intervals[0] < 5.0
    assert np.median(intervals[len(intervals) // 2 :]) > 3 * intervals[0]
    assert steady_state_rate(result.spikes, DT)[0] > 0


def test_thalamocortical_fires_tonically_when_depolarized_and_rebounds_after_hyperpolarization():
    """Fig. 2 (TC): tonic firing under depolarization; a rebound burst when released from
    v ≈ −90 mV."""
    release = 300.0
    steps, release_step = int(500.0 / DT), int(release / DT)
    inputs = torch.zeros(steps, 3, dtype=torch.float64)
    inputs[:release_step, 0] = -30.0  # hyperpolarize, then release to 0
    inputs[:, 2] = 2.0  # depolarize
    result = run(Izhikevich.preset("TC"), inputs, DT, probes=[Record("v")])
    rebound, resting, tonic = spike_times(result.spikes, DT)

    assert result["v"][release_step - 1, 0] < -85.0
    assert len(resting) == 0
    assert rebound.min() > release and len(rebound) >= 4
    assert np.all(isis(rebound)[:3] < 10.0) and rebound.max() < release + 100.0
    late = isis(tonic)[len(tonic) // 2 :]
    assert len(late) >= 5 and late.std() / late.mean() < 0.05


def test_resonator_rests_on_a_damped_oscillation():
    """RZ at I = 0 rests at v = −62.5 (the lower root of 0.04v² + 4.74v + 140) where the Jacobian
    [[0.08v+5, −1], [ab, −a]] = [[0, −1], [0.026, −0.1]] has eigenvalues −0.05 ± 0.1533i: a kick
    rings with half-period π/ω = 20.5 ms, shrinking by e^{−0.05·π/ω} = 0.359 per half-period."""
    model = Izhikevich.preset("RZ")
    rest = (-4.74 - math.sqrt(4.74**2 - 4 * 0.04 * 140)) / 0.08
    assert rest == pytest.approx(-62.5)
    eigenvalues = torch.linalg.eigvals(jacobian_at(model, rest, model.b * rest))
    omega = 0.1532971
    assert eigenvalues.real.tolist() == pytest.approx([-0.05, -0.05], abs=1e-9)
    assert sorted(eigenvalues.imag.tolist()) == pytest.approx([-omega, omega], abs=1e-6)

    kicked = torch.tensor([rest + 0.1], dtype=torch.float64)
    state = model.State(kicked, torch.tensor([model.b * rest], dtype=torch.float64))
    result = run(model, torch.zeros(1500, 1, dtype=torch.float64), DT, state=state, probes=[Record("v")])
    deviation = result["v"][:, 0].numpy() - rest
    crossings = np.flatnonzero(np.sign(deviation[1:]) != np.sign(deviation[:-1]))
    assert len(crossings) >= 5
    assert np.diff(crossings * DT) == pytest.approx(math.pi / omega, abs=0.3)
    extremes = [np.abs(deviation[i:j]).max() for i, j in zip(crossings[:-1], crossings[1:])]
    ratios = np.array(extremes[1:]) / np.array(extremes[:-1])
    assert ratios == pytest.approx(math.exp(-0.05 * math.pi / omega), rel=0.05)


def test_resonator_fires_to_a_resonant_pulse_pair_only():
    """A 1 ms pulse, alone or followed by a second half a period (20 ms) later, is subthreshold; the
    same pair about one period apart (44 ms; the linear period 2π/ω is 41 ms) fires."""
    model = Izhikevich.preset("RZ", v_init=-62.5)
    pulse, start = int(1.0 / DT), int(10.0 / DT)
    gaps = [None, 20.0, 44.0]
    inputs = torch.zeros(int(200.0 / DT), len(gaps), dtype=torch.float64)
    for column, gap in enumerate(gaps):
        inputs[start : start + pulse, column] = 2.2
        if gap is not None:
            second = start + int(round(gap / DT))
            inputs[second : second + pulse, column] = 2.2
    counts = run(model, inputs, DT).spikes.sum(0).tolist()
    assert counts == [0, 0, 1]


def test_spikes_carry_surrogate_gradients():
    current = torch.full((200, 1), 10.0, dtype=torch.float64, requires_grad=True)
    spikes = run(Izhikevich(), current, DT).spikes
    assert spikes.sum() > 0
    (gradient,) = torch.autograd.grad(spikes.sum(), current)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
