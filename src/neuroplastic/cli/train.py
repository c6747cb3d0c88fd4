"""``neuroplastic train --task T --rule R`` (or ``--data my.npz``, data of one's own): train a spiking
network end to end, and ``neuroplastic run``: the main job, training the default task (digits) with
BPTT."""
from __future__ import annotations

import inspect

from neuroplastic.cli.common import UsageError, add_device_argument, device, emit, parse_option
from neuroplastic.cli.export import GraphInit
from neuroplastic.tasks import TASKS, Task
from neuroplastic.training.fit import fit
from neuroplastic.training.methods import METHODS
from neuroplastic.training.pat import SUBSTRATES
from neuroplastic.training.recipes import DELAYS, NEURONS, RECIPES
from neuroplastic.validation import lookup, require_count, require_positive

SUMMARY_KEYS = ("task", "rule", "epochs", "seed", "test_accuracy", "test_nmse", "test_loss", "wall_time_s", "updates",
                "synops",
                "peak_memory_mb", "peak_gpu_memory_mb", "spikes_per_sample", "bits_per_sample", "neurobench", "out", "figures")


def register(subparsers):
    parser = subparsers.add_parser("train", help="train a spiking network on a task with a learning rule")
    parser.add_argument("--task", help=f"task: {', '.join(TASKS)}; omit it to train on --data my.npz")
    parser.add_argument("--rule", default="bptt", help=f"learning rule: {', '.join(METHODS)} (default bptt)")
    parser.add_argument("--truncation", type=int, help="segment length in steps for --rule tbptt (default 50)")
    parser.add_argument("--rule-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an option of the rule, e.g. --rule-option feedback=symmetric for eprop, "
                             "mode=online, apply_every=10, threshold=0.01 for etl (repeatable)")
    add_data_argument(parser)
    add_training_arguments(parser, default_out="neuroplastic-out/train")
    parser.add_argument("--recipe", help=f"a named recipe instead of the task's: {', '.join(RECIPES)}")
    parser.add_argument("--neuron", help=f"hidden neuron model: {', '.join(NEURONS)} (default: the task's)")
    parser.add_argument("--hidden", help="hidden layer sizes, e.g. 128 or 256,128 (default: the task's)")
    parser.add_argument("--delays", help=f"delays of the input synapses: {', '.join(DELAYS)} (default: the task's)")
    parser.add_argument("--max-delay", type=int, help="the largest synaptic delay, in steps (default: the task's)")
    parser.add_argument("--graded", help="payload of the hidden spikes: none, learned, or bits:B (default: none)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (default: the task's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the task's)")
    parser.add_argument("--init", help="a NIR graph (.nir) to start training from, instead of the recipe's network")
    add_chip_arguments(parser)
    parser.set_defaults(handler=main)

    run = subparsers.add_parser("run", help="the main job: train the default task (digits, BPTT) and report")
    add_training_arguments(run, default_out="neuroplastic-out/run")
    run.set_defaults(handler=main_job)


def add_training_arguments(parser, *, default_out):
    parser.add_argument("--epochs", type=int, help="epochs (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and batches (default 0)")
    parser.add_argument("--out", default=default_out, help=f"folder for checkpoint, figures, summary ({default_out})")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)


def add_data_argument(parser):
    parser.add_argument("--data", help="an .npz file of data of one's own, without --task (x_train, y_train, x_test, "
                                       "y_test, optional dt: see neuroplastic.tasks.own); or the folder of a data "
                                       "set read from disk, with --task shd or nmnist")


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
CHIP_FLAGS = ("substrate", "mismatch", "noise", "bits", "chip")
CHIP_RULES = ("pat", "twin")


def add_chip_arguments(parser):
    """The simulated chip a network is deployed on, for --rule pat and twin."""
    parser.add_argument("--substrate", help=f"the chip a network runs on: {', '.join(SUBSTRATES)} (pat, twin)")
    parser.add_argument("--mismatch", type=float, help="the chip's device mismatch σ, e.g. 0.3 (default 0)")
    parser.add_argument("--noise", type=float, help="the chip's noise current per step (default 0)")
    parser.add_argument("--bits", type=int, help="bits of the chip's weights (default: full precision)")
    parser.add_argument("--chip", type=int, help="which chip: the seed of its mismatch (default 0)")


def chip_options(args, rule: str) -> dict:
    """The chip flags given, as options of ``rule`` (which must run on a chip)."""
    given = {name: getattr(args, name) for name in CHIP_FLAGS if getattr(args, name) is not None}
    if given and rule not in CHIP_RULES:
        raise UsageError(f"--{next(iter(given))} applies to --rule {' or '.join(CHIP_RULES)}, not {rule}")
    return given


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
               resume=args.resume, device=device(args),
               network=None if args.init is None else GraphInit(args.init),
               rule_options=rule_options, task_options=task_options, **changes), args.json)


def main_job(args):
    report(fit("digits", "bptt", epochs=_epochs(args), seed=args.seed, out=args.out, resume=args.resume,
               device=device(args)), args.json)




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
