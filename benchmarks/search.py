"""Architecture search on randman at an equal wall-time budget: DARTS, SNASNet and random search, each
pick retrained, over seeds; and how well SNASNet's training-free score ranks cells that were trained.

    python benchmarks/search.py --quick                                   # ~6 min on 1 core
    python benchmarks/search.py --seeds 0 1 2 --out neuroplastic-out/bench-search   # ~1 h on 1 core
    python benchmarks/search.py --merge OUT_A OUT_B          # one table of runs made side by side

The task is randman (Zenke & Vogels 2021) with 5 classes, 40 units and 40 steps, 250 samples per
class (200 train, 50 test; 20% of the training samples held out for validation); the space is cells
of 3 hidden nodes of 32 neurons with backward edges (:class:`~neuroplastic.outer.search.SearchSpace`).
Per seed every method gets ``--budget-s`` seconds of search on the same machine, one after another;
its pick is retrained for ``--retrain-epochs`` epochs by ``fit`` (the task's recipe, BPTT) and scored
on the test split — by the search itself (the seed's weights and order of batches), and again with
``--retrain-seeds`` − 1 other seeds (other weights, another order): the table gives the mean. Random search trains
each cell it draws for 2 epochs (26 batches).

Kendall's τ: ``--cells`` cells drawn at random per seed, each retrained as a pick is (``fit``,
``--retrain-epochs`` epochs) and scored on the test split; τ between that accuracy and, for each
cell, SNASNet's score at initialization (of the weights retrained) and random search's score (its
validation accuracy after 26 batches from those weights).
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

from neuroplastic.bench.timing import machine_record
from neuroplastic.outer.search import SearchSpace, accuracy, search, snasnet_score, train_cell
from neuroplastic.outer.search.random import build_cell, draw_batch
from neuroplastic.outer.search.run import CellBuilder
from neuroplastic.outer.search.space import Cell
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.recipes import recipe_for

TASK = {"classes": 5, "units": 40, "steps": 40, "samples_per_class": 250}
SPACE = SearchSpace(nodes=3, width=32, backward=True)
VALIDATION = 0.2
METHODS = ("darts", "snasnet", "random")
OPTIONS = {"darts": {}, "snasnet": {}, "random": {"batches": 26}}


def searched_task(seed: int):
    """randman as ``search`` makes it for ``seed``: the same samples, the same validation split."""
    return load_task("randman", seed=seed, **TASK).with_validation(VALIDATION, seed=seed)


def retrained(cell: Cell, task, weights_seed: int, epochs: int, out: Path) -> float:
    """The test accuracy of ``cell`` retrained on ``task`` (:func:`searched_task`) as ``search`` retrains a
    pick, with ``weights_seed`` for its weights and its order of batches."""
    fitted = fit(task, "bptt", network=CellBuilder(cell, weights_seed), epochs=epochs,
                 seed=weights_seed, out=out, progress=False)
    return fitted["test_accuracy"]


def kendall(task, seed: int, cells: int, epochs: int, out: Path) -> dict:
    """τ between the retrained test accuracy of ``cells`` random cells and SNASNet's score of each (at
    initialization), and random search's (validation accuracy after 26 batches from the same weights)."""
    recipe = recipe_for(task.name)
    generator = torch.Generator().manual_seed(seed + 100)
    inputs, _ = draw_batch(task, "train", 64, torch.Generator().manual_seed(seed + 4))
    rows, start = [], time.perf_counter()
    for k in range(cells):
        cell, weights_seed = SPACE.sample(generator), seed + 1000 + k
        network = build_cell(task, cell, recipe, weights_seed)
        score = snasnet_score(network, inputs)
        train_cell(network, task, recipe, OPTIONS["random"]["batches"], generator)
        rows.append({"cell": str(cell), "snasnet": score if math.isfinite(score) else -1e9,
                     "random": accuracy(network, task, "validation"),
                     "test_accuracy": retrained(cell, task, weights_seed, epochs, out / f"cell{k}")})
    accuracies = [row["test_accuracy"] for row in rows]
    taus = {name: kendalltau([row[name] for row in rows], accuracies) for name in ("snasnet", "random")}
    return {"seed": seed, "cells": cells, "epochs": epochs, "wall_s": time.perf_counter() - start, "rows": rows,
            **{f"kendall_tau_{name}": float(tau) for name, (tau, _) in taus.items()},
            **{f"p_value_{name}": float(p) for name, (_, p) in taus.items()}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-s", type=float, default=90.0, help="search seconds per method and seed")
    parser.add_argument("--retrain-epochs", type=int, default=15)
    parser.add_argument("--retrain-seeds", type=int, default=3,
                        help="retrainings of each pick (seeds: weights, batch order)")
    parser.add_argument("--cells", type=int, default=24, help="cells for Kendall's τ per seed (>= 20; 0: no τ)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="one seed, 20 s budgets, 4 retraining epochs, "
                        "one retraining per pick, 20 cells")
    parser.add_argument("--out", default="neuroplastic-out/bench-search")
    parser.add_argument("--merge", nargs="+", metavar="OUT", help="print the table of runs made apart (their OUT "
                        "folders, e.g. seeds run side by side) and stop")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads((Path(folder) / "results.json").read_text()) for folder in args.merge]
        merged = {key: [entry for part in parts for entry in part[key]] for key in ("runs", "tau")}
        print(table(merged, sorted({run["seed"] for run in merged["runs"]})))
        return
    if args.quick:
        args.seeds, args.budget_s, args.retrain_epochs, args.retrain_seeds, args.cells = [0], 20.0, 4, 1, 20
    torch.set_num_threads(args.threads)
    print(machine_record(), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {**vars(args), "task": TASK, "space": str(SPACE), "validation": VALIDATION}
    results = {"config": config, "runs": [], "tau": []}
    for seed in args.seeds:
        task = searched_task(seed)
        for method in METHODS:
            folder = out / method / f"seed{seed}"
            summary = search("randman", method, args.budget_s, seed=seed, task_options=TASK, space=SPACE,
                             retrain_epochs=args.retrain_epochs, validation_fraction=VALIDATION,
                             method_options=OPTIONS[method], out=folder, progress=False,
                             resume=(folder / "checkpoint.pt").exists())  # an interrupted run goes on
            row = {k: summary[k] for k in ("method", "seed", "budget_s", "search_wall_s", "units", "cell",
                                           "test_accuracy", "validation_accuracy", "retrain_wall_s")}
            cell = Cell.from_json(summary["cell_graph"])
            row["retrained"] = [summary["test_accuracy"]] + [
                retrained(cell, task, seed + 10_000 * r, args.retrain_epochs, folder / f"retrain{r}")
                for r in range(1, args.retrain_seeds)]
            row["mean_test_accuracy"] = statistics.mean(row["retrained"])
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
        if args.cells:
            tau = kendall(task, seed, args.cells, args.retrain_epochs, out / "tau" / f"seed{seed}")
            results["tau"].append(tau)
            print(json.dumps({k: v for k, v in tau.items() if k != "rows"}), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results, args.seeds))


