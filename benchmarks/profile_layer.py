"""Where the standard workload's forward+backward pass spends its time: each C++ kernel timed inside
the pass, and the page faults of the pass (first writes to fresh memory).

neuroplastic's layer of ``neuroplastic bench`` (``Linear(N → N)`` and a LIF layer, input spikes of
rate 0.2, loss = spike count), one process, passes back to back after warm-ups. Prints one JSON
object: the mean milliseconds per pass of each kernel (``kernels_ms``), the median of the whole
pass (``pass_ms``), what is left outside the kernels, and the minor page faults of each pass.

    python benchmarks/profile_layer.py --size 512 --passes 20
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
from collections import defaultdict

import torch

from neuroplastic.bench.timing import elapsed_ms, machine_record, training_passes
from neuroplastic.bench.workloads import build
from neuroplastic.fused import backend

KERNELS = ("spike_index", "spike_index_transpose", "spike_sum", "spike_sum_packed", "lif_forward",
           "lif_backward_recompute")


def timed_kernels(times):
    """Replaces each kernel of ``torch.ops.neuroplastic_fused`` by a wrapper that records its time."""
    namespace = torch.ops.neuroplastic_fused
    for name in KERNELS:
        kernel = getattr(namespace, name)
        setattr(namespace, name, lambda *args, _name=name, _kernel=kernel: _record(times, _name, _kernel, args))


def _record(times, name, kernel, args):
    result = []
    times[name].append(elapsed_ms(lambda: result.append(kernel(*args))))
    return result[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(machine_record(), flush=True)
    if backend() != "cpp":
        raise SystemExit("the fused kernels need the C++ backend, which could not be built here")
    workload, x = build("neuroplastic", args.size, args.steps, args.batch)
    forward_backward = training_passes(workload, x)["fwd_bwd"]
    for _ in range(3):
        forward_backward()
    times, passes, faults = defaultdict(list), [], []
    timed_kernels(times)
    for _ in range(args.passes):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        passes.append(elapsed_ms(forward_backward))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    kernels = {name: round(sum(values) / args.passes, 2) for name, values in times.items()}
    pass_ms = statistics.median(passes)
    print(json.dumps({"size": args.size, "steps": args.steps, "batch": args.batch, "threads": args.threads,
                      "pass_ms": round(pass_ms, 2), "kernels_ms": kernels,
                      "outside_kernels_ms": round(pass_ms - sum(kernels.values()), 2),
                      "page_faults": faults}))


if __name__ == "__main__":
    main()
