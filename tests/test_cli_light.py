"""Command-line manners: ``--help`` imports neither torch nor the library, the help's names equal the
registries', and long work reports progress on stderr off a terminal too (``--quiet``: none)."""
import io
import json
import subprocess
import sys

import pytest

import neuroplastic
from neuroplastic.cli import arguments
from neuroplastic.cli.main import build_parser, main
from neuroplastic.progress import Bar, Lines, Silent, progress_bar

COMMANDS = ["train", "run", "compare", "meta", "evolve", "search", "tour", "neuron", "fi", "bench", "reproduce",
            "export"]
HEAVY = ("torch", "numpy", "matplotlib", "tqdm")


def imported(argv):
    """The modules ``python -m neuroplastic ARGV`` imports (from ``-X importtime``), and its stdout."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "neuroplastic", *argv],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return modules, done.stdout


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)], ids=lambda c: " ".join(c) or "neuroplastic")
def test_help_imports_neither_torch_nor_the_library(command):
    modules, out = imported([*command, "--help"])
    assert out.startswith("usage: neuroplastic")
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    ours = {m for m in modules if m.startswith("neuroplastic")}
    assert ours <= {"neuroplastic", "neuroplastic.__main__", "neuroplastic.cli", "neuroplastic.cli.main",
                    "neuroplastic.cli.arguments"}


def test_the_help_lists_the_registries_names():
    """The copies in neuroplastic.cli.arguments cannot drift from the registries they name."""
    from neuroplastic.bench.workloads import PEERS
    from neuroplastic.devices import DEVICE_HELP
    from neuroplastic.experiments.base import EXPERIMENTS
    from neuroplastic.neurons import MODELS
    from neuroplastic.outer.evolution.run import EVOLUTION_TASKS, STRATEGIES
    from neuroplastic.outer.inner import INNER_LOOPS
    from neuroplastic.outer.search import SEARCHES
    from neuroplastic.tasks import META_DATASETS, TASKS
    from neuroplastic.training.methods import METHODS
    from neuroplastic.training.pat import SUBSTRATES
    from neuroplastic.training.recipes import DELAYS, NEURONS, RECIPES

    assert arguments.MODELS == tuple(sorted(MODELS))
    for copy, registry in [(arguments.TASKS, TASKS), (arguments.META_DATASETS, META_DATASETS),
                           (arguments.METHODS, METHODS), (arguments.RECIPES, RECIPES), (arguments.NEURONS, NEURONS),
                           (arguments.DELAYS, DELAYS), (arguments.SUBSTRATES, SUBSTRATES),
                           (arguments.INNER_LOOPS, INNER_LOOPS), (arguments.EVOLUTION_TASKS, EVOLUTION_TASKS),
                           (arguments.STRATEGIES, STRATEGIES), (arguments.SEARCHES, SEARCHES),
                           (arguments.PEERS, PEERS), (arguments.EXPERIMENTS, EXPERIMENTS)]:
        assert copy == tuple(registry)
    assert arguments.DEVICE_HELP == DEVICE_HELP


def test_every_command_has_a_handler_that_imports():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(subparsers.choices) == sorted(COMMANDS)
    for name, parser in subparsers.choices.items():
        handler = parser.get_default("handler")
        assert isinstance(handler, arguments.Handler), name
        module = pytest.importorskip(f"neuroplastic.cli.{handler.module}")
        assert callable(getattr(module, handler.function)), name


@pytest.mark.parametrize("command", ["meta", "evolve", "search", "reproduce"])
def test_no_progress_is_quiet(command):
    assert build_parser().parse_args([command, "--no-progress"]).quiet
    assert not build_parser().parse_args([command]).quiet


def test_the_package_names_load_on_first_use():
    assert set(neuroplastic._MODULE_OF) == set(neuroplastic.__all__)
    assert set(neuroplastic.__all__) <= set(dir(neuroplastic))
    for name in neuroplastic.__all__:
        assert getattr(neuroplastic, name) is not None
    from neuroplastic import LIF, run  # noqa: F401
    assert neuroplastic.neurons.LIF is LIF
    with pytest.raises(AttributeError):
        neuroplastic.no_such_name  # noqa: B018


TRAIN = {"train": ["train", "--task", "digits", "--hidden", "12", "--batch-size", "256", "--epochs", "2"],
         "run": ["run", "--epochs", "1"]}


@pytest.mark.parametrize("command", ["train", "run"])
def test_training_shows_a_line_per_epoch_on_stderr_off_a_terminal(command, tmp_path, capsys):
    assert main([*TRAIN[command], "--out", str(tmp_path / "a"), "--json"]) == 0
    captured = capsys.readouterr()  # capsys's stderr is no terminal, as a pipe or a CI log
    summary = json.loads(captured.out.strip().splitlines()[-1])  # stdout's last line stays the JSON object
    lines = captured.err.strip().splitlines()
    epochs = summary["epochs"]
    assert [line.split(",")[0] for line in lines] == [f"digits/bptt: epoch {e}/{epochs}" for e in range(1, epochs + 1)]
    assert "train loss" in lines[-1] and f"test accuracy {summary['test_accuracy']:.4g}" in lines[-1]

    assert main([*TRAIN[command][:-1], "1", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "test accuracy" in captured.out


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_is_a_bar_on_a_terminal_lines_elsewhere_and_nothing_when_quiet():
    assert isinstance(progress_bar(3, desc="x", file=Terminal()), Bar)
    assert isinstance(progress_bar(3, desc="x", file=io.StringIO()), Lines)
    assert isinstance(progress_bar(3, desc="x", file=Terminal(), enabled=False), Silent)

    out = io.StringIO()
    bar = progress_bar(20, desc="job", unit="gen", file=out)  # a line each tenth: every 2 units
    for _ in range(5):
        bar.set_postfix(best=0.5)
        bar.update(1)
    bar.milestone("epoch 1/3", {"train_loss": 0.25, "epoch": 1})
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["job: 2/20 gen", "job: 4/20 gen",
                                                        "job: epoch 1/3, train loss 0.25, epoch 1"]
    assert lines[0].endswith("best=0.5")

    out = io.StringIO()
    bar = progress_bar(None, desc="bench", file=out, every=0)
    bar.update(5)
    bar.milestone("done")
    assert out.getvalue().startswith("bench: done (")

    quiet = progress_bar(2, desc="q", enabled=False)
    quiet.update(2)
    quiet.milestone("nothing")
    terminal = Terminal()
    with progress_bar(2, desc="t", file=terminal, every=1) as bar:
        bar.milestone("epoch 1/2", train_loss=1.0)
    assert "t: epoch 1/2, train loss 1" in terminal.getvalue()
