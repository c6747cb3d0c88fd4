"""``neuroplastic train --task T --rule R`` (or ``--data my.npz``, data of one's own): train a spiking
network end to end, and ``neuroplastic run``: the main job, training the default task (digits) with
BPTT."""
from __future__ import annotations

import inspect

from neuroplastic.cli.arguments import CHIP_FLAGS
from neuroplastic.cli.common import UsageError, device, emit, parse_option
from neuroplastic.cli.export import GraphInit
from neuroplastic.tasks import TASKS, Task
from neuroplastic.training.fit import fit
from neuroplastic.training.methods import METHODS
from neuroplastic.validation import (
    lookup,
    require_count,
    require_non_negative,
    require_positive,
)

SUMMARY_KEYS = ("task", "rule", "epochs", "seed", "test_accuracy", "test_nmse", "test_loss", "wall_time_s",
                "ms_per_sample", "updates",
                "synops",
                "peak_memory_mb", "peak_gpu_memory_mb", "spikes_per_sample", "bits_per_sample", "neurobench", "out", "figures")


def require_task_or_data(args) -> None:
    """A registered ``--task`` (for shd and nmnist, its files at ``--data``) or an ``.npz`` file of
    one's own at ``--data``."""
    if args.task is not None:
        factory = lookup("task", args.task, TASKS)
        if args.data is not None and "path" not in inspect.signature(factory).parameters:
            raise UsageError(f"--task {args.task} reads no files; for a file of your own give --data without --task")
    elif args.data is None:
        raise UsageError(f"give --task ({', '.join(TASKS)}) or --data with an .npz file of your own")


NETWORK_FLAGS = ("neuron", "hidden", "delays", "max_delay", "graded")  # what --init's graph decides
CHIP_RULES = ("pat", "twin")
CHIP_AMOUNTS = ("mismatch", "noise")  # the chip flags that are real numbers (the library's ChipSpec checks all)


def chip_options(args, rule: str) -> dict:
    """The chip flags given, as options of ``rule`` (which must run on a chip); a clear error naming the
    flag for a mismatch or noise that is NaN, infinite or negative (before a NaN, never equal to itself,
    is compared with anything)."""
    given = {name: getattr(args, name) for name in CHIP_FLAGS if getattr(args, name) is not None}
    if given and rule not in CHIP_RULES:
        raise UsageError(f"--{next(iter(given))} applies to --rule {' or '.join(CHIP_RULES)}, not {rule}")
    return {name: require_non_negative(f"--{name}", value) if name in CHIP_AMOUNTS else value
            for name, value in given.items()}


def chip_flags(args) -> list[str]:
    """The chip flags given, as command-line arguments again."""
    return [part for name in CHIP_FLAGS if getattr(args, name) is not None
            for part in (f"--{name}", str(getattr(args, name)))]


def main(args):
    require_task_or_data(args)
    lookup("rule", args.rule, METHODS)
    rule_options = dict(parse_option(text, "--rule-option") for text in args.rule_option)
    if len(rule_options) != len(args.rule_option):
        raise UsageError("--rule-option names an option twice")
    if args.rule in CHIP_RULES and args.neuron not in (None, "dpi"):
        raise UsageError(f"a chip computes DPI neurons: --neuron {args.neuron} cannot run with --rule {args.rule}")
    for name, value in chip_options(args, args.rule).items():
        if rule_options.setdefault(name, value) != value:
            raise UsageError(f"--{name} and --rule-option {name}= disagree")
    if args.truncation is not None:
        if args.rule != "tbptt":
            raise UsageError("--truncation applies to --rule tbptt only")
        rule_options["steps"] = require_count("--truncation", args.truncation)
    changes = {
        "neuron": args.neuron,
        "hidden": _sizes(args.hidden) if args.hidden else None,
        "delays": args.delays,
        "max_delay": None if args.max_delay is None else require_count("--max-delay", args.max_delay),
        "graded": args.graded,
        "lr": None if args.lr is None else require_positive("--lr", args.lr),
        "batch_size": None if args.batch_size is None else require_count("--batch-size", args.batch_size),
    }
    if args.init is not None:
        shaped = [name for name in NETWORK_FLAGS if changes[name] is not None]
        if shaped:
            raise UsageError(f"--{shaped[0].replace('_', '-')} shapes the recipe's network; with --init the network "
                             f"is the graph's")
    task = args.task if args.task is not None else Task.from_file(args.data)  # read once every flag is checked
    task_options = {"path": args.data} if args.data and args.task else {}
    report(fit(task, args.rule, recipe=args.recipe, epochs=_epochs(args), seed=args.seed, out=args.out,
               resume=args.resume, device=device(args), progress=not args.quiet,
               network=None if args.init is None else GraphInit(args.init),
               rule_options=rule_options, task_options=task_options, **changes), args.json)


def main_job(args):
    report(fit("digits", "bptt", epochs=_epochs(args), seed=args.seed, out=args.out, resume=args.resume,
               device=device(args), progress=not args.quiet), args.json)




def _epochs(args):
    return None if args.epochs is None else require_count("--epochs", args.epochs)


def _sizes(text):
    try:
        return tuple(require_count("--hidden", int(part)) for part in text.split(","))
    except ValueError:
        raise UsageError(f"--hidden must be comma-separated positive integers, got {text!r}") from None


def report(summary: dict, as_json: bool):
    metric = "test_accuracy" if "test_accuracy" in summary else "test_nmse"
    emit({k: summary[k] for k in SUMMARY_KEYS if k in summary}, as_json, [
        f"{summary['task']} / {summary['rule']}: {metric.replace('_', ' ')} {summary[metric]:.4f} "
        f"after {summary['epochs']} epochs",
        f"training time {summary['wall_time_s']:.1f} s, peak memory {summary['peak_memory_mb']:.0f} MB, "
        f"{summary['spikes_per_sample']:.0f} hidden spikes per sample carrying {summary['bits_per_sample']:.0f} bits",
        f"report: {summary['out']}/summary.json, figures: {', '.join(summary['figures'])}",
    ])
