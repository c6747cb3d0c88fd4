"""Time a feed-forward LIF layer under BPTT: fused C++, fused PyTorch fallback, the step path.

"fused C++" evaluates its (built-in) surrogate inside the kernel and recomputes the voltages in the
backward; "fused C++, PyTorch surrogate" is the same kernel given a surrogate it does not know (the
same fast sigmoid as a subclass), evaluated by PyTorch from all the voltages, as any custom one is.

The layer is one ``Linear(N → N)`` over all steps (one matrix product), then the LIF recurrence,
then ``loss = spikes.sum()``. The GEMM floor is the matrix work of a dense implementation: the
forward product ``(T·B × N) @ (N × N)`` and the weight gradient ``(N × T·B) @ (T·B × N)``. The
"(LIF only)" rows time the recurrence and the loss alone, from a leaf tensor of currents: what each
implementation adds to the floor, less disturbed by a busy machine than the full layer's time.

    python benchmarks/fused_lif.py --sizes 512 4096 --repeats 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from neuroplastic import fused
from neuroplastic.bench.timing import machine_record
from neuroplastic.fused import extension
from neuroplastic.spikes import FastSigmoid, spike

BETA, THRESHOLD, SURROGATE = 0.9, 1.0, FastSigmoid()


class CustomFastSigmoid(FastSigmoid):
    """The same surrogate, unknown to the C++ kernel (a subclass may change ``derivative``)."""


def step_path(currents):
    v = z = torch.zeros_like(currents[0])
    spikes = []
    for current in currents:
        v = BETA * v + current - THRESHOLD * z
        z = spike(v - THRESHOLD, SURROGATE)
        spikes.append(z)
    return torch.stack(spikes)


def fused_path(backend, surrogate=SURROGATE):
    def run(currents):
        os.environ[extension.ENV] = backend
        return fused.lif_sequence(currents, beta=BETA, threshold=THRESHOLD, surrogate=surrogate)[0]
    return run


def timings(fns, repeats):
    """Median and minimum wall time (ms) of each function after a warm-up, taking turns (so a busy
    spell on a shared machine hits them all alike); the minimum is the least disturbed run."""
    times = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            spent.append(1e3 * (time.perf_counter() - start))
    return [(statistics.median(spent), min(spent)) for spent in times]


def measure(size, steps, batch, repeats):
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, batch, size, generator=generator) < 0.2).float()  # input spikes
    weight = (torch.randn(size, size, generator=generator) * (3.0 / size**0.5)).requires_grad_()
    flat = x.reshape(-1, size)
    grad = torch.randn(steps * batch, size, generator=generator)
    currents = (flat @ weight.detach().T).reshape(steps, batch, size).requires_grad_()
    rows = {"GEMM floor": (lambda: flat @ weight.detach().T,
                           lambda: (flat @ weight.detach().T, grad.T @ flat))}
    for name, layer in [("fused C++", fused_path("cpp")),
                        ("fused C++, PyTorch surrogate", fused_path("cpp", CustomFastSigmoid())),
                        ("fused fallback", fused_path("torch")), ("step path", step_path)]:
        def layer_input():
            return (flat @ weight.T).reshape(steps, batch, size)

        for suffix, make_input, leaf in [("", layer_input, weight),
                                         (" (LIF only)", lambda: currents, currents)]:
            def forward(layer=layer, make_input=make_input):
                return layer(make_input())

            def forward_backward(forward=forward, leaf=leaf):
                leaf.grad = None
                forward().sum().backward()

            rows[name + suffix] = (forward, forward_backward)
    print(f"B={batch} T={steps} N={size} float32, {torch.get_num_threads()} threads, "
          f"ms: median (min) of {repeats}")
    print(f"{'':40}{'forward':>16}{'fwd+bwd':>16}{'fwd+bwd / floor':>18}")
    results = iter(timings([fn for pair in rows.values() for fn in pair], repeats))
    floor = None
    for name in rows:
        (fwd, fwd_min), (both, both_min) = next(results), next(results)
        floor = floor or (both, both_min)
        print(f"{name:40}{fwd:9.1f} ({fwd_min:4.0f}){both:9.1f} ({both_min:4.0f})"
              f"{both / floor[0]:9.2f} ({both_min / floor[1]:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ[extension.ENV] = "cpp"
    print(machine_record(), flush=True)
    print(f"backend: {fused.backend()}")
    for size in args.sizes:
        measure(size, args.steps, args.batch, args.repeats)


if __name__ == "__main__":
    main()
