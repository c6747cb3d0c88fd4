"""``neuroplastic bench --case recurrent``: recurrent ALIF and LIF layers, forward and forward+backward,
against their floor and snnTorch (issue 19 §1).

**Workload**: input spikes (rate 0.2) through ``Dense(N → N)``, then a recurrent layer of N neurons,
float32, loss = the spike count:

- ``alif``: e-prop's LSNN cell, :class:`~neuroplastic.neurons.ALIF` at its defaults (adaptive threshold,
  β = 0.0174, τ_a = 2 s, reset by subtraction, refractory 5 ms, no autapses), input weights scaled ×3;
- ``lif``: the recurrent LIF, ``ALIF(beta=0, t_ref=0)``, ``β = 0.9``, ``θ = 1`` — snnTorch's ``RLeaky``
  (``reset_mechanism="subtract"``, its ``all_to_all`` linear given the same zero-diagonal weights and a
  zero bias) computes the same recurrence; the fraction of equal spikes is reported (``agreement``).
  Norse's LSNN cell has a synaptic current and resets to a value, SpikingJelly has no recurrent LIF
  of its own: neither computes these equations, so neither is a case.

Ways: neuroplastic's fused path (what a recurrent layer takes by itself:
:func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence`), its step path (``use_path("step")``),
snnTorch (``lif``, where installed and asked for).

**Floor.** A recurrent product cannot be batched over time: each step needs the previous step's spikes.
Forward: one ``(B×N)·(N×N)`` product per step; backward: one more per step (the gradient reaching
``z_{t−1}`` through ``W``) and the recurrent weight gradient, one product over all steps; plus the
input synapses' floor, as in the feed-forward bench (their dense product and weight gradient; no input
gradient: the input is data). Timed in the same rounds: ``rec_step`` (T products, in a Python loop:
its few µs per step make the floor slightly generous), ``wgrad`` and ``in_fwd`` (one product over all
steps each): ``floor = 2·in_fwd + 2·rec_step + wgrad``.

The ways run in this one process, taking turns (:func:`~neuroplastic.bench.timing.rounds`).
"""
from __future__ import annotations

import math
import os

import torch

from neuroplastic.bench.timing import machine, rounds, tensor_peak_mb
from neuroplastic.networks import SpikingLayer, use_path
from neuroplastic.neurons import ALIF, ResetBySubtraction

__all__ = ["run", "snntorch_layer", "table", "tensors_per_step", "workload"]

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

    rleaky = snntorch.RLeaky(beta=BETA, threshold=1.0, linear_features=layer.size, reset_mechanism="subtract")
    with torch.no_grad():
        rleaky.recurrent.weight.copy_(layer.recurrent.weight)
        rleaky.recurrent.bias.zero_()
    weight = layer.synapses.weight.detach().clone().requires_grad_()

    def forward(x):
        spike, mem = rleaky.init_rleaky()
        spikes = []
        for current in torch.nn.functional.linear(x, weight):
            spike, mem = rleaky(current, spike, mem)
            spikes.append(spike)
        return torch.stack(spikes)
    return forward, [weight, *rleaky.parameters()]


def _floor_passes(size: int, steps: int, batch: int) -> dict:
    generator = torch.Generator().manual_seed(1)
    z = torch.empty(steps, batch, size).bernoulli_(0.05, generator=generator)
    weight, out = torch.randn(size, size, generator=generator), torch.empty(batch, size)
    grads = torch.randn(steps * batch, size, generator=generator)

    def rec_step():
        transposed = weight.t()
        for row in z:
            torch.mm(row, transposed, out=out)
    return {"floor_rec_step": rec_step, "floor_wgrad": lambda: grads.t() @ z.view(-1, size),
            "floor_in_fwd": lambda: z.view(-1, size) @ weight.t()}


def _passes(ways: dict, name: str, forward, parameters, x) -> None:
    def fwd_bwd():
        for p in parameters:
            p.grad = None
        with torch.enable_grad():
            forward(x).sum().backward()
    ways[f"{name}_fwd"] = lambda: forward(x)
    ways[f"{name}_fwd_bwd"] = fwd_bwd


