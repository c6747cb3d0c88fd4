"""Every command's arguments, defined without importing torch or the library, so that ``neuroplastic
--help`` and each command's ``--help`` answer at once.

The work of a command is in its module (``neuroplastic.cli.train`` for ``train`` and ``run``, …), imported
by its :class:`Handler` when the command runs. The names the help lists (tasks, rules, models, …) come
from the library's registries: they are copied here, ``tests/test_cli_light.py`` checks that each copy
equals its registry, and every handler validates what it is given against the registry itself (one
line, exit code 2).
"""
from __future__ import annotations

import importlib

# The registries' names, in their order (the test named above keeps them equal).
MODELS = ("adaptive", "alif", "coba", "cuba", "dpi", "hh", "izhikevich", "lif")  # neuroplastic.neurons, sorted
TASKS = ("digits", "mnist1d", "randman", "cue", "pattern", "shd", "nmnist", "timing")  # neuroplastic.tasks
META_DATASETS = ("double-digits", "double-nmnist")  # neuroplastic.tasks
METHODS = ("bptt", "tbptt", "eprop", "ostl", "fa", "dfa", "decolle", "etl", "superspike", "rtrl", "eqprop", "pat",
           "twin")  # neuroplastic.training.methods
RECIPES = ("digits", "mnist1d", "randman", "cue", "pattern", "shd", "nmnist", "shd-delays", "double-digits",
           "timing")  # neuroplastic.training.recipes
NEURONS = ("discrete-lif", "discrete-alif", "cuba-lif", "dpi")  # neuroplastic.training.recipes
DELAYS = ("none", "fixed", "learned")  # neuroplastic.training.recipes
SUBSTRATES = ("dpi",)  # neuroplastic.training.pat
INNER_LOOPS = ("bptt", "eprop", "decolle")  # neuroplastic.outer.inner
EVOLUTION_TASKS = ("digits", "randman", "cartpole", "stdp-digits")  # neuroplastic.outer.evolution.run
STRATEGIES = ("openai-es", "cmaes", "ga")  # neuroplastic.outer.evolution.run
SEARCHES = ("darts", "snasnet", "random")  # neuroplastic.outer.search
PEERS = ("snntorch", "norse", "spikingjelly")  # neuroplastic.bench.workloads
EXPERIMENTS = ("stdp-window", "stdp-bimodal", "unsupervised-digits", "distal-reward", "delays", "eqprop-beta",
               "eqprop-gdu", "pat-mismatch", "plastic-completion")  # neuroplastic.experiments.base
DEVICE_HELP = "cpu, cuda, cuda:N or mps"  # neuroplastic.devices

CHIP_FLAGS = ("substrate", "mismatch", "noise", "bits", "chip")


class Handler:
    """A command's work: the function ``function`` of ``neuroplastic.cli.<module>``, imported when the
    command runs (so that building the parser imports nothing heavy)."""

    def __init__(self, module: str, function: str = "main"):
        self.module, self.function = module, function

    def __call__(self, args):
        return getattr(importlib.import_module(f"neuroplastic.cli.{self.module}"), self.function)(args)

    def __repr__(self) -> str:
        return f"Handler({self.module!r}, {self.function!r})"


def register(subparsers) -> None:
    """Every command, in the order ``neuroplastic --help`` lists them."""
    for command in (train, compare, meta, evolve, search, tour, neuron, fi, bench, reproduce, export):
        command(subparsers)


# Arguments several commands share.

def add_quiet_argument(parser, *aliases: str) -> None:
    """``--quiet``: no progress on stderr (a bar on a terminal, a line per epoch or step elsewhere)."""
    parser.add_argument("--quiet", *aliases, dest="quiet", action="store_true",
                        help="no progress on stderr (by default a bar on a terminal, else a line per "
                             "epoch or step)")


def add_device_argument(parser) -> None:
    parser.add_argument("--device", default="cpu", help=f"where to compute: {DEVICE_HELP} (default cpu)")


def add_model_arguments(parser) -> None:
    parser.add_argument("model", help=f"neuron model: {', '.join(MODELS)}")
    parser.add_argument("--preset", help="named parameter set (Izhikevich: RS, IB, CH, FS, LTS, TC, RZ)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a numeric model parameter, e.g. --param tau_m=15 (repeatable)")
    parser.add_argument("--dt", type=float, help="time step in ms (default: the model's own)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="white-noise strength σ (mV) for models with a noise term")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--plot", help="write a figure to this file (.png, .pdf or .svg)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)


def add_training_arguments(parser, *, default_out) -> None:
    parser.add_argument("--epochs", type=int, help="epochs (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and batches (default 0)")
    parser.add_argument("--out", default=default_out, help=f"folder for checkpoint, figures, summary ({default_out})")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_quiet_argument(parser)
    add_device_argument(parser)


def add_data_argument(parser) -> None:
    parser.add_argument("--data", help="an .npz file of data of one's own, without --task (x_train, y_train, x_test, "
                                       "y_test, optional dt: see neuroplastic.tasks.own); or the folder of a data "
                                       "set read from disk, with --task shd or nmnist")


def add_chip_arguments(parser) -> None:
    """The simulated chip a network is deployed on, for --rule pat and twin."""
    parser.add_argument("--substrate", help=f"the chip a network runs on: {', '.join(SUBSTRATES)} (pat, twin)")
    parser.add_argument("--mismatch", type=float, help="the chip's device mismatch σ, e.g. 0.3 (default 0)")
    parser.add_argument("--noise", type=float, help="the chip's noise current per step (default 0)")
    parser.add_argument("--bits", type=int, help="bits of the chip's weights (default: full precision)")
    parser.add_argument("--chip", type=int, help="which chip: the seed of its mismatch (default 0)")


# The commands.

def train(subparsers) -> None:
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
    parser.set_defaults(handler=Handler("train"))

    run = subparsers.add_parser("run", help="the main job: train the default task (digits, BPTT) and report")
    add_training_arguments(run, default_out="neuroplastic-out/run")
    run.set_defaults(handler=Handler("train", "main_job"))


def compare(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="train several learning rules on one task and compare them")
    parser.add_argument("--task", help=f"task: {', '.join(TASKS)}; omit it to compare on --data my.npz")
    add_data_argument(parser)
    parser.add_argument("--rules", required=True, help=f"comma-separated rules from: {', '.join(METHODS)}")
    parser.add_argument("--epochs", type=int, help="epochs for every rule (default: the task's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, weights and batches (default 0)")
    parser.add_argument("--out", default="neuroplastic-out/compare", help="folder for the runs and the figure")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_quiet_argument(parser)
    add_device_argument(parser)
    add_chip_arguments(parser)
    parser.set_defaults(handler=Handler("compare"))


def meta(subparsers) -> None:
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
    add_quiet_argument(parser, "--no-progress")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)
    parser.set_defaults(handler=Handler("meta"))


