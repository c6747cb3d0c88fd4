"""``stdp-bimodal``: Song, Miller & Abbott (2000), "Competitive Hebbian learning through
spike-timing-dependent synaptic plasticity", Nat. Neurosci. 3:919 — in the form of Brian2's example.

1000 Poisson inputs at 15 Hz drive one conductance-based LIF neuron through excitatory synapses with
additive all-to-all pair STDP (τ± = 20 ms, A+ = 0.01 g_max, A− = 1.05 A+) and hard bounds
``[0, g_max]``, weights starting uniform in ``[0, g_max]``. Because depression slightly outweighs
potentiation, only inputs whose spikes tend to cause output spikes grow: the synapses compete, the
weight distribution splits towards the two bounds (U-shaped), and the output rate settles lower.

Criteria: at the end ≥ 20% of the weights below 0.1 g_max and ≥ 15% above 0.9 g_max, each of these
two outer deciles fuller than any of the eight middle ones, and the output rate within 25% of Brian2's
26 Hz. Published (REFERENCE.md): Brian2 2.9 on this network, 100 s at dt = 0.1 ms — 23% below
0.1 g_max, 19% above 0.9 g_max, middle deciles ≤ 12% each, output ≈ 26 Hz.

Full: 100 s at dt = 0.1 ms. Quick: 60 s with A+ (and A−) ×1.5, the same drift in fewer seconds.
"""
from __future__ import annotations

import time

import torch

from neuroplastic.experiments.base import Outcome, progress_bar
from neuroplastic.experiments.song import SongNetwork, poisson_events, simulate_events

PUBLISHED = {"fraction_below_0.1_gmax": 0.23, "fraction_above_0.9_gmax": 0.19, "middle_decile_max": 0.12,
             "output_rate_hz": 26.0, "source": "Brian2 2.9, same network, 100 s, dt 0.1 ms (REFERENCE.md)"}


def measure(weights: torch.Tensor, g_max: float) -> dict:
    """The decile fractions of ``weights / g_max`` and the bimodality criteria."""
    fractions = torch.histc(weights / g_max, bins=10, min=0.0, max=1.0) / weights.numel()
    deciles = [float(f) for f in fractions]
    middle = max(deciles[1:9])
    return {"fraction_below_0.1_gmax": deciles[0], "fraction_above_0.9_gmax": deciles[9],
            "middle_decile_max": middle, "deciles": deciles,
            "u_shaped": deciles[0] > middle and deciles[9] > middle}


def run(*, quick: bool = False, seed: int = 0, progress: bool = True, duration_ms: float | None = None,
        dt: float = 0.1, device="cpu") -> Outcome:
    device = torch.device(device)
    torch.set_num_threads(1)
    net = SongNetwork(a_plus=0.015) if quick else SongNetwork()
    duration = duration_ms if duration_ms is not None else (60_000.0 if quick else 100_000.0)
    steps = round(duration / dt)
    generator = torch.Generator().manual_seed(seed)
    w0 = net.initial_weights(generator)
    start = time.perf_counter()
    events = tuple(e.to(device) for e in poisson_events(net.n_inputs, net.rate_hz, steps, dt, generator))
    bar = progress_bar(steps, "stdp-bimodal", progress)
    done = [0]

    def advance(step):
        bar.update(step - done[0])
        done[0] = step

    second = round(1000.0 / dt)
    weights, out, snapshots = simulate_events(net, w0.to(device), events, steps, dt, progress=advance,
                                              snapshot_every=second)
    weights, snapshots = weights.cpu(), [s.cpu() for s in snapshots]
    bar.close()
    wall = time.perf_counter() - start
    window = min(10 * second, steps)
    rate_end = float((out >= steps - window).sum()) / (window * dt / 1000.0)
    rate_start = float((out < window).sum()) / (window * dt / 1000.0)
    measured = {**measure(weights, net.g_max), "output_rate_hz": rate_end, "initial_output_rate_hz": rate_start,
                "duration_s": duration / 1000.0, "dt_ms": dt, "n_inputs": net.n_inputs, "wall_time_s": wall,
                "realtime_factor": (duration / 1000.0) / wall}
    passed = (measured["fraction_below_0.1_gmax"] >= 0.20 and measured["fraction_above_0.9_gmax"] >= 0.15
              and measured["u_shaped"] and abs(rate_end - PUBLISHED["output_rate_hz"]) <= 0.25 * 26.0)

    def draw(path):
        from neuroplastic.report.plasticity import draw_bimodal
        draw_bimodal(path, w0 / net.g_max, weights / net.g_max, out, steps, dt,
                     [s / net.g_max for s in snapshots], measured)

    return Outcome("stdp-bimodal", passed, measured, PUBLISHED, draw)
