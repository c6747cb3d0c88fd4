"""Training on each device: one epoch of a task per rule, the same seed on every device, timed.

    python benchmarks/devices.py --devices cpu,cuda --rules bptt,eprop,decolle,eqprop,pat --epochs 1

Prints one JSON line per (device, rule) — wall time of training, test accuracy after it, the host
synchronisations that one training batch makes at two sequence lengths (CUDA only: counted with
``torch.cuda.set_sync_debug_mode``; equal counts mean none happens per time step) — then a table with
each device's time over the CPU's. Every run starts from the same weights and batches (drawn on the
CPU), so the accuracies differ only by the devices' rounding.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings

import torch

from neuroplastic.bench.timing import machine_record
from neuroplastic.devices import parse_device
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.methods import as_method
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import Problem
from neuroplastic.training.recipes import build_network, recipe_for

CHIP = {"pat": {"mismatch": 0.3}, "twin": {"mismatch": 0.3}}


def host_syncs(task_name: str, rule: str, device: torch.device, steps: int) -> dict:
    """Synchronising CUDA calls one training batch of 32 samples, cut to ``steps`` steps, makes: how
    many, and the lines that made them."""
    task = load_task(task_name, seed=0)
    recipe = recipe_for(task.name, None)
    method = as_method(rule, **CHIP.get(rule, {}))
    network = getattr(method, "build_network", build_network)(task, recipe, seed=0).to(device)
    learner = method.learner(Problem(network, objective_for(task), task.dt, generator=torch.Generator().manual_seed(1)))
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    inputs, targets = next(task.batches("train", 32, shuffle=False))
    inputs, targets = inputs[:steps].to(device), targets.to(device)
    learner.train_batch(inputs, targets, optimizer)  # warm-up: lazy initialisations sync once
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            learner.train_batch(inputs, targets, optimizer)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    places = sorted({f"{w.filename.split('site-packages/')[-1]}:{w.lineno}" for w in caught
                     if "synchronizing" in str(w.message)})
    return {"count": sum("synchronizing" in str(w.message) for w in caught), "where": places}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="digits")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--rules", default="bptt,eprop,decolle,etl,eqprop,pat")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine_record(), flush=True)
    devices = [parse_device(name) for name in args.devices.split(",")]
    rows = []
    for rule in args.rules.split(","):
        for device in devices:
            with tempfile.TemporaryDirectory() as out:
                summary = fit(args.task, rule, epochs=args.epochs, seed=args.seed, out=out, device=device,
                              rule_options=CHIP.get(rule), progress=False)
            row = {"task": args.task, "rule": rule, "device": str(device), "epochs": args.epochs,
                   "wall_time_s": round(summary["wall_time_s"], 2),
                   "test_accuracy": summary.get("test_accuracy"), "synops": summary["synops"]}
            if device.type == "cuda":
                row["host_syncs_per_batch"] = {steps: host_syncs(args.task, rule, device, steps) for steps in (20, 40)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cpu = {row["rule"]: row["wall_time_s"] for row in rows if row["device"] == "cpu"}
    print(f"{'rule':<10} {'device':<8} {'time (s)':>9} {'× CPU':>7} {'accuracy':>9}  host syncs per batch (T=20/40)")
    for row in rows:
        ratio = row["wall_time_s"] / cpu[row["rule"]] if row["rule"] in cpu else float("nan")
        syncs = {steps: found["count"] for steps, found in row.get("host_syncs_per_batch", {}).items()}
        print(f"{row['rule']:<10} {row['device']:<8} {row['wall_time_s']:>9.2f} {ratio:>7.2f} "
              f"{row['test_accuracy']:>9.4f}  {'/'.join(map(str, syncs.values())) or '-'}")


if __name__ == "__main__":
    main()