def evolve(subparsers) -> None:
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
    add_quiet_argument(parser, "--no-progress")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.set_defaults(handler=Handler("evolve"))


def search(subparsers) -> None:
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
    add_quiet_argument(parser, "--no-progress")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_device_argument(parser)
    parser.set_defaults(handler=Handler("search"))


def tour(subparsers) -> None:
    parser = subparsers.add_parser("tour", help="every neuron model's trace and f-I curve in one figure")
    parser.add_argument("--out", default="neuroplastic-out/tour",
                        help="folder for the figure (default neuroplastic-out/tour)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_quiet_argument(parser)
    add_device_argument(parser)
    parser.set_defaults(handler=Handler("tour"))


def neuron(subparsers) -> None:
    parser = subparsers.add_parser("neuron", help="simulate one neuron model under a step current")
    add_model_arguments(parser)
    parser.add_argument("--current", type=float, help="step current (default: the model's own)")
    parser.add_argument("--duration", type=float, default=200.0, help="duration in ms (default 200)")
    parser.set_defaults(handler=Handler("neuron"))


def fi(subparsers) -> None:
    parser = subparsers.add_parser("fi", help="f-I curve: steady-state rate for each step current")
    add_model_arguments(parser)
    parser.add_argument("--currents", required=True, help="comma-separated currents, e.g. 0,5,10,20")
    parser.add_argument("--duration", type=float, default=1000.0,
                        help="duration in ms; the rate counts spikes in its second half (default 1000)")
    parser.set_defaults(handler=Handler("fi"))


def bench(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmark a LIF layer (forward, backward, memory) against peers")
    parser.add_argument("--case", choices=("feedforward", "recurrent", "online"), default="feedforward",
                        help="feedforward: the LIF layer against peers (default); recurrent: recurrent ALIF and "
                             "LIF layers against their floor and snnTorch; online: the online rules' training "
                             "steps against a forward pass and BPTT (one width, default 512)")
    parser.add_argument("--sizes", help="comma-separated layer widths N (default 512,4096)")
    parser.add_argument("--steps", type=int, help="time steps T (default 500)")
    parser.add_argument("--batch", type=int, help="batch size B (default 16)")
    parser.add_argument("--repeats", type=int, help="timed rounds after a warm-up round; the median counts (default 5)")
    parser.add_argument("--peers", help=f"comma-separated peers from {', '.join(PEERS)}, or 'none' "
                                        "(default: those installed)")
    parser.add_argument("--threads", type=int, help="torch threads for every case (default: this machine's cores)")
    parser.add_argument("--no-delays", action="store_true", help="leave out the layer with learned delays (D = 25)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test (N=64, T=20, B=4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_quiet_argument(parser)
    add_device_argument(parser)
    parser.set_defaults(handler=Handler("bench"))


def reproduce(subparsers) -> None:
    parser = subparsers.add_parser("reproduce", help="reproduce a published plasticity experiment "
                                   f"({', '.join(EXPERIMENTS)})")
    parser.add_argument("name", nargs="?", help="the experiment (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--quick", action="store_true", help="the scaled configuration of the tests")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--out", default="neuroplastic-out/reproduce",
                        help="folder for the figure (default neuroplastic-out/reproduce)")
    parser.add_argument("--plot", help="figure path instead of OUT/NAME.png (.png, .pdf or .svg)")
    add_device_argument(parser)
    add_quiet_argument(parser, "--no-progress")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.set_defaults(handler=Handler("reproduce"))


def export(subparsers) -> None:
    parser = subparsers.add_parser("export", help="write a trained network (a checkpoint) as a NIR graph")
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by train, e.g. run/checkpoint.pt")
    parser.add_argument("--nir", required=True, help="the NIR file to write, e.g. model.nir")
    parser.add_argument("--data", help="the .npz file the run trained on (a run of train --data)")
    parser.add_argument("--init", help="the NIR graph the run started from (a run of train --init)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.set_defaults(handler=Handler("export"))
