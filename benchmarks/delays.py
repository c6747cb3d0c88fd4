"""The spike-timing task without delays, with fixed random delays and with learned delays, over seeds.

    python benchmarks/delays.py --seeds 0,1,2        # the machine record, then JSON: `reproduce delays` per seed

Each seed is ``neuroplastic reproduce delays --seed S`` (the ``timing`` recipe: 64 discrete LIF with
τ_m = 5 steps, max delay 45, BPTT, 15 epochs; the variants differ only in their input synapses).
"""
from __future__ import annotations

import argparse
import json
import statistics

from neuroplastic.bench.timing import machine_record
from neuroplastic.experiments.delays import VARIANTS, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    print(machine_record(), flush=True)
    runs = {int(seed): run(seed=int(seed), progress=False).measured for seed in args.seeds.split(",")}
    keys = [f"{v}_accuracy" for v in VARIANTS] + ["learned_unrounded_accuracy", "rounding_cost", "learned_wall_time_s",
                                                  "none_wall_time_s"]
    print(json.dumps({"per_seed": {s: {k: m[k] for k in keys} for s, m in runs.items()},
                      "mean": {k: statistics.mean(m[k] for m in runs.values()) for k in keys}}))


if __name__ == "__main__":
    main()
