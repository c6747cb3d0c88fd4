"""Binary against graded spikes (a learned magnitude per neuron; a 4-bit payload read from the
membrane potential) on the cue and mnist1d recipes, over seeds: test accuracy and bits sent per sample.

    python benchmarks/graded.py --tasks cue,mnist1d --seeds 0,1,2     # prints one JSON line per run, then the means
    python benchmarks/graded.py --tasks cue --threads 1 & python benchmarks/graded.py --tasks mnist1d --threads 1

Each run is ``neuroplastic train --task T --graded G --seed S`` (BPTT, the task's recipe otherwise
unchanged). Bits per sample: the hidden layers' events on the test set times their payload bits (1 for
a binary spike, 32 for a learned float32 magnitude, 4 for ``bits:4``).
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch

from neuroplastic.bench.timing import machine_record
from neuroplastic.training.fit import fit

PAYLOADS = ("none", "learned", "bits:4")
KEYS = ("test_accuracy", "bits_per_sample", "spikes_per_sample", "wall_time_s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cue,mnist1d")
    parser.add_argument("--payloads", default=",".join(PAYLOADS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="neuroplastic-out/graded")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(machine_record(), flush=True)
    means = {}
    for task in args.tasks.split(","):
        for graded in args.payloads.split(","):
            runs = []
            for seed in args.seeds.split(","):
                summary = fit(task, "bptt", seed=int(seed), graded=graded, progress=False,
                              out=f"{args.out}/{task}-{graded.replace(':', '')}-{seed}")
                runs.append({key: summary[key] for key in KEYS})
                print(json.dumps({"task": task, "graded": graded, "seed": int(seed), **runs[-1]}), flush=True)
            means[f"{task}/{graded}"] = {key: statistics.mean(run[key] for run in runs) for key in KEYS}
    print(json.dumps({"mean": means}))


if __name__ == "__main__":
    main()
