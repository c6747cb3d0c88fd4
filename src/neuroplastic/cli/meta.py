"""``neuroplastic meta --task double-digits --ways 5 --shots 1 --inner bptt|eprop|decolle``: meta-learn
a spiking network's start (and with ``--learn-rates`` its inner rates) on few-shot episodes, with
the inner loop's gradient steps or an online rule inside; report the meta-test accuracy against the
same network trained from scratch on each support set."""
from __future__ import annotations

from neuroplastic.cli.common import UsageError, device, emit
from neuroplastic.outer.inner import INNER_LOOPS
from neuroplastic.outer.training import meta_fit
from neuroplastic.tasks import META_DATASETS
from neuroplastic.validation import lookup

SUMMARY_KEYS = ("dataset", "ways", "shots", "inner", "inner_steps", "first_order", "learn_rates", "seed",
                "iterations", "test_accuracy", "test_accuracy_ci95", "scratch_accuracy", "scratch_accuracy_ci95",
                "test_episodes", "wall_time_s", "out", "figures")


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
                       progress=not args.quiet,
                       dataset_options={"path": args.data} if args.data is not None else None)
    emit({k: summary[k] for k in SUMMARY_KEYS}, args.json, [
        f"{summary['dataset']} {summary['ways']}-way {summary['shots']}-shot, {summary['inner']} inside: "
        f"meta-test accuracy {summary['test_accuracy']:.3f} ± {summary['test_accuracy_ci95']:.3f}, from scratch "
        f"{summary['scratch_accuracy']:.3f} ± {summary['scratch_accuracy_ci95']:.3f} "
        f"({summary['test_episodes']} episodes, 95% intervals)",
        f"meta-training time {summary['wall_time_s']:.1f} s; report: {summary['out']}/summary.json, "
        f"figure: {', '.join(summary['figures'])}",
    ])
