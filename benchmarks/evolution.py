"""Neuroevolution, over seeds: the numbers of BENCHMARKS.md "Neuroevolution".

    python benchmarks/evolution.py throughput                     # evaluations per second, ~1 min
    python benchmarks/evolution.py goals --seeds 0 1 2 --out neuroplastic-out/bench-evolve

``throughput`` scores one population of 64 digits networks (32 hidden LIF) three ways in one run: as
one batch (``vmap`` over the stacked parameters), in chunks of 16, and one individual at a time —
the loop over models the batched path replaces — and, with ``--workers N``, on N Ray actors.

``goals`` runs, per seed, each configuration of :data:`GOALS` through :func:`evolve` (what
``neuroplastic evolve`` runs; the equivalent command is printed with each result) and prints one JSON
object per run, then a table; everything goes to ``OUT/results.json``. An interrupted run resumes.
For ``stdp-digits`` the goal is the same problem's score with the hand-set parameters (test accuracy
of the full-size experiment at the same neuron count, averaged over the same 3 networks).

``paired`` scores the parameters a ``goals`` run of ``stdp-digits`` found (read from ``OUT/results.json``)
and the hand-set ones on ``--runs`` networks each, the same networks for both, and prints each seed's
paired difference (mean ± standard error) and the pooled one with a one-sided sign test:

    python benchmarks/evolution.py paired --seeds 0 1 2 --runs 10 --out neuroplastic-out/bench-evolve
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from neuroplastic.bench.timing import machine_record
from neuroplastic.outer.evolution import Classification, Genome, RayEvaluator, SerialEvaluator, evolve, make_problem

GOALS = {  # name: evolve's arguments; the goal (None: beat the hand-set parameters)
    "digits openai-es": (dict(task="digits", strategy="openai-es", population=128, generations=600, sigma=0.05,
                              lr=0.03, task_options={"hidden": 32, "batch": 512, "chunk": 64}), 0.90),
    "cartpole openai-es": (dict(task="cartpole", strategy="openai-es", population=64, generations=30, sigma=0.1,
                                lr=0.05), 475.0),
    "stdp-digits cmaes": (dict(task="stdp-digits", strategy="cmaes", population=8, generations=12, sigma=0.2,
                               task_options={"search_images": None, "fitness_runs": 3, "evaluation_runs": 3}), None),
}


def throughput(args):
    torch.set_num_threads(args.threads)
    rows = []
    for chunk in (64, 16, 1):
        problem = Classification("digits", hidden=32, batch=256, chunk=chunk)
        rows.append((f"chunks of {chunk}" if chunk > 1 else "one at a time (a loop over models)",
                     _rate(SerialEvaluator(problem), problem)))
    if args.workers:
        problem = Classification("digits", hidden=32, batch=256, chunk=16)
        evaluator = RayEvaluator(problem, args.workers)
        try:
            rows.append((f"chunks of 16 on {args.workers} Ray actors", _rate(evaluator, problem)))
        finally:
            evaluator.close()
    print(f"| digits, 64 individuals of 32 hidden LIF, 256 samples × 30 steps ({args.threads} threads) "
          "| evaluations/s | vs one at a time |")
    print("|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / rows[2][1]:.1f}× |")


def _rate(evaluator, problem, population=64, repeats=3):
    genome = Genome(problem.initial())
    noise = torch.randn(population, genome.size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    individuals = genome.unflatten(genome.start + 0.05 * noise)
    evaluator(individuals, 0)  # warm-up
    start = time.perf_counter()
    for generation in range(repeats):
        evaluator(individuals, generation)
    return population * repeats / (time.perf_counter() - start)


def goals(args):
    torch.set_num_threads(args.threads)
    out, results = Path(args.out), []
    for name in args.configs:
        options, goal = GOALS[name]
        for seed in args.seeds:
            folder = out / name.replace(" ", "-") / f"seed{seed}"
            summary = evolve(**options, seed=seed, out=folder, progress=False, workers=args.workers,
                             resume=(folder / "checkpoint.pt").exists())
            row = {"config": name, "goal": goal, "command": _command(options, seed),
                   **{k: v for k, v in summary.items() if k not in ("history", "figures")}}
            if goal is None:  # the same problem scored with the hand-set parameters
                problem = make_problem(options["task"], seed=seed, options=options.get("task_options"))
                row["goal"] = problem.evaluate(problem.initial())["score"]
            results.append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
    print("| configuration | seed | held-out score | goal | generations × population | wall s |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['config']} | {row['seed']} | {row['score']:.4g} | ≥ {row['goal']:.4g} | "
              f"{row['generations']} × {row['population']} | {row['wall_time_s']:.0f} |")


def paired(args):
    torch.set_num_threads(args.threads)
    found = {row["seed"]: row["found"] for row in json.loads((Path(args.out) / "results.json").read_text())
             if row["config"] == "stdp-digits cmaes"}
    differences = []
    for seed in args.seeds:
        problem = make_problem("stdp-digits", seed=seed, options={"evaluation_runs": args.runs})
        evolved = {name: torch.tensor(value, dtype=torch.float64) for name, value in found[seed].items()}
        hand = problem.runs(problem.initial())
        mine = problem.runs(evolved)
        seed_differences = [e - h for e, h in zip(mine, hand)]
        differences += seed_differences
        print(json.dumps({"seed": seed, "runs": args.runs, "hand_set": hand, "evolved": mine,
                          **_paired_summary(seed_differences)}), flush=True)
    print(json.dumps({"pooled": _paired_summary(differences)}))


def _paired_summary(differences):
    n, mean = len(differences), sum(differences) / len(differences)
    error = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1) / n) if n > 1 else math.nan
    better = sum(d > 0 for d in differences)
    sign_p = sum(math.comb(n, k) for k in range(better, n + 1)) / 2**n
    return {"difference_mean": mean, "difference_se": error, "evolved_better": better, "sign_test_p": sign_p}


def _command(options, seed):
    task_options = " ".join(f"--option {k}={v}" for k, v in options.get("task_options", {}).items())
    return (f"neuroplastic evolve --task {options['task']} --strategy {options['strategy']} --population "
            f"{options['population']} --generations {options['generations']} --sigma {options['sigma']} "
            f"--lr {options.get('lr', 0.03)} {task_options} --seed {seed}").replace("  ", " ")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("throughput", "goals", "paired"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--configs", nargs="+", default=list(GOALS), choices=list(GOALS))
    parser.add_argument("--workers", type=int, default=0, help="Ray actors (default 0: this process)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="neuroplastic-out/bench-evolve")
    parser.add_argument("--runs", type=int, default=10, help="paired: networks per seed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_record(), flush=True)
    {"throughput": throughput, "goals": goals, "paired": paired}[args.what](args)


if __name__ == "__main__":
    main()
