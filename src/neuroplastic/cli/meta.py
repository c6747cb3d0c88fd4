"""``neuroplastic meta --task double-digits --ways 5 --shots 1 --inner bptt|eprop|decolle``: meta-learn
a spiking network's start (and with ``--learn-rates`` its inner rates) on few-shot episodes, with
the inner loop's gradient steps or an online rule inside; report the meta-test accuracy against the
same network trained from scratch on each support set."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, add_device_argument, device, emit
from neuroplastic.outer.inner import INNER_LOOPS
from neuroplastic.outer.training import meta_fit
from neuroplastic.tasks import META_DATASETS
from neuroplastic.validation import lookup

SUMMARY_KEYS = ("dataset", "ways", "shots", "inner", "inner_steps", "first_order", "learn_rates", "seed",
                "iterations", "test_accuracy", "test_accuracy_ci95", "scratch_accuracy", "scratch_accuracy_ci95",
                "test_episodes", "wall_time_s", "out", "figures")


def register(subparsers):
    parser = subparsers.add_parser("meta", help="meta-learn a spiking network on few-shot episodes (MAML, "
                                   "FO-MAML, Meta-SGD; gradient steps or an online rule inside)")
    parser.add_argument("--task", default="double-digits", help=f"meta-dataset: {', '.join(META_DATASETS)} "
                        "(default double-digits)")
    parser.add_argument("--data", help="the folder of N-MNIST files, for --task double-nmnist")
    parser.add_argument("--ways", type=int, default=5, help="classes per episode (default 5)")
    parser.add_argument("--shots", type=int, default=1, help="support samples per class (default 1)")
    parser.add_argument("--queries", type=int, default=15, help="query samples per class (default 15)")
    parser.add_argument("--inner", default="bptt", help=f"inner loop: {', '.join(INNER_LOOPS)} (default bptt)")
    parser.add_argument("--inner-steps", type=int, default=5, help="inner updates per episode (default 5)")
    parser.add_argument("--inner-lr", type=float, default=0.1, help="inner rate α (default 0.1)")
    parser.add_argument("--first-order", action="store_true", help="first-order meta-gradient (FO-MAML)")
    parser.add_argument("--learn-rates", action="store_true", help="learn a rate per weight (Meta-SGD)")
    parser.add_argument("--meta-batch", type=int, default=8, help="episodes per meta-iteration (default 8)")
    parser.add_argument("--iterations", type=int, default=500, help="meta-iterations (default 500)")
    parser.add_argument("--meta-lr", type=float, default=3e-3, help="Adam rate of the outer loop (default 3e-3)")
    parser.add_argument("--validate-every", type=int, default=50,
                        help="iterations between meta-validation scores and checkpoints (default 50)")
    parser.add_argument("--validation-episodes", type=int, default=100,
                        help="meta-validation episodes, drawn once (default 100)")
    parser.add_argument("--test-episodes", type=int, default=600, help="meta-test episodes (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and episodes (default 0)")
    parser.add_argument("--out", default="neuroplastic-out/meta", help="folder for checkpoint, figure, summary")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)
    parser.set_defaults(handler=main)


def main(args):
    lookup("meta-dataset", args.task, META_DATASETS)
    lookup("inner rule", args.inner, INNER_LOOPS)
    if (args.data is None) == (args.task == "double-nmnist"):
        raise UsageError("--data (a folder of N-MNIST files) goes with --task double-nmnist, and only with it")
    summary = meta_fit(args.task, ways=args.ways, shots=args.shots, queries=args.queries, inner=args.inner,
                       inner_steps=args.inner_steps, inner_lr=args.inner_lr, first_order=args.first_order,
                       learn_rates=args.learn_rates, meta_batch=args.meta_batch, iterations=args.iterations,
                       meta_lr=args.meta_lr, validate_every=args.validate_every, test_episodes=args.test_episodes,
                       validation_episodes=args.validation_episodes,
                       seed=args.seed, device=device(args), out=args.out, resume=args.resume,
                       progress=not args.no_progress,
                       dataset_options={"path": args.data} if args.data is not None else None)
    emit({k: summary[k] for k in SUMMARY_KEYS}, args.json, [
        f"{summary['dataset']} {summary['ways']}-way {summary['shots']}-shot, {summary['inner']} inside: "
        f"meta-test accuracy {summary['test_accuracy']:.3f} ± {summary['test_accuracy_ci95']:.3f}, from scratch "
        f"{summary['scratch_accuracy']:.3f} ± {summary['scratch_accuracy_ci95']:.3f} "
        f"({summary['test_episodes']} episodes, 95% intervals)",
        f"meta-training time {summary['wall_time_s']:.1f} s; report: {summary['out']}/summary.json, "
        f"figure: {', '.join(summary['figures'])}",
    ])
