"""Equilibrium propagation against backpropagation through the same relaxation, on digits and on
MNIST-1D, and its spiking form.

    python benchmarks/eqprop.py --task digits --seeds 0,1,2                       # eqprop and bptt
    python benchmarks/eqprop.py --task digits --rules spiking --beta 1.0 --lr 1e-3 --seeds 0,1,2
    python benchmarks/eqprop.py --task mnist1d --seeds 0 --epochs 30 --step-size 0.25 --free-steps 200 --nudged-steps 60

Prints one JSON line per run, then the means. The same energy network (inputs → 256 → 10, hard sigmoid,
ε = 0.5, 100 free steps), the same cost (½ ‖s_L − one-hot‖², a batch mean), optimizer (AdamW 3e-3,
cosine schedule), batch (32) and epochs (digits' recipe: 20): ``eqprop`` (one-sided, β = 0.5, 30
nudged steps), ``spiking`` (the same with layers that talk in spikes, traces of τ = 10 steps), and
``bptt`` through every step of the free relaxation (autograd of the relaxation's graph). MNIST-1D is
read as static vectors (``mnist1d(static=True)``: each of a signal's 40 values as an ON and an OFF rate).
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from neuroplastic.bench.timing import machine_record
from neuroplastic.networks import EnergyNetwork, SpikingEnergyNetwork
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.objectives import Classification

NETWORKS = {"eqprop": EnergyNetwork, "spiking": SpikingEnergyNetwork, "bptt": EnergyNetwork}


def squared_error(readout, targets):
    """The EqProp cost at the output layer's state (the readout is constant in time)."""
    onehot = torch.nn.functional.one_hot(targets, readout.shape[-1]).to(readout.dtype)
    return 0.5 * ((readout[-1] - onehot) ** 2).sum() / readout.shape[1]


def train(task_name: str, rule: str, seed: int, epochs: int | None, out: str, beta: float, lr: float | None,
          relaxation: dict) -> dict:
    task = load_task(task_name, seed=seed, **({"static": True} if task_name == "mnist1d" else {}))
    network = NETWORKS[rule]((task.n_inputs, 256, task.n_outputs), **relaxation,
                             generator=torch.Generator().manual_seed(seed))
    if rule == "bptt":
        options = {"loss": squared_error, "evaluate": Classification().evaluate}
    else:
        options = {"rule_options": {"spiking": rule == "spiking", "beta": beta}}
    summary = fit(task, "bptt" if rule == "bptt" else "eqprop", network=network, seed=seed, epochs=epochs, lr=lr,
                  out=out, progress=False, **options)
    return {key: summary[key] for key in ("test_accuracy", "wall_time_s", "synops")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits", choices=("digits", "mnist1d"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rules", default="eqprop,bptt", help=f"comma-separated: {', '.join(NETWORKS)}")
    parser.add_argument("--epochs", type=int, help="epochs (default: the task's recipe)")
    parser.add_argument("--beta", type=float, default=0.5, help="EqProp's nudging β (default 0.5)")
    parser.add_argument("--lr", type=float, help="learning rate (default: the task's recipe)")
    parser.add_argument("--step-size", type=float, default=0.5, help="the relaxation's ε (default 0.5)")
    parser.add_argument("--free-steps", type=int, default=100, help="steps of the free relaxation (default 100)")
    parser.add_argument("--nudged-steps", type=int, default=30, help="steps of a nudged relaxation (default 30)")
    parser.add_argument("--out", default="neuroplastic-out/eqprop")
    args = parser.parse_args()
    print(machine_record(), flush=True)
    results = {}
    for rule in args.rules.split(","):
        if rule not in NETWORKS:
            parser.error(f"unknown rule {rule!r}; choose from {', '.join(NETWORKS)}")
        runs = []
        for seed in map(int, args.seeds.split(",")):
            runs.append(train(args.task, rule, seed, args.epochs, f"{args.out}/{args.task}-{rule}-{seed}", args.beta,
                              args.lr, {"step_size": args.step_size, "free_steps": args.free_steps,
                                        "nudged_steps": args.nudged_steps}))
            print(json.dumps({"task": args.task, "rule": rule, "seed": seed, **runs[-1]}), flush=True)
        results[rule] = {key: statistics.mean(run[key] for run in runs) for key in runs[0]}
    print(json.dumps({"mean": results}))


if __name__ == "__main__":
    main()
