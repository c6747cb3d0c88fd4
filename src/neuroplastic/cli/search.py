"""``neuroplastic search --task randman --method darts|snasnet|random --budget-s S``: search a cell of
spiking layers within a wall-time budget (DARTS, SNASNet's training-free score, or random search),
retrain it with ``fit`` and report its test accuracy, with a figure of the cell."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, device, emit
from neuroplastic.outer.search import SearchSpace, search

SUMMARY_KEYS = ("task", "method", "seed", "budget_s", "search_wall_s", "units", "cell", "test_accuracy",
                "validation_accuracy", "retrain_epochs", "retrain_wall_s", "out", "figures")


def main(args):
    """Bad input (a budget <= 0, an unknown method or task) raises ValueError in ``search`` before
    anything is written: exit code 2."""
    if args.second_order and args.method != "darts":
        raise UsageError("--second-order goes with --method darts")
    summary = search(args.task, args.method, args.budget_s, seed=args.seed, iterations=args.iterations,
                     space=SearchSpace(nodes=args.nodes, width=args.width, backward=not args.no_backward),
                     retrain_epochs=args.retrain_epochs, device=device(args), out=args.out, resume=args.resume,
                     progress=not args.quiet,
                     method_options={"second_order": True} if args.second_order else None)
    emit({k: summary[k] for k in SUMMARY_KEYS}, args.json, [
        f"{summary['task']}, {summary['method']} ({summary['units']} units in {summary['search_wall_s']:.1f} s of "
        f"{summary['budget_s']:.0f} s): {summary['cell']}",
        f"retrained {summary['retrain_epochs']} epochs: test accuracy {summary['test_accuracy']:.4f}; "
        f"report: {summary['out']}/summary.json, figures: {', '.join(summary['figures'])}",
    ])
