"""``neuroplastic evolve --task cartpole|digits|randman|stdp-digits --strategy openai-es|cmaes|ga``:
search without gradients — a spiking network's weights, its topology (GA), or the STDP and
homeostasis parameters of ``unsupervised-digits`` — optionally on Ray actors (``--workers N``)."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, emit, parse_option
from neuroplastic.outer.evolution.run import EVOLUTION_TASKS, STRATEGIES, evolve

SUMMARY_KEYS = ("task", "strategy", "population", "generations", "sigma", "lr", "seed", "workers", "parameters",
                "score", "held_out", "wall_time_s", "evaluations_per_s", "restarts", "out", "figures")


def register(subparsers):
    parser = subparsers.add_parser("evolve", help="evolve a spiking network's weights, topology or plasticity "
                                   "parameters without gradients (OpenAI-ES, CMA-ES, GA; Ray workers)")
    parser.add_argument("--task", default="digits", help=f"what to evolve: {', '.join(EVOLUTION_TASKS)} "
                        "(default digits)")
    parser.add_argument("--strategy", default="openai-es", help=f"{', '.join(STRATEGIES)} (default openai-es)")
    parser.add_argument("--population", type=int, default=64, help="individuals per generation (default 64)")
    parser.add_argument("--generations", type=int, default=100, help="generations (default 100)")
    parser.add_argument("--sigma", type=float, default=0.05,
                        help="spread of the search: ES noise, CMA-ES step size, GA mutation (default 0.05)")
    parser.add_argument("--lr", type=float, default=0.03, help="OpenAI-ES's Adam rate (default 0.03)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a task option, e.g. --option hidden=32 (repeatable)")
    parser.add_argument("--workers", type=int, default=0,
                        help="Ray actors scoring the population (default 0: in this process)")
    parser.add_argument("--ray-address", help="join this Ray cluster (default: $RAY_ADDRESS, else a local one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search and the task (default 0)")
    parser.add_argument("--out", default="neuroplastic-out/evolve", help="folder for checkpoint, figure, summary")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.set_defaults(handler=main)


def main(args):
    options = [parse_option(text, "--option") for text in args.option]
    if len({name for name, _ in options}) < len(options):
        raise UsageError("--option names an option twice")
    try:
        summary = evolve(args.task, strategy=args.strategy, population=args.population, generations=args.generations,
                         sigma=args.sigma, lr=args.lr, workers=args.workers, ray_address=args.ray_address,
                         seed=args.seed, out=args.out, resume=args.resume, progress=not args.no_progress,
                         task_options=dict(options))
    except ImportError as error:
        if "pip install" not in str(error):
            raise
        raise UsageError(str(error)) from None
    emit({k: summary[k] for k in SUMMARY_KEYS}, args.json, [
        f"{summary['task']} by {summary['strategy']}: held-out score {summary['score']} after "
        f"{summary['generations']} generations of {summary['population']} ({summary['parameters']} parameters)",
        f"time {summary['wall_time_s']:.1f} s ({summary['evaluations_per_s']:.1f} evaluations/s); "
        f"report: {summary['out']}/summary.json, figure: {', '.join(summary['figures'])}",
    ])

