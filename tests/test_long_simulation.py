"""Long simulations stay finite (issue 18 §3): 10⁶ steps of a LIF population, 10⁵ steps of
Hodgkin–Huxley at its default dt — no drift of the state out of range, no NaN after many spikes, the
refractory count clamped, the gates in [0, 1], and firing at the rates the models are known for.

The LIF model and Hodgkin–Huxley run through the one time loop (:func:`neuroplastic.sim.run`) in chunks
that carry the state on, with probes instead of kept spikes, so that memory stays small; a Python step
of the loop costs ≈0.1 ms (LIF) and ≈1 ms (HH's four RK4 stages) on a CPU, so these two take a minute
or more each and are marked ``slow``. The LIF population of a layer's sequence path (the fused
operation) runs its million steps in about a second, in the default run.
"""
from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.fused import LeakyState, lif_sequence
from neuroplastic.neurons import LIF, HodgkinHuxley
from neuroplastic.sim import SpikeCount, run
from neuroplastic.spikes import FastSigmoid


def chunked_run(model, current: torch.Tensor, steps: int, dt: float, *, chunk: int, noise=None):
    """``steps`` steps of ``model`` under the constant ``current`` (one value per neuron), in chunks of
    ``chunk`` steps; the final state and the spike count of every neuron."""
    state, count = None, torch.zeros_like(current)
    for start in range(0, steps, chunk):
        inputs = current.expand(min(chunk, steps - start), *current.shape)
        result = run(model, inputs, dt, state=state, probes=[SpikeCount()], noise=noise, keep_spikes=False)
        state, count = result.state, count + result["count"]
    return state, count


@pytest.mark.slow
def test_a_million_steps_of_a_lif_population_stay_finite():
    """10⁶ steps (100 s at dt = 0.1 ms) of 32 LIF neurons, with white noise, from silent to fast firing:
    the state stays finite and in range, and the rates are those of the closed form (noise aside)."""
    model = LIF(sigma=1.0)
    current = torch.linspace(0.0, 40.0, 32, dtype=torch.float64)  # R·I up to 40 mV over a 15 mV threshold
    steps, dt = 10**6, 0.1
    state, count = chunked_run(model, current, steps, dt, chunk=50_000,
                               noise=torch.Generator().manual_seed(0))
    assert torch.isfinite(state.v).all() and torch.isfinite(state.refractory).all()
    assert (state.v < model.v_th + 1e-9).all() and (state.v > model.e_l - 20 * model.sigma).all()
    assert ((state.refractory >= 0) & (state.refractory <= model.t_ref)).all()
    rates = count / (steps * dt / 1000.0)
    assert rates[0] < 1.0  # no drive: only noise, far below threshold
    strongest = 40.0
    period = model.t_ref + model.tau_m * math.log(strongest / (strongest - (model.v_th - model.e_l)))
    assert abs(rates[-1].item() - 1000.0 / period) < 0.05 * 1000.0 / period


def test_a_million_steps_of_the_fused_lif_sequence_stay_finite():
    """The sequence path (the fused operation of a feed-forward layer) over 10⁶ steps of 64 neurons,
    in chunks carrying the state: finite voltages, binary spikes, the rate of a constant drive."""
    torch.manual_seed(0)
    beta, threshold, steps, chunk = math.exp(-1 / 20), 1.0, 10**6, 100_000
    drive = torch.linspace(0.0, 0.2, 64)  # drives v towards drive/(1 − β): up to ≈4 thresholds
    state = LeakyState(torch.zeros(1, 64), torch.zeros(1, 64))
    count = torch.zeros(64)
    for _ in range(steps // chunk):
        currents = drive + 0.01 * torch.randn(chunk, 1, 64)
        spikes, state = lif_sequence(currents, beta=beta, threshold=threshold, surrogate=FastSigmoid(),
                                     state=state)
        assert ((spikes == 0) | (spikes == 1)).all()
        count += spikes.sum((0, 1))
    assert torch.isfinite(state.v).all() and (state.v.abs() < 10).all()
    assert count[0] == 0 and count[-1] > steps / 20


@pytest.mark.slow
def test_a_hundred_thousand_steps_of_hodgkin_huxley_stay_finite():
    """10⁵ steps of the default dt (0.025 ms: 2.5 s) at rest, near threshold and firing repetitively:
    gates in [0, 1], voltages in the physiological range, the tonic rate of the squid axon."""
    model = HodgkinHuxley()
    current = torch.tensor([0.0, 5.0, 10.0, 20.0], dtype=torch.float64)  # µA/cm²
    steps, dt = 10**5, model.default_dt
    state, count = chunked_run(model, current, steps, dt, chunk=25_000)
    for name in ("m", "h", "n"):
        gate = getattr(state, name)
        assert torch.isfinite(gate).all() and ((gate >= 0) & (gate <= 1)).all(), name
    assert torch.isfinite(state.v).all() and ((state.v > -90) & (state.v < 60)).all()
    rates = count / (steps * dt / 1000.0)
    assert rates[0] == 0  # rest is stable
    assert 50 < rates[2] < 90 and rates[3] > rates[2]  # ≈68 Hz at 10 µA/cm², faster with more current
