"""Test accuracy of each task's default recipe (BPTT), mean over seeds: the figures in BENCHMARKS.md.

    python benchmarks/accuracy.py                       # every generated task, seeds 0 1 2
    python benchmarks/accuracy.py --tasks digits,cue --seeds 0

Prints one JSON object: per task the metric of each seed, their mean, and the training time.
"""
from __future__ import annotations

import argparse
import json
import statistics

from neuroplastic.training.fit import fit

TARGETS = {"digits": 0.95, "mnist1d": 0.80, "randman": 0.90, "cue": 0.93, "pattern": 0.1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TARGETS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="neuroplastic-out/accuracy")
    args = parser.parse_args()
    results = {}
    for task in args.tasks.split(","):
        runs = [fit(task, seed=int(seed), out=f"{args.out}/{task}-{seed}", progress=False)
                for seed in args.seeds.split(",")]
        metric = "test_accuracy" if "test_accuracy" in runs[0] else "test_nmse"
        values = [run[metric] for run in runs]
        results[task] = {"metric": metric, "values": values, "mean": statistics.mean(values),
                         "target": TARGETS.get(task), "epochs": runs[0]["epochs"],
                         "wall_time_s": [run["wall_time_s"] for run in runs],
                         "spikes_per_sample": statistics.mean(run["spikes_per_sample"] for run in runs)}
        print(json.dumps({task: results[task]}), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
