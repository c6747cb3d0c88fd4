"""``neuroplastic evolve --task cartpole|digits|randman|stdp-digits --strategy openai-es|cmaes|ga``:
search without gradients — a spiking network's weights, its topology (GA), or the STDP and
homeostasis parameters of ``unsupervised-digits`` — optionally on Ray actors (``--workers N``)."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, emit, parse_option
from neuroplastic.outer.evolution.run import evolve

SUMMARY_KEYS = ("task", "strategy", "population", "generations", "sigma", "lr", "seed", "workers", "parameters",
                "score", "held_out", "wall_time_s", "evaluations_per_s", "restarts", "out", "figures")


def main(args):
    options = [parse_option(text, "--option") for text in args.option]
    if len({name for name, _ in options}) < len(options):
        raise UsageError("--option names an option twice")
    try:
        summary = evolve(args.task, strategy=args.strategy, population=args.population, generations=args.generations,
                         sigma=args.sigma, lr=args.lr, workers=args.workers, ray_address=args.ray_address,
                         seed=args.seed, out=args.out, resume=args.resume, progress=not args.quiet,
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

