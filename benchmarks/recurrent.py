"""Recurrent ALIF and LIF layers, forward and forward+backward, against their floor and snnTorch: the
numbers of BENCHMARKS.md "Recurrent layers".

    python benchmarks/recurrent.py                 # N = 512, B = 16, T = 500, 5 rounds, ~3 min
    python benchmarks/recurrent.py --threads 2
    python benchmarks/recurrent.py --quick         # N = 64, T = 50: a smoke test

**Workload** (issue 19 §1): input spikes (rate 0.2) through ``Dense(N → N)``, then a recurrent layer of
N neurons, float32, loss = the spike count, forward and forward+backward:

- ``alif``: e-prop's LSNN cell, :class:`~neuroplastic.neurons.ALIF` at its defaults (adaptive threshold,
  β = 0.0174, τ_a = 2 s, reset by subtraction, refractory 5 ms, no autapses), input weights scaled ×3;
- ``lif``: the recurrent LIF, ``ALIF(beta=0, t_ref=0)``, ``β = 0.9``, ``θ = 1`` — snnTorch's ``RLeaky``
  (``reset_mechanism="subtract"``, its ``all_to_all`` linear given the same zero-diagonal weights and a
  zero bias) computes the same recurrence; the agreement of its spikes with neuroplastic's is printed.

Ways: neuroplastic's fused path (what a recurrent layer takes by itself:
:func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence`), its step path (``use_path("step")``,
what ran before), snnTorch (``lif`` only: it has no adaptive neuron; installed with the bench extra).

**Floor.** A recurrent product cannot be batched over time: each step needs the previous step's spikes.
Forward: one ``(B×N)·(N×N)`` product per step; backward: one more per step (the gradient reaching
``z_{t−1}`` through ``W``) and the recurrent weight gradient, one product over all steps; plus the
input synapses' floor, as in the feed-forward bench (their dense product and weight gradient; no input
gradient: the input is data). Timed in the same rounds: ``rec_step`` (T products, in a Python loop:
its few µs per step make the floor slightly generous), ``wgrad`` and ``in_fwd`` (one product over all
steps each). ``floor = 2·in_fwd + 2·rec_step + wgrad`` (the input weight gradient costs what
``in_fwd`` does, and ``wgrad`` what it does).

Each round times every way once, taking turns, so that a busy spell of a shared machine slows one
round of every way; a time is the median over the rounds. Prints a markdown table and, last, one JSON
object with every time (ms), the machine (CPU model and flags) and the load.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import time

import torch

from neuroplastic.bench.timing import layer_arguments, machine, tensor_peak_mb
from neuroplastic.networks import SpikingLayer, use_path
from neuroplastic.neurons import ALIF, ResetBySubtraction

BETA, RATE = 0.9, 0.2
NEURONS = {
    "alif": lambda: ALIF(),
    "lif": lambda: ALIF(tau_m=-1.0 / math.log(BETA), v_th=1.0, beta=0.0, t_ref=0.0, reset=ResetBySubtraction()),
}
INPUT_SCALE = {"alif": 3.0, "lif": 1.0}


def workload(kind: str, size: int, steps: int, batch: int, seed: int = 0):
    """neuroplastic's layer and the input spikes; weights ``U(±1/√N)``, the recurrent diagonal zero."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(steps, batch, size).bernoulli_(RATE, generator=generator)
    layer = SpikingLayer(size, size, NEURONS[kind](), recurrent=True)
    with torch.no_grad():
        layer.synapses.weight.uniform_(-1.0, 1.0, generator=generator).mul_(INPUT_SCALE[kind] / math.sqrt(size))
        layer.recurrent.parametrizations.weight.original.uniform_(-1.0, 1.0, generator=generator).div_(
            math.sqrt(size))
    return layer, x


def snntorch_layer(layer: SpikingLayer):
    """snnTorch's ``RLeaky`` with the layer's weights: ``forward(x)`` gives spikes ``(T, B, N)``."""
    import snntorch

    size = layer.size
    rleaky = snntorch.RLeaky(beta=BETA, threshold=1.0, linear_features=size, reset_mechanism="subtract")
    with torch.no_grad():
        rleaky.recurrent.weight.copy_(layer.recurrent.weight)
        rleaky.recurrent.bias.zero_()
    weight = layer.synapses.weight.detach().clone().requires_grad_()
    parameters = [weight, *rleaky.parameters()]

    def forward(x):
        spike, mem = rleaky.init_rleaky()
        spikes = []
        for current in torch.nn.functional.linear(x, weight):
            spike, mem = rleaky(current, spike, mem)
            spikes.append(spike)
        return torch.stack(spikes)
    return forward, parameters


