"""What outer loops pay: second-order derivatives and ``torch.func`` transforms against first order.

    python benchmarks/higher_order.py          # the machine record, then JSON (medians of 5 runs after a warm-up, ms)

Network: the digits recipe's shape, 64 inputs → 256 feed-forward discrete LIF → 10 leaky readouts,
T = 30, batch 32, input spikes at density 0.2, float32, 2 threads. Timed in one process, in turn:

- ``first_order``: ``loss.backward()`` through the fused operation (``path="auto"``);
- ``hvp_auto`` / ``hvp_step``: a Hessian-vector product by double backward (grad with
  ``create_graph=True``, then grad of ``g · v``) with the layer on ``path="auto"`` (the fused forward;
  its backward re-runs the recurrence with autograd) and on ``path="step"``;
- ``per_sample_vmap`` / ``per_sample_loop``: the 32 per-sample gradients by ``vmap(grad)`` and by a
  loop of 32 backward passes of one sample;
- ``population_vmap`` / ``population_loop``: the forward pass of 8 parameter sets, by ``vmap`` over
  stacked parameters and by a loop.
"""
from __future__ import annotations

import json
import statistics
import time

import torch
from torch.func import functional_call, grad, vmap

from neuroplastic import ALIF, FastSigmoid
from neuroplastic.bench.timing import machine_record
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path


def timed(function, repeats=5):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    torch.set_num_threads(2)
    print(machine_record(), flush=True)
    g = torch.Generator().manual_seed(0)
    neuron = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0))
    net = SpikingNetwork([SpikingLayer(64, 256, neuron, scale=2.0, generator=g)], LeakyReadout(256, 10, generator=g))
    x = (torch.rand(30, 32, 64, generator=g) < 0.2).float()
    labels = torch.randint(0, 10, (32,), generator=g)
    params = list(net.parameters())
    named = {k: v.detach() for k, v in net.named_parameters()}
    direction = [torch.randn_like(p) for p in params]

    def loss_of(p, inputs, targets):
        return torch.nn.functional.cross_entropy(functional_call(net, p, (inputs,)).readout.mean(0), targets)

    def first_order():
        torch.autograd.grad(loss_of(dict(net.named_parameters()), x, labels), params)

    def hvp():
        first = torch.autograd.grad(loss_of(dict(net.named_parameters()), x, labels), params, create_graph=True)
        torch.autograd.grad(sum((a * v).sum() for a, v in zip(first, direction)), params)

    def hvp_step():
        with use_path("step"):
            hvp()

    def per_sample_vmap():
        vmap(grad(loss_of), in_dims=(None, 1, 0))(named, x[:, :, None], labels[:, None])

    def per_sample_loop():
        for b in range(32):
            torch.autograd.grad(loss_of(dict(net.named_parameters()), x[:, b:b + 1], labels[b:b + 1]), params)

    population = [{k: v + 0.01 * torch.randn_like(v) for k, v in named.items()} for _ in range(8)]
    stacked = {k: torch.stack([p[k] for p in population]) for k in named}

    def population_vmap():
        with torch.no_grad():
            vmap(lambda p: functional_call(net, p, (x,)).readout)(stacked)

    def population_loop():
        with torch.no_grad():
            for p in population:
                functional_call(net, p, (x,))

    cases = {"first_order": first_order, "hvp_auto": hvp, "hvp_step": hvp_step,
             "per_sample_vmap": per_sample_vmap, "per_sample_loop": per_sample_loop,
             "population_vmap": population_vmap, "population_loop": population_loop}
    print(json.dumps({"network": "64-256 discrete LIF-10, T=30, B=32, float32",
                      "median_ms": {name: round(timed(case), 1) for name, case in cases.items()}}))


if __name__ == "__main__":
    main()
