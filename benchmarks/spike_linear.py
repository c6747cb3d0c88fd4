"""Event-driven synapses against the matrix product: where each pass of ``spike_linear`` wins.

For spike input ``S`` (``rows`` × ``n``, density ``p``) and weights ``n × n``: the forward product
``S Wᵀ`` and the weight gradient ``Gᵀ S`` (``G`` a random ``dL/dI``), each by BLAS
(``nn.functional.linear`` and its backward) and event-driven (:mod:`neuroplastic.fused.event_linear`
with its density limits lifted, so that every density is timed). Medians of ``--repeats`` calls
after a warm-up; the two paths alternate call by call, so a busy spell falls on both. The indexing
of the spikes is counted in the event-driven forward. Prints one JSON object per size and density.

    python benchmarks/spike_linear.py --sizes 512 2048 --densities 0.05 0.2 0.4 0.5
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from neuroplastic.bench.timing import elapsed_ms, machine_record
from neuroplastic.fused import backend, event_linear


def passes(spikes, weight, grad, dense: bool):
    """(forward, weight gradient) of one path, as callables."""
    weight = weight.requires_grad_()
    linear = torch.nn.functional.linear if dense else event_linear.spike_linear

    def forward():
        with torch.no_grad():
            return linear(spikes, weight)

    out = linear(spikes, weight)

    def weight_gradient():
        return torch.autograd.grad(out, weight, grad, retain_graph=True)

    return forward, weight_gradient


def measure(size: int, rows: int, density: float, repeats: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    spikes = torch.empty(rows, size).bernoulli_(density, generator=generator)
    weight = torch.empty(size, size).uniform_(-1, 1, generator=generator) / size**0.5
    grad = torch.empty(rows, size).normal_(generator=generator)
    paths = {name: passes(spikes, weight.clone(), grad, name == "blas") for name in ("blas", "event")}
    times = {(name, kind): [] for name in paths for kind in ("forward", "weight_gradient")}
    for round_ in range(repeats + 1):
        for name, (forward, weight_gradient) in paths.items():
            for kind, fn in (("forward", forward), ("weight_gradient", weight_gradient)):
                elapsed = elapsed_ms(fn)
                if round_:  # the first round warms up
                    times[name, kind].append(elapsed)
    result = {"n": size, "rows": rows, "density": density}
    for (name, kind), values in times.items():
        result[f"{name}_{kind}_ms"] = round(statistics.median(values), 2)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.05, 0.2, 0.4, 0.5])
    parser.add_argument("--rows", type=int, default=8000, help="T·B (default 500 steps × 16)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(machine_record(), flush=True)
    if backend() != "cpp":
        raise SystemExit("the event-driven kernel needs the C++ backend, which could not be built here")
    event_linear.FORWARD_DENSITY = event_linear.GRADIENT_DENSITY = 1.0  # time every density
    event_linear.FORWARD_MAX_INPUTS = max(args.sizes)
    for size in args.sizes:
        for density in args.densities:
            print(json.dumps(measure(size, args.rows, density, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
