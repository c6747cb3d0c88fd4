"""``stdp-window``: the STDP learning window measured by pairing protocols (Bi & Poo 1998, "Synaptic
modifications in cultured hippocampal neurons", J. Neurosci. 18:10464), and the pairing-frequency
dependence of triplet STDP (Pfister & Gerstner 2006; data of Sjöström et al. 2001).

**Window.** ``K`` presynaptic neurons each connect (weakly, through conductance synapses) to their own
conductance-based LIF neuron. In each pairing (60 at 1 Hz, as Bi & Poo) postsynaptic neuron ``i`` is
made to fire by a brief strong current pulse and presynaptic neuron ``i`` fires ``Δt_i`` before it.
Pair STDP (additive, all-to-all, τ+ = 16.8, τ− = 33.7 ms) runs through the one rule interface at every
step. Per pairing, the change of synapse ``i ← i`` is compared with the rule's closed form at the
*measured* spike-time difference, and τ+ and τ− are fitted to the measured window (least squares on
``log|Δw|``). Transmission uses the fixed initial weight (a weak test synapse that never fires the cell,
as in the recordings), so the protocol, not the learnt weights, sets the spike times. Criteria: every point within 2% of the closed form; fitted τ± within 2% of Bi & Poo's.

**Triplet.** Pre–post pairs (Δt = ±10 ms, 60 pairings) at 0.1–50 Hz through the triplet rule with the
visual-cortex parameters: potentiation at Δt = +10 ms must grow with frequency, and Δt = −10 ms must
depress at low frequency and potentiate at 50 Hz (Sjöström et al. 2001, Fig. 1; Pfister & Gerstner
Fig. 5). The traces decay exactly over any interval, so these protocols are driven event by event.

Quick: 3 pairings per Δt instead of 60 (the per-pairing change does not depend on the count at 1 Hz).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from neuroplastic.experiments.base import Outcome, progress_bar
from neuroplastic.neurons import ConductanceLIF
from neuroplastic.neurons.conductance_lif import conductance_input
from neuroplastic.rules import StepInfo, apply_changes
from neuroplastic.rules.stdp import PairSTDP
from neuroplastic.rules.triplet import TripletSTDP
from neuroplastic.synapses.conductance import ConductanceSynapses

PUBLISHED = {"tau_plus_ms": 16.8, "tau_minus_ms": 33.7, "source": "Bi & Poo 1998 data, exponential fit "
             "(Song, Miller & Abbott 2000; van Rossum et al. 2000)",
             "triplet": "Sjöström et al. 2001: +10 ms pairing potentiates only at high frequency; "
                        "-10 ms depresses up to 20 Hz and potentiates at 40-50 Hz"}
FREQUENCIES = [0.1, 1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0]


def pairing_window(rule: PairSTDP, delays_ms, pairings: int, dt: float, progress: bool, device="cpu"):
    """Measured ``(Δt, Δw per pairing)`` of each synapse ``i ← i`` under the pairing protocol, simulated
    on ``device``."""
    k, period, lead = len(delays_ms), round(1000.0 / dt), round(150.0 / dt)
    neuron, f64 = ConductanceLIF(), {"dtype": torch.float64, "device": device}
    weight = torch.full((k, k), 1e-4, **f64)  # plastic; only i ← i is measured
    synapses = ConductanceSynapses(1e-4 * torch.eye(k, **f64))  # fixed weak transmission
    offsets = [round(d / dt) for d in delays_ms]
    state, rule_state = neuron.init_state((1, k), **f64), rule.init((weight,))
    eye = torch.eye(k, dtype=torch.bool, device=device)
    start, pre_steps, post_steps = weight[eye].clone(), [[] for _ in range(k)], [[] for _ in range(k)]
    bar = progress_bar(pairings * period, "stdp-window", progress)
    pulse = torch.full((1, k), 500.0, **f64)  # nA for one step: enough to fire at once
    for t in range(pairings * period):
        phase = t % period
        pre = torch.tensor([[float(phase == lead - o) for o in offsets]], **f64)
        current = pulse if phase == lead else torch.zeros_like(pulse)
        g_e, g_i = synapses.jumps(pre)
        post, state = neuron.step(state, conductance_input(current, g_e, g_i), dt)
        changes, rule_state = rule.update(StepInfo(t, pairings * period, dt, pre, post), rule_state, (weight,))
        apply_changes((weight,), changes)
        for i in torch.nonzero(pre[0]).flatten().tolist():
            pre_steps[i].append(t)
        for i in torch.nonzero(post[0]).flatten().tolist():
            post_steps[i].append(t)
        if phase == period - 1:
            bar.update(period)
    bar.close()
    if any(len(p) != pairings or len(q) != pairings for p, q in zip(pre_steps, post_steps)):
        raise RuntimeError("the pairing protocol did not produce one pre and one post spike per pairing")
    measured_dt = np.array([np.mean(np.subtract(q, p)) * dt for p, q in zip(pre_steps, post_steps)])
    return measured_dt, ((weight[eye] - start) / pairings).cpu().numpy()


def fit_window(delta_t, dw):
    """τ+ and τ− (and amplitudes) by least squares on ``log|Δw|`` against Δt on each side."""
    pos, neg = delta_t > 0, delta_t < 0
    slope_p, icpt_p = np.polyfit(delta_t[pos], np.log(dw[pos]), 1)
    slope_n, icpt_n = np.polyfit(delta_t[neg], np.log(-dw[neg]), 1)
    return {"tau_plus_ms": -1.0 / slope_p, "tau_minus_ms": 1.0 / slope_n,
            "a_plus": float(np.exp(icpt_p)), "a_minus": float(np.exp(icpt_n))}


def triplet_frequency(rule: TripletSTDP, delta_ms: float, pairings: int = 60, device="cpu"):
    """Δw after ``pairings`` pre–post pairs at each frequency, event by event, on ``device``."""
    f64 = {"dtype": torch.float64, "device": device}
    out = []
    for frequency in FREQUENCIES:
        period = 1000.0 / frequency
        pre_times = [20.0 + n * period for n in range(pairings)]
        post_times = [t + delta_ms for t in pre_times]
        times = sorted(set(pre_times) | set(post_times))
        weight, state, last = torch.zeros(1, 1, **f64), None, 0.0
        for n, t in enumerate(times):
            pre = torch.tensor([[float(t in pre_times)]], **f64)
            post = torch.tensor([[float(t in post_times)]], **f64)
            changes, state = rule.update(StepInfo(n, len(times), t - last, pre, post), state, (weight,))
            apply_changes((weight,), changes)
            last = t
        out.append(float(weight))
    return out


def run(*, quick: bool = False, seed: int = 0, progress: bool = True, dt: float = 0.5, device="cpu") -> Outcome:
    device = torch.device(device)
    torch.set_num_threads(1)
    start = time.perf_counter()
    rule = PairSTDP(tau_plus=PUBLISHED["tau_plus_ms"], tau_minus=PUBLISHED["tau_minus_ms"], a_plus=0.01, a_minus=0.0105)
    delays = [float(d) for d in np.arange(-100.0, 100.0 + 1e-9, 5.0)]
    delta_t, dw = pairing_window(rule, delays, 3 if quick else 60, dt, progress, device)
    closed = rule.window(delta_t).numpy()  # the closed form, on the CPU
    relative = np.abs(dw - closed) / np.abs(closed)
    fit = fit_window(delta_t, dw)
    triplet = {delta: triplet_frequency(TripletSTDP(), delta, device=device) for delta in (+10.0, -10.0)}
    plus, minus = triplet[10.0], triplet[-10.0]
    measured = {
        "tau_plus_ms": fit["tau_plus_ms"], "tau_minus_ms": fit["tau_minus_ms"],
        "max_relative_error_vs_closed_form": float(relative.max()), "pairs": len(delays),
        "pairings": 3 if quick else 60, "delta_t_ms": delta_t.tolist(), "dw_per_pairing": dw.tolist(),
        "triplet_frequencies_hz": FREQUENCIES, "triplet_dw_plus10ms": plus, "triplet_dw_minus10ms": minus,
        "wall_time_s": time.perf_counter() - start,
    }
    passed = (measured["max_relative_error_vs_closed_form"] <= 0.02
              and abs(fit["tau_plus_ms"] / PUBLISHED["tau_plus_ms"] - 1) <= 0.02
              and abs(fit["tau_minus_ms"] / PUBLISHED["tau_minus_ms"] - 1) <= 0.02
              and all(b > a for a, b in zip(plus, plus[1:]))
              and max(minus[:FREQUENCIES.index(20.0) + 1]) < 0 < minus[-1])

    def draw(path):
        from neuroplastic.report.plasticity import draw_window
        draw_window(path, delta_t, dw, lambda x: rule.window(x).numpy(), fit,
                    FREQUENCIES, triplet)

    return Outcome("stdp-window", passed, measured, PUBLISHED, draw)
