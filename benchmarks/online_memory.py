"""Peak memory of one training batch against sequence length: online e-prop and DECOLLE against BPTT.

    python benchmarks/online_memory.py            # T = 500 and 5000, the machine record, then JSON

Network: 40 inputs → 100 recurrent ALIF neurons → 2 leaky readouts (the cue-accumulation network),
batch 16, Poisson inputs at 20 Hz, float32. Each (rule, T) runs in a fresh process; the figure is
the growth of the peak resident memory during the batch above the memory after setting up (inputs
included), in MB. Online rules run in ``mode="online"`` (gradients applied at the end of the sequence).

Every child runs with ``MALLOC_MMAP_THRESHOLD_=131072``: by default glibc raises its mmap threshold
after large blocks are freed, and the heap fragmentation of thousands of short-lived per-step
tensors then shows up as peak memory (e-prop: 24 → 139–289 MB between T = 500 and 5000 without it,
with nothing alive growing). The setting applies to BPTT alike.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

RULES = ("bptt", "eprop", "decolle")


def child(rule: str, steps: int) -> float:
    import torch

    from neuroplastic.tasks.base import Split, Task
    from neuroplastic.training.methods import make_method
    from neuroplastic.training.objectives import objective_for
    from neuroplastic.training.problem import Problem
    from neuroplastic.training.recipes import build_network, recipe_for

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    inputs = (torch.rand(16, steps, 40, generator=g) < 0.02).float()
    labels = torch.randint(0, 2, (16,), generator=g)
    task = Task("memory", Split(inputs, labels), Split(inputs, labels), 40, 2, 1.0, "classification", 150)
    net = build_network(task, recipe_for("cue"), seed=0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    method = make_method(rule) if rule == "bptt" else make_method(rule, mode="online", apply_every=None)
    learner = method.learner(Problem(net, objective_for(task), task.dt))
    batch = inputs.transpose(0, 1).contiguous()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    learner.train_batch(batch, labels, optimizer)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="500,5000")
    parser.add_argument("--child", nargs=2, metavar=("RULE", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(child(args.child[0], int(args.child[1])))
        return
    import torch

    from neuroplastic.bench.timing import machine_record

    torch.set_num_threads(1)  # as each child (child())
    print(machine_record(), flush=True)
    steps = [int(s) for s in args.steps.split(",")]
    results = []
    for rule in RULES:
        growth = {}
        for t in steps:
            out = subprocess.run([sys.executable, __file__, "--child", rule, str(t)], capture_output=True,
                                 text=True, check=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"})
            growth[t] = float(out.stdout.strip().splitlines()[-1])
        results.append({"rule": rule, "peak_growth_mb": growth,
                        "ratio_longest_to_shortest": growth[steps[-1]] / max(growth[steps[0]], 1e-9)})
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"batch": 16, "network": "40-100 recurrent ALIF-2", "results": results}))


if __name__ == "__main__":
    main()
