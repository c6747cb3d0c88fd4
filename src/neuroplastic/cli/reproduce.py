"""``neuroplastic reproduce NAME``: run a published plasticity experiment end to end, write its figure,
and report measured against published numbers (``--json``: one object as the last line). ``--list``
names the experiments; ``--device`` says where the experiment computes (its figure and numbers come
back to the CPU)."""
from __future__ import annotations

import json
from pathlib import Path

from neuroplastic.cli.common import UsageError, device, plot_path
from neuroplastic.experiments.base import EXPERIMENTS, get_experiment


def main(args):
    if args.list:
        for name, (_, description) in EXPERIMENTS.items():
            print(f"{name:22s} {description}")
        return
    if args.name is None:
        raise UsageError(f"name an experiment ({', '.join(EXPERIMENTS)}) or use --list")
    run = get_experiment(args.name)
    where = device(args)
    if where.type == "mps":
        raise UsageError("reproduce computes on cpu or cuda: most experiments work in float64, which Apple's "
                         "MPS does not have")
    figure = plot_path(args.plot) if args.plot else Path(args.out) / f"{args.name}.png"
    if figure.exists() and figure.is_dir():
        raise UsageError(f"figure path {figure} is a folder")
    outcome = run(quick=args.quick, seed=args.seed, progress=not args.quiet, device=where)
    outcome.draw(figure)
    summary = {**outcome.summary(), "device": str(where), "figure": str(figure)}
    if args.json:
        print(json.dumps(summary, allow_nan=False))
        return
    print(f"{outcome.name}: {'PASSED' if outcome.passed else 'FAILED'}  (figure: {figure})")
    for key, value in summary["measured"].items():
        if not isinstance(value, list):
            shown = value if key not in summary["published"] else f"{value}   (published: {summary['published'][key]})"
            print(f"  {key}: {shown}")