def table(results: dict, seeds: list[int]) -> str:
    """Each seed's mean retrained test accuracy of every method's pick, and Kendall's τ where measured."""
    scores = ("snasnet", "random")
    by = {(r["method"], r["seed"]): r["mean_test_accuracy"] for r in results["runs"]}
    taus = {tau["seed"]: tau for tau in results["tau"]}

    def row(label: str, accuracies: list[str], tau_cells: list[str]) -> str:
        return "| " + " | ".join([label, *accuracies, *tau_cells]) + " |"
    lines = ["| seed | darts | snasnet | random | Kendall τ: SNASNet's score (p) | random search's score (p) |",
             "|---|---|---|---|---|---|"]
    for seed in seeds:
        tau = taus.get(seed)
        tau_cells = [f"{tau[f'kendall_tau_{n}']:.3f} ({tau[f'p_value_{n}']:.2f})" if tau else "–" for n in scores]
        lines.append(row(str(seed), [f"{by[m, seed]:.3f}" for m in METHODS], tau_cells))
    if len(seeds) > 1:
        spread = [[by[m, s] for s in seeds] for m in METHODS]
        lines.append(row("mean ± sd", [f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" for v in spread],
                         [f"{statistics.mean(t[f'kendall_tau_{n}'] for t in taus.values()):.3f}" if taus else "–"
                          for n in scores]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
