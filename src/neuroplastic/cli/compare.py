"""``neuroplastic compare --task T --rules a,b,…`` (or ``--data my.npz``, data of one's own): every
rule trained with its defaults on the same task, network and seed, side by side. Each rule trains in a
process of its own, so that its peak memory is its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from neuroplastic.cli.common import UsageError, device, emit
from neuroplastic.cli.train import (
    CHIP_RULES,
    chip_flags,
    chip_options,
    require_task_or_data,
)
from neuroplastic.report.compare import plot_comparison
from neuroplastic.tasks import Task
from neuroplastic.training.methods import METHODS, make_method
from neuroplastic.validation import lookup, require_count

FIELDS = ("rule", "test_accuracy", "test_nmse", "wall_time_s", "ms_per_sample", "peak_memory_mb", "updates", "synops",
          "bits_per_sample", "neurobench")
NEUROBENCH_COLUMNS = (("footprint (B)", "footprint_bytes", ".0f"), ("conn. sparse", "connection_sparsity", ".4f"),
                      ("act. sparse", "activation_sparsity", ".4f"), ("ACs/sample", "effective_acs_per_sample", ".3g"),
                      ("MACs/sample", "effective_macs_per_sample", ".3g"))  # NeuroBench's, of the test split


def main(args):
    require_task_or_data(args)
    rules = [name.strip() for name in args.rules.split(",") if name.strip()]
    if not rules:
        raise UsageError("--rules needs at least one rule")
    for name in rules:
        lookup("rule", name, METHODS)
    if len(set(rules)) != len(rules):
        raise UsageError(f"--rules names a rule twice: {args.rules}")
    epochs = [] if args.epochs is None else ["--epochs", str(require_count("--epochs", args.epochs))]
    where = ["--device", str(device(args))]
    on_chip = chip_flags(args)
    if on_chip and not set(rules) & set(CHIP_RULES):
        raise UsageError(f"{on_chip[0]} applies to the rules {' and '.join(CHIP_RULES)}, none of which is compared")
    for name in set(rules) & set(CHIP_RULES):  # a bad chip refused before anything trains or is written
        make_method(name, **chip_options(args, name))
    # a file of one's own is read once here, so that a bad one is refused before anything is written
    task = args.task if args.task is not None else Task.from_file(args.data).name
    data = [*(["--task", args.task] if args.task is not None else []), *(["--data", args.data] if args.data else [])]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in rules:
        if not args.quiet:
            print(f"training {task} with {name} …", file=sys.stderr, flush=True)
        summary = _train([*data, "--rule", name, "--seed", str(args.seed), "--out", str(out / name), *epochs, *where,
                          *(on_chip if name in CHIP_RULES else []), *(["--quiet"] if args.quiet else [])])
        results.append({key: summary[key] for key in FIELDS if key in summary} | {"rule": name})
    metric = "test_accuracy" if "test_accuracy" in results[0] else "test_nmse"
    figure = plot_comparison(results, metric, out / "comparison.png", title=f"{task}, seed {args.seed}")
    (out / "comparison.json").write_text(json.dumps({"task": task, "results": results}, indent=2))
    header = (f"{'rule':<10} {metric:>14} {'time (s)':>9} {'ms/sample':>10} {'memory (MB)':>12} {'updates':>12} "
              f"{'synops':>14} "
              f"{'bits/sample':>12}" + "".join(f" {label:>13}" for label, _, _ in NEUROBENCH_COLUMNS))
    rows = [f"{r['rule']:<10} {r[metric]:>14.4f} {r['wall_time_s']:>9.1f} {r['ms_per_sample']:>10.3g} "
            f"{r['peak_memory_mb']:>12.0f} "
            f"{r['updates']:>12.3g} {r['synops']:>14.3g} {r['bits_per_sample']:>12.3g}{_neurobench_cells(r)}"
            for r in results]
    emit({"task": task, "results": results, "figure": str(figure)}, args.json,
         [header, *rows, f"figure: {figure}"])


def _neurobench_cells(result: dict) -> str:
    """The NeuroBench columns of a rule's row ("–" where its network does not show a metric)."""
    metrics = result.get("neurobench", {})
    return "".join(f" {'–' if metrics.get(key) is None else format(metrics[key], spec):>13}"
                   for _, key, spec in NEUROBENCH_COLUMNS)


def _train(arguments: list[str]) -> dict:
    command = [sys.executable, "-m", "neuroplastic.cli.main", "train", *arguments, "--json"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise UsageError(f"training failed: {' '.join(arguments)} (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])
