"""What the online and local rules cost per training batch, against a forward pass and BPTT: BENCHMARKS.md
"Online and local rules: time" (issue 19 §2).

    python benchmarks/online_cost.py               # N = 512, B = 16, T = 500, one thread, 3 rounds
    python benchmarks/online_cost.py --quick       # N = 64, T = 50

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

The goals of issue 19 §2 read off the table: an online step ≤ 2× a forward-only step (``eprop_online``
and ``…_unfiltered`` against ``forward_steps``), and a whole-sequence e-prop update ≤ 1.2× BPTT. Each
round times every way once, taking turns; a time is the median over the rounds. Prints a markdown table, then one JSON
object (ms per batch, and per sample).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time

import torch

from neuroplastic.bench.timing import layer_arguments, machine
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.training.methods import make_method
from neuroplastic.training.objectives import Classification
from neuroplastic.training.problem import Problem

CLASSES = 10


def network(size: int) -> SpikingNetwork:
    neuron = ALIF(tau_m=-1.0 / math.log(0.9), v_th=1.0, beta=0.0, t_ref=0.0, reset=ResetBySubtraction())
    generator = torch.Generator().manual_seed(0)
    return SpikingNetwork([SpikingLayer(size, size, neuron, generator=generator)],
                          LeakyReadout(size, CLASSES, tau_out=20.0, generator=generator))


def ways(size: int, steps: int, batch: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    x = torch.empty(steps, batch, size).bernoulli_(0.2, generator=generator)
    labels = torch.randint(0, CLASSES, (batch,), generator=generator)
    found = {}
    net = network(size)

    @torch.no_grad()
    def forward_steps():
        state = net.init_state((batch,))
        for x_t in x:
            state = net.transition(state, x_t)[1]
    found["forward"] = torch.no_grad()(lambda: net(x))
    found["forward_steps"] = forward_steps
    for name, options in (("bptt", {}), ("eprop_online", {"mode": "online"}),
                          ("eprop_online_unfiltered", {"mode": "online", "filter_readout": False}),
                          ("eprop_sequence", {}), ("decolle_online", {"mode": "online"}),
                          ("decolle_online_unfiltered", {"mode": "online", "filter_readout": False})):
        rule_net = network(size)
        method = make_method(name.split("_")[0], **options)
        learner = method.learner(Problem(rule_net, Classification(), 1.0))
        optimizer = torch.optim.AdamW(rule_net.parameters(), lr=1e-3)
        found[name] = lambda learner=learner, optimizer=optimizer: learner.train_batch(x, labels, optimizer)
    return found


def main(argv=None) -> dict:
    args = layer_arguments(__doc__.split("\n")[0], 3, argv)
    load = [os.getloadavg()[0]]
    found = ways(args.size, args.steps, args.batch)
    times = {name: [] for name in found}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, fn in found.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(1e3 * (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in times.items()}
    load.append(os.getloadavg()[0])
    print(f"N = {args.size}, B = {args.batch}, T = {args.steps}, {args.threads} thread(s)\n")
    print("| way | ms per batch | ms per sample | vs forward_steps | vs bptt |")
    print("|---|---|---|---|---|")
    for name, ms in median.items():
        print(f"| {name} | {ms:.1f} | {ms / args.batch:.2f} | {ms / median['forward_steps']:.2f}× | "
              f"{ms / median['bptt']:.2f}× |")
    result = {"size": args.size, "steps": args.steps, "batch": args.batch, "threads": args.threads,
              "median_ms": median, "machine": machine(), "load_average": load}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
