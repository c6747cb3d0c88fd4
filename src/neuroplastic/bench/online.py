"""``neuroplastic bench --case online``: what the online and local rules cost per training batch,
against a forward pass and BPTT (issue 19 §2).

The workload is the standard one's layer (input spikes at rate 0.2 → ``Dense(N → N)`` → N discrete
LIF neurons, β = 0.9, θ = 1) with a leaky readout of 10 classes and the cross-entropy of its readout
(``Classification()``): what a learning rule trains. Ways, each one batch:

- ``forward``: the network's forward pass without gradients (the fused layer), and ``forward_steps``:
  its one-step ``transition`` in a loop over T (what an online rule runs, without the rule);
- ``bptt``: a training step of BPTT (forward + backward + AdamW, the fused layer);
- ``eprop_online``, ``decolle_online``: a training step in ``mode="online"`` (traces updated at every
  step; e-prop's applied at the end, DECOLLE's at every step); ``…_unfiltered``: the same with
  ``filter_readout=False``, whose LIF traces factorize (one presynaptic trace per input, the steps'
  outer products summed in chunks: no per-synapse tensor); ``eprop_sequence``: e-prop's
  whole-sequence mode (recorded, then the traces as products over time).

The goals of issue 19 §2 read off ``over_forward_steps`` and ``over_bptt``: an online step ≤ 2× a
forward-only step, a whole-sequence e-prop update ≤ 1.2× BPTT. The ways run in this one process,
taking turns (:func:`~neuroplastic.bench.timing.rounds`).
"""
from __future__ import annotations

import math
import os

import torch

from neuroplastic.bench.timing import machine, rounds
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.training.methods import make_method
from neuroplastic.training.objectives import Classification
from neuroplastic.training.problem import Problem

__all__ = ["run", "table"]

CLASSES = 10
RULES = {"bptt": ("bptt", {}), "eprop_online": ("eprop", {"mode": "online"}),
         "eprop_online_unfiltered": ("eprop", {"mode": "online", "filter_readout": False}),
         "eprop_sequence": ("eprop", {}), "decolle_online": ("decolle", {"mode": "online"}),
         "decolle_online_unfiltered": ("decolle", {"mode": "online", "filter_readout": False})}


def network(size: int) -> SpikingNetwork:
    neuron = ALIF(tau_m=-1.0 / math.log(0.9), v_th=1.0, beta=0.0, t_ref=0.0, reset=ResetBySubtraction())
    generator = torch.Generator().manual_seed(0)
    return SpikingNetwork([SpikingLayer(size, size, neuron, generator=generator)],
                          LeakyReadout(size, CLASSES, tau_out=20.0, generator=generator))


def _ways(size: int, steps: int, batch: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    x = torch.empty(steps, batch, size).bernoulli_(0.2, generator=generator)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    net = network(size)

    @torch.no_grad()
    def forward_steps():
        state = net.init_state((batch,))
        for x_t in x:
            state = net.transition(state, x_t)[1]
    ways = {"forward": torch.no_grad()(lambda: net(x)), "forward_steps": forward_steps}
    for name, (rule, options) in RULES.items():
        trained = network(size)
        learner = make_method(rule, **options).learner(Problem(trained, Classification(), 1.0))
        optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-3)
        ways[name] = lambda learner=learner, optimizer=optimizer: learner.train_batch(x, labels, optimizer)
    return ways


def run(size: int, steps: int, batch: int, repeats: int, threads: int, bar=None) -> dict:
    """Times every way in ``repeats`` rounds (after a warm-up round) with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    load = [os.getloadavg()[0]]
    median, least = rounds(_ways(size, steps, batch), repeats, bar)
    load.append(os.getloadavg()[0])
    return {"case": "online", "size": size, "steps": steps, "batch": batch, "threads": threads,
            "repeats": repeats, "median_ms": median, "min_ms": least,
            "ms_per_sample": {name: ms / batch for name, ms in median.items()},
            "over_forward_steps": {name: ms / median["forward_steps"] for name, ms in median.items()},
            "over_bptt": {name: ms / median["bptt"] for name, ms in median.items()},
            "machine": machine(), "load_average": load}


def table(summary: dict) -> list[str]:
    lines = [f"online rules, N = {summary['size']}, B = {summary['batch']}, T = {summary['steps']}, "
             f"{summary['threads']} thread(s); ms per training batch, median of {summary['repeats']} rounds",
             "| way | ms per batch | ms per sample | vs forward_steps | vs bptt |", "|---|---|---|---|---|"]
    for name, ms in summary["median_ms"].items():
        lines.append(f"| {name} | {ms:.1f} | {summary['ms_per_sample'][name]:.2f} | "
                     f"{summary['over_forward_steps'][name]:.2f}× | {summary['over_bptt'][name]:.2f}× |")
    return lines