def tensors_per_step(layer, x, batch, size) -> float:
    """The fused forward+backward's tensor memory growth per step, in ``(B, N)`` float32 tensors. One
    pass first, unmeasured: the first backward of a shape may time its products once
    (:func:`~neuroplastic.fused.recurrent.pseudo_density`), with tensors of its own."""
    def pass_of(steps):
        return lambda: layer(x[:steps])[0].sum().backward()
    short, long = max(1, len(x) // 5), len(x)
    pass_of(short)()
    peaks = [tensor_peak_mb(pass_of(steps)) for steps in (short, long)]
    layer.zero_grad()
    return (peaks[1] - peaks[0]) * 2**20 / ((long - short) * batch * size * 4)


def run(size: int, steps: int, batch: int, repeats: int, threads: int, peers=(), bar=None) -> dict:
    """Times every way in ``repeats`` rounds (after a warm-up round) with ``threads`` torch threads;
    ``peers``: the peer libraries to include (snnTorch is the one with these equations)."""
    torch.set_num_threads(threads)
    load = [os.getloadavg()[0]]
    ways, agreement, memory = _floor_passes(size, steps, batch), None, {}
    for kind in NEURONS:
        layer, x = workload(kind, size, steps, batch)

        def step(inputs, layer=layer):
            with use_path("step"):
                return layer(inputs)[0]
        _passes(ways, f"{kind}_fused", lambda inputs, layer=layer: layer(inputs)[0], list(layer.parameters()), x)
        _passes(ways, f"{kind}_step", step, list(layer.parameters()), x)
        if kind == "lif" and "snntorch" in peers:
            forward, parameters = snntorch_layer(layer)
            _passes(ways, "lif_snntorch", forward, parameters, x)
            with torch.no_grad():
                agreement = float((layer(x)[0] == forward(x)).float().mean())
        memory[kind] = tensors_per_step(layer, x, batch, size)
    median, least = rounds(ways, repeats, bar)
    floor = 2 * median["floor_in_fwd"] + 2 * median["floor_rec_step"] + median["floor_wgrad"]
    load.append(os.getloadavg()[0])
    return {"case": "recurrent", "size": size, "steps": steps, "batch": batch, "threads": threads,
            "repeats": repeats, "median_ms": median, "min_ms": least, "floor_ms": floor,
            "over_floor": {k[:-len("_fwd_bwd")]: v / floor for k, v in median.items() if k.endswith("_fwd_bwd")},
            "snntorch_agreement": agreement, "activation_tensors_per_step": memory, "machine": machine(),
            "load_average": load}


def table(summary: dict) -> list[str]:
    m, floor = summary["median_ms"], summary["floor_ms"]
    lines = [f"recurrent layers, N = {summary['size']}, B = {summary['batch']}, T = {summary['steps']}, "
             f"{summary['threads']} thread(s); floor {floor:.1f} ms (per-step product {m['floor_rec_step']:.1f}, "
             f"weight gradient {m['floor_wgrad']:.1f}, input product {m['floor_in_fwd']:.1f})",
             "| layer | way | fwd (ms) | fwd+bwd (ms) | fwd+bwd / floor | tensors per step |",
             "|---|---|---|---|---|---|"]
    for kind in NEURONS:
        for way in ("fused", "step", "snntorch"):
            key = f"{kind}_{way}"
            if f"{key}_fwd" in m:
                memory = f"{summary['activation_tensors_per_step'][kind]:.2f}" if way == "fused" else "–"
                lines.append(f"| {kind} | {way} | {m[key + '_fwd']:.1f} | {m[key + '_fwd_bwd']:.1f} | "
                             f"{m[key + '_fwd_bwd'] / floor:.2f} | {memory} |")
    if summary["snntorch_agreement"] is not None:
        lines.append(f"snnTorch RLeaky: {100 * summary['snntorch_agreement']:.2f}% of spikes equal to the lif "
                     f"layer's; fused lif fwd+bwd {m['lif_snntorch_fwd_bwd'] / m['lif_fused_fwd_bwd']:.2f}× faster")
    return lines