def floor_passes(size: int, steps: int, batch: int):
    generator = torch.Generator().manual_seed(1)
    z = torch.empty(steps, batch, size).bernoulli_(0.05, generator=generator)
    weight, out = torch.randn(size, size, generator=generator), torch.empty(batch, size)
    grads = torch.randn(steps * batch, size, generator=generator)

    def rec_step():
        transposed = weight.t()
        for row in z:
            torch.mm(row, transposed, out=out)
    return {"rec_step": rec_step, "wgrad": lambda: grads.t() @ z.view(-1, size),
            "in_fwd": lambda: z.view(-1, size) @ weight.t()}


def training_ways(kind: str, size: int, steps: int, batch: int) -> dict:
    layer, x = workload(kind, size, steps, batch)
    ways = {}

    def passes(forward, parameters, name):
        def fwd_bwd():
            for p in parameters:
                p.grad = None
            forward(x).sum().backward()
        ways[f"{name}_fwd"] = lambda: forward(x)
        ways[f"{name}_fwd_bwd"] = fwd_bwd

    def fused(inputs):
        return layer(inputs)[0]

    def step(inputs):
        with use_path("step"):
            return layer(inputs)[0]
    passes(fused, list(layer.parameters()), f"{kind}_fused")
    passes(step, list(layer.parameters()), f"{kind}_step")
    if kind == "lif" and importlib.util.find_spec("snntorch") is not None:
        forward, parameters = snntorch_layer(layer)
        passes(forward, parameters, "lif_snntorch")
        with torch.no_grad():
            ours, theirs = fused(x), forward(x)
        ways["agreement"] = float((ours == theirs).float().mean()), float(ours.mean()), float(theirs.mean())
    return ways, layer, x


def main(argv=None) -> dict:
    args = layer_arguments(__doc__.split("\n")[0], 5, argv)
    load = [os.getloadavg()[0]]
    ways = {f"floor_{name}": fn for name, fn in floor_passes(args.size, args.steps, args.batch).items()}
    agreement, memory = None, {}
    for kind in NEURONS:
        found, layer, x = training_ways(kind, args.size, args.steps, args.batch)
        agreement = found.pop("agreement", agreement)
        ways.update(found)
        memory[kind] = _tensors_per_step(layer, x, args.batch, args.size)
    times = {name: [] for name in ways}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, fn in ways.items():
            start = time.perf_counter()
            with torch.enable_grad():
                fn()
            if round_:
                times[name].append(1e3 * (time.perf_counter() - start))
        print(f"round {round_}/{args.rounds}", flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    floor = 2 * median["floor_in_fwd"] + 2 * median["floor_rec_step"] + median["floor_wgrad"]
    load.append(os.getloadavg()[0])
    result = {"size": args.size, "steps": args.steps, "batch": args.batch, "threads": args.threads,
              "rounds": args.rounds, "median_ms": median, "min_ms": {k: min(v) for k, v in times.items()},
              "floor_ms": floor, "snntorch_agreement": agreement, "activation_tensors_per_step": memory,
              "machine": machine(), "load_average": load}
    _table(result)
    print(json.dumps(result))
    return result


def _tensors_per_step(layer, x, batch, size):
    """The fused forward+backward's tensor memory growth per step, in ``(B, N)`` float32 tensors."""
    def pass_of(steps):
        return lambda: layer(x[:steps])[0].sum().backward()
    short, long = max(1, len(x) // 5), len(x)
    peaks = [tensor_peak_mb(pass_of(steps)) for steps in (short, long)]
    layer.zero_grad()
    return (peaks[1] - peaks[0]) * 2**20 / ((long - short) * batch * size * 4)


def _table(result):
    m, floor = result["median_ms"], result["floor_ms"]
    print(f"\nN = {result['size']}, B = {result['batch']}, T = {result['steps']}, {result['threads']} thread(s); "
          f"floor {floor:.1f} ms (per-step product {m['floor_rec_step']:.1f}, weight gradient "
          f"{m['floor_wgrad']:.1f}, input product {m['floor_in_fwd']:.1f})\n")
    print("| layer | way | fwd (ms) | fwd+bwd (ms) | fwd+bwd / floor | tensors per step |")
    print("|---|---|---|---|---|---|")
    for kind in NEURONS:
        for way in ("fused", "step", "snntorch"):
            key = f"{kind}_{way}"
            if f"{key}_fwd" in m:
                memory = f"{result['activation_tensors_per_step'][kind]:.2f}" if way == "fused" else "–"
                print(f"| {kind} | {way} | {m[key + '_fwd']:.1f} | {m[key + '_fwd_bwd']:.1f} | "
                      f"{m[key + '_fwd_bwd'] / floor:.2f} | {memory} |")


if __name__ == "__main__":
    main()
