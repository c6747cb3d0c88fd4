"""``neuroplastic search --task randman --method darts|snasnet|random --budget-s S``: search a cell of
spiking layers within a wall-time budget (DARTS, SNASNet's training-free score, or random search),
retrain it with ``fit`` and report its test accuracy, with a figure of the cell."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, add_device_argument, device, emit
from neuroplastic.outer.search import SEARCHES, SearchSpace, search
from neuroplastic.tasks import TASKS

SUMMARY_KEYS = ("task", "method", "seed", "budget_s", "search_wall_s", "units", "cell", "test_accuracy",
                "validation_accuracy", "retrain_epochs", "retrain_wall_s", "out", "figures")


def register(subparsers):
    parser = subparsers.add_parser("search", help="search a spiking cell (DARTS, SNASNet, random search) within "
                                   "a wall-time budget, then retrain it")
    parser.add_argument("--task", default="randman", help=f"task: {', '.join(TASKS)} (default randman)")
    parser.add_argument("--method", default="darts", help=f"search: {', '.join(SEARCHES)} (default darts)")
    parser.add_argument("--budget-s", type=float, default=60.0, help="wall seconds of search (default 60)")
    parser.add_argument("--iterations", type=int, help="at most this many search units (DARTS steps, cells)")
    parser.add_argument("--nodes", type=int, default=3, help="hidden nodes of a cell (default 3)")
    parser.add_argument("--width", type=int, default=32, help="neurons per node (default 32)")
    parser.add_argument("--no-backward", action="store_true", help="cells without backward edges")
    parser.add_argument("--second-order", action="store_true", help="DARTS' second-order hypergradient")
    parser.add_argument("--retrain-epochs", type=int, help="epochs of retraining (default: the task's recipe)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and the search (default 0)")
    parser.add_argument("--out", default="neuroplastic-out/search", help="folder for checkpoints, figure, summary")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)
    parser.set_defaults(handler=main)


def main(args):
    """Bad input (a budget <= 0, an unknown method or task) raises ValueError in ``search`` before
    anything is written: exit code 2."""
    if args.second_order and args.method != "darts":
        raise UsageError("--second-order goes with --method darts")
    summary = search(args.task, args.method, args.budget_s, seed=args.seed, iterations=args.iterations,
                     space=SearchSpace(nodes=args.nodes, width=args.width, backward=not args.no_backward),
                     retrain_epochs=args.retrain_epochs, device=device(args), out=args.out, resume=args.resume,
                     progress=not args.no_progress,
                     method_options={"second_order": True} if args.second_order else None)
    emit({k: summary[k] for k in SUMMARY_KEYS}, args.json, [
        f"{summary['task']}, {summary['method']} ({summary['units']} units in {summary['search_wall_s']:.1f} s of "
        f"{summary['budget_s']:.0f} s): {summary['cell']}",
        f"retrained {summary['retrain_epochs']} epochs: test accuracy {summary['test_accuracy']:.4f}; "
        f"report: {summary['out']}/summary.json, figures: {', '.join(summary['figures'])}",
    ])
