"""Test accuracy of each task's default recipe, per rule, mean over seeds: the figures in BENCHMARKS.md.

    python benchmarks/accuracy.py                       # every generated task with BPTT, seeds 0 1 2
    python benchmarks/accuracy.py --tasks digits,cue --seeds 0
    python benchmarks/accuracy.py --tasks digits --rules eprop,dfa,decolle,etl

Prints one JSON object: per task and rule the metric of each seed, their mean, the training time
and the weight updates applied.
"""
from __future__ import annotations

import argparse
import json
import statistics

from neuroplastic.bench.timing import machine_record
from neuroplastic.training.fit import fit

TARGETS = {"digits": 0.95, "mnist1d": 0.80, "randman": 0.90, "cue": 0.93, "pattern": 0.1}
ONLINE_TARGETS = {("digits", "eprop"): 0.90, ("digits", "dfa"): 0.90, ("digits", "decolle"): 0.90,
                  ("cue", "eprop"): 0.90, ("digits", "eqprop"): 0.95}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TARGETS))
    parser.add_argument("--rules", default="bptt")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="neuroplastic-out/accuracy")
    args = parser.parse_args()
    print(machine_record(), flush=True)
    results = {}
    for task in args.tasks.split(","):
        for rule in args.rules.split(","):
            runs = [fit(task, rule, seed=int(seed), out=f"{args.out}/{task}-{rule}-{seed}", progress=False)
                    for seed in args.seeds.split(",")]
            metric = "test_accuracy" if "test_accuracy" in runs[0] else "test_nmse"
            values = [run[metric] for run in runs]
            target = TARGETS.get(task) if rule == "bptt" else ONLINE_TARGETS.get((task, rule))
            key = task if rule == "bptt" else f"{task}/{rule}"
            results[key] = {"metric": metric, "values": values, "mean": statistics.mean(values),
                            "target": target, "epochs": runs[0]["epochs"],
                            "wall_time_s": [run["wall_time_s"] for run in runs],
                            "updates": statistics.mean(run["updates"] for run in runs),
                            "spikes_per_sample": statistics.mean(run["spikes_per_sample"] for run in runs)}
            print(json.dumps({key: results[key]}), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
