"""Equilibrium propagation against backpropagation through the same relaxation, on digits.

    python benchmarks/eqprop.py --seeds 0,1,2        # prints one JSON line per run, then the means

The same energy network (64 → 256 → 10, hard sigmoid, ε = 0.5, 100 free steps), the same cost
(½ ‖s_L − one-hot‖², a batch mean), optimizer (AdamW 3e-3, cosine schedule), batch (32) and epochs
(20): ``eqprop`` (one-sided, β = 0.5, 30 nudged steps) against ``bptt`` through every step of the
free relaxation (autograd of the relaxation's graph).
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from neuroplastic.networks import EnergyNetwork
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.objectives import Classification


def squared_error(readout, targets):
    """The EqProp cost at the output layer's state (the readout is constant in time)."""
    onehot = torch.nn.functional.one_hot(targets, readout.shape[-1]).to(readout.dtype)
    return 0.5 * ((readout[-1] - onehot) ** 2).sum() / readout.shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rules", default="eqprop,bptt")
    parser.add_argument("--out", default="neuroplastic-out/eqprop")
    args = parser.parse_args()
    results = {}
    for rule in args.rules.split(","):
        runs = []
        for seed in map(int, args.seeds.split(",")):
            task = load_task("digits", seed=seed)
            network = EnergyNetwork((task.n_inputs, 256, task.n_outputs), generator=torch.Generator().manual_seed(seed))
            options = {} if rule == "eqprop" else {"loss": squared_error, "evaluate": Classification().evaluate}
            summary = fit(task, rule, network=network, seed=seed, out=f"{args.out}/{rule}-{seed}", progress=False,
                          **options)
            runs.append({key: summary[key] for key in ("test_accuracy", "wall_time_s", "synops")})
            print(json.dumps({"rule": rule, "seed": seed, **runs[-1]}), flush=True)
        results[rule] = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
    print(json.dumps({"mean": results}))


if __name__ == "__main__":
    main()
