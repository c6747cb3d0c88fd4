"""Few-shot meta-learning on double digits, over seeds: the numbers of BENCHMARKS.md "Fast learning".

    python benchmarks/meta.py --seeds 0 1 2 --out neuroplastic-out/bench-meta     # ~1 h on 2 cores

Each configuration is ``neuroplastic meta`` with its defaults (5-way, 15 queries per class, 5 inner
steps at α = 0.1, meta-batches of 8 episodes, Adam 3e-3, 600 meta-test episodes) but 300
meta-iterations (``--iterations``; the command's default is 500), and:

- ``maml``, ``fomaml``: BPTT inside, second and first order, 1-shot and 5-shot;
- ``eprop``, ``decolle``: the online rule inside (bi-level, second order), 1-shot.

Every run also scores the same network trained from scratch on each support set by its inner loop.
Prints one JSON object per run as it finishes, then a table of means ± standard deviations over seeds;
everything is written to ``OUT/results.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from neuroplastic.bench.timing import machine_record
from neuroplastic.outer.training import meta_fit

CONFIGS = {  # name: (inner, first_order, shots)
    "maml 1-shot": ("bptt", False, 1),
    "fomaml 1-shot": ("bptt", True, 1),
    "eprop 1-shot": ("eprop", False, 1),
    "decolle 1-shot": ("decolle", False, 1),
    "maml 5-shot": ("bptt", False, 5),
    "fomaml 5-shot": ("bptt", True, 5),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", default="neuroplastic-out/bench-meta")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(machine_record(), flush=True)
    out = Path(args.out)
    results = []
    for name in args.configs:
        inner, first_order, shots = CONFIGS[name]
        for seed in args.seeds:
            folder = out / name.replace(" ", "-") / f"seed{seed}"
            summary = meta_fit(inner=inner, first_order=first_order, shots=shots, seed=seed,
                               iterations=args.iterations, progress=False, out=folder,
                               resume=(folder / "checkpoint.pt").exists())  # an interrupted run goes on
            row = {"config": name, **{k: v for k, v in summary.items() if k not in ("history", "figures")}}
            results.append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
    print("| configuration | meta-test accuracy | from scratch | difference (points) | meta-training s |")
    print("|---|---|---|---|---|")
    for name in args.configs:
        rows = [r for r in results if r["config"] == name]
        def spread(key, rows=rows):
            values = [100 * r[key] for r in rows]
            return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        (acc, acc_sd), (scratch, scratch_sd) = spread("test_accuracy"), spread("scratch_accuracy")
        gaps = [100 * (r["test_accuracy"] - r["scratch_accuracy"]) for r in rows]
        print(f"| {name} | {acc:.1f} ± {acc_sd:.1f} | {scratch:.1f} ± {scratch_sd:.1f} | "
              f"{statistics.mean(gaps):+.1f} (min {min(gaps):+.1f}) | "
              f"{statistics.mean(r['wall_time_s'] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
