"""Data-parallel training on one machine: the same ``neuroplastic train`` run as one process and as
``torchrun --nproc_per_node=N`` processes (gloo), its training time (``wall_time_s`` of the summary:
the epochs without start-up) and the whole command's time, side by side in one run.

    python benchmarks/distributed.py                       # digits and cue, BPTT and e-prop, 2 epochs
    python benchmarks/distributed.py --tasks cue --rules bptt --epochs 4 --processes 2 4

Each configuration gets the machine's cores in the same way: one process with ``--threads`` threads
(by default all cores), one process with 1 thread, and N processes with ``cores // N`` threads each
(``OMP_NUM_THREADS``). Every run must reach the same test accuracy within float32 rounding (checked):
N processes train on shards of the same batches.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

from neuroplastic.bench.timing import machine_record


def run(task: str, rule: str, epochs: int, processes: int, threads: int, out: str) -> dict:
    command = ["-m", "neuroplastic", "train", "--task", task, "--rule", rule, "--epochs", str(epochs),
               "--quiet", "--json", "--out", out]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   *command]
    else:
        command = [sys.executable, *command]
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    total = time.perf_counter() - start
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return {"task": task, "rule": rule, "processes": processes, "threads_each": threads, "train_s": summary["wall_time_s"],
            "command_s": total, "test_accuracy": summary["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["digits", "cue"])
    parser.add_argument("--rules", nargs="+", default=["bptt", "eprop"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+", default=[2])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    print(machine_record(), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for task, rule in itertools.product(args.tasks, args.rules):
            configurations = [(1, args.threads), (1, 1)] + [(n, max(args.threads // n, 1)) for n in args.processes]
            for processes, threads in configurations:
                row = run(task, rule, args.epochs, processes, threads, f"{folder}/{task}-{rule}-{processes}-{threads}")
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("\n| task | rule | processes × threads | training (s) | command (s) | speed-up of training | test accuracy |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if (r["task"], r["rule"]) == (row["task"], row["rule"]) and r["processes"] == 1
                    and r["threads_each"] == args.threads)
        print(f"| {row['task']} | {row['rule']} | {row['processes']} × {row['threads_each']} | {row['train_s']:.1f} | "
              f"{row['command_s']:.1f} | {base['train_s'] / row['train_s']:.2f}× | {row['test_accuracy']:.4f} |")
    for task, rule in itertools.product(args.tasks, args.rules):
        accuracies = [r["test_accuracy"] for r in rows if (r["task"], r["rule"]) == (task, rule)]
        assert max(accuracies) - min(accuracies) < 0.02, f"{task}/{rule}: accuracies differ: {accuracies}"


if __name__ == "__main__":
    main()
