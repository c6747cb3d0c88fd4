"""Architecture search on randman at an equal wall-time budget: DARTS, SNASNet and random search, each
pick retrained, over seeds; and how well SNASNet's training-free score ranks cells that were trained.

    python benchmarks/search.py --quick                                   # ~6 min on 1 core
    python benchmarks/search.py --seeds 0 1 2 --out neuroplastic-out/bench-search   # ~35 min on 1 core

The task is randman (Zenke & Vogels 2021) with 5 classes, 40 units and 40 steps, 250 samples per
class (200 train, 50 test; 20% of the training samples held out for validation); the space is cells
of 3 hidden nodes of 32 neurons with backward edges (:class:`~neuroplastic.outer.search.SearchSpace`).
Per seed every method gets ``--budget-s`` seconds of search on the same machine, one after another;
its pick is retrained for ``--retrain-epochs`` epochs by ``fit`` (the task's recipe, BPTT) and scored
on the test split. Random search trains each cell it draws for 2 epochs (26 batches).

Kendall's τ: ``--cells`` cells drawn at random per seed, each scored by SNASNet at initialization and
then trained for ``--tau-epochs`` epochs from those very weights; τ between score and test accuracy.
Prints one JSON object per run as it finishes, then a table; everything goes to ``OUT/results.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

from neuroplastic.outer.search import SearchSpace, accuracy, search, snasnet_score, train_cell
from neuroplastic.outer.search.random import build_cell, draw_batch
from neuroplastic.tasks import load_task
from neuroplastic.training.recipes import recipe_for

TASK = {"classes": 5, "units": 40, "steps": 40, "samples_per_class": 250}
SPACE = SearchSpace(nodes=3, width=32, backward=True)
VALIDATION = 0.2
METHODS = ("darts", "snasnet", "random")
OPTIONS = {"darts": {}, "snasnet": {}, "random": {"batches": 26}}


def kendall(seed: int, cells: int, epochs: int) -> dict:
    """τ between SNASNet's score and the test accuracy after ``epochs`` epochs, over ``cells`` random cells."""
    task = load_task("randman", seed=seed, **TASK).with_validation(VALIDATION, seed=seed)
    recipe = recipe_for(task.name)
    generator = torch.Generator().manual_seed(seed + 100)
    inputs, _ = draw_batch(task, "train", 64, torch.Generator().manual_seed(seed + 4))
    batches = epochs * -(-len(task.train) // recipe.batch_size)
    scores, accuracies, start = [], [], time.perf_counter()
    for k in range(cells):
        network = build_cell(task, SPACE.sample(generator), recipe, seed + 1000 + k)
        score = snasnet_score(network, inputs)
        train_cell(network, task, recipe, batches, generator)
        scores.append(score if math.isfinite(score) else -1e9)
        accuracies.append(accuracy(network, task, "test"))
    tau, p = kendalltau(scores, accuracies)
    return {"seed": seed, "cells": cells, "epochs": epochs, "kendall_tau": float(tau), "p_value": float(p),
            "scores": scores, "test_accuracies": accuracies, "wall_s": time.perf_counter() - start}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-s", type=float, default=90.0, help="search seconds per method and seed")
    parser.add_argument("--retrain-epochs", type=int, default=15)
    parser.add_argument("--cells", type=int, default=24, help="cells for Kendall's τ per seed (>= 20)")
    parser.add_argument("--tau-epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one seed, 20 s budgets, 4 retraining epochs, "
                        "20 cells of 1 epoch")
    parser.add_argument("--out", default="neuroplastic-out/bench-search")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.budget_s, args.retrain_epochs, args.cells, args.tau_epochs = [0], 20.0, 4, 20, 1
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "task": TASK, "space": str(SPACE), "validation": VALIDATION}
    results = {"config": config, "runs": [], "tau": []}
    for seed in args.seeds:
        for method in METHODS:
            folder = out / method / f"seed{seed}"
            summary = search("randman", method, args.budget_s, seed=seed, task_options=TASK, space=SPACE,
                             retrain_epochs=args.retrain_epochs, validation_fraction=VALIDATION,
                             method_options=OPTIONS[method], out=folder, progress=False,
                             resume=(folder / "checkpoint.pt").exists())  # an interrupted run goes on
            row = {k: summary[k] for k in ("method", "seed", "budget_s", "search_wall_s", "units", "cell",
                                           "test_accuracy", "validation_accuracy", "retrain_wall_s")}
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
        tau = kendall(seed, args.cells, args.tau_epochs)
        results["tau"].append(tau)
        print(json.dumps({k: v for k, v in tau.items() if k not in ("scores", "test_accuracies")}), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
    print("| seed | darts | snasnet | random | Kendall τ (p) |")
    print("|---|---|---|---|---|")
    by = {(r["method"], r["seed"]): r["test_accuracy"] for r in results["runs"]}
    for tau in results["tau"]:
        seed = tau["seed"]
        print(f"| {seed} | " + " | ".join(f"{by[m, seed]:.3f}" for m in METHODS)
              + f" | {tau['kendall_tau']:.3f} ({tau['p_value']:.2f}) |")
    if len(args.seeds) > 1:
        spread = [[by[m, s] for s in args.seeds] for m in METHODS]
        print("| mean ± sd | " + " | ".join(f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" for v in spread)
              + f" | {statistics.mean(t['kendall_tau'] for t in results['tau']):.3f} |")


if __name__ == "__main__":
    main()
