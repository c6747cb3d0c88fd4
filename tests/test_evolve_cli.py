"""``neuroplastic evolve`` as a user meets it (JSON, figure, checkpoint), the same run on Ray actors
bit for bit, a Ray worker lost mid-generation, and bad input refused before anything is written."""
import json
import os
import sys

import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.outer.evolution import Classification, RayEvaluator, SerialEvaluator, evolve
from neuroplastic.training.checkpoint import load_checkpoint

TINY = ["--option", "hidden=6", "--option", "batch=16", "--option", "chunk=4"]
OPTIONS = dict(hidden=6, batch=16, chunk=4)


def test_evolve_command_reports_json_writes_its_figure_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["evolve", "--task", "digits", "--population", "6", "--generations", "2", *TINY, "--no-progress",
                 "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["strategy"] == "openai-es" and summary["generations"] == 2 and 0 <= summary["score"] <= 1
    assert (out / "fitness.png").stat().st_size > 0 and load_checkpoint(out / "checkpoint.pt")["generation"] == 2
    assert len(json.loads((out / "summary.json").read_text())["history"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["--population", "1"], "population"),
    (["--generations", "0"], "generations"),
    (["--strategy", "hill-climbing"], "unknown strategy"),
    (["--task", "pong"], "unknown evolution task"),
    (["--option", "depth=3"], "no option 'depth'"),
    (["--option", "hidden"], "NAME=VALUE"),
    (["--sigma", "-1"], "sigma"),
    (["--workers", "-2"], "workers"),
    (["--resume"], "no checkpoint"),
    (["--option", "hidden=4"], "names an option twice"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    code = main(["evolve", "--task", "digits", *TINY, "--no-progress", "--out", str(out), *argv])
    assert code == 2 and message in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("module, argv", [("ray", ["--workers", "2"]), ("cmaes", ["--strategy", "cmaes"])])
def test_a_missing_extra_is_named_in_one_line(tmp_path, capsys, monkeypatch, module, argv):
    monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / "run"
    code = main(["evolve", "--task", "digits", *TINY, "--no-progress", "--out", str(out), *argv])
    error = capsys.readouterr().err
    assert code == 2 and "pip install 'neuroplastic[evolve]'" in error and len(error.strip().splitlines()) == 1
    assert not out.exists()


class DiesOnce(Classification):
    """Kills the process scoring its first chunk (once per ``marker`` file): a Ray worker lost mid-generation."""

    def __init__(self, marker, **options):
        super().__init__("digits", **options)
        self.marker = str(marker)

    def fitness(self, population, generation):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))  # only one process wins the race to die
        except FileExistsError:
            return super().fitness(population, generation)
        os._exit(1)


class AlwaysDies(Classification):
    def fitness(self, population, generation):
        os._exit(1)


class Raises(Classification):
    def fitness(self, population, generation):
        raise ValueError("a bug in the problem")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_workers_give_the_serial_run_bit_for_bit(tmp_path, local_ray):
    run = dict(task="digits", strategy="openai-es", population=8, generations=3, progress=False, task_options=OPTIONS)
    serial = evolve(workers=0, out=tmp_path / "serial", **run)
    distributed = evolve(workers=2, out=tmp_path / "ray", **run)
    assert distributed["history"] == serial["history"] and distributed["score"] == serial["score"]
    one, two = (load_checkpoint(tmp_path / name / "checkpoint.pt")["strategy"]["theta"] for name in ("serial", "ray"))
    assert torch.equal(one, two)
    # and a run begun in this process may go on on Ray
    evolve(workers=0, out=tmp_path / "mixed", **{**run, "generations": 2})
    mixed = evolve(workers=2, out=tmp_path / "mixed", resume=True, **run)
    assert mixed["history"] == serial["history"]


def test_a_lost_ray_worker_has_its_individuals_scored_again(tmp_path, local_ray):
    problem = DiesOnce(tmp_path / "died", **OPTIONS)
    population = {name: value.expand(8, *value.shape) + 0.01 * torch.arange(8.0).reshape(8, *[1] * value.dim())
                  for name, value in problem.initial().items()}
    evaluator = RayEvaluator(problem, 2)
    try:
        fitness = evaluator(population, 0)
    finally:
        evaluator.close()
    assert evaluator.restarts == 1 and (tmp_path / "died").exists()
    assert torch.equal(fitness, SerialEvaluator(problem)(population, 0))


@pytest.mark.parametrize("problem, message", [(AlwaysDies, "lost its Ray actor 4 times"),
                                              (Raises, "a bug in the problem")])
def test_a_chunk_that_cannot_be_scored_stops_the_run_with_one_line(local_ray, problem, message):
    problem = problem("digits", **{**OPTIONS, "chunk": 8})
    population = {name: value.expand(8, *value.shape) for name, value in problem.initial().items()}
    evaluator = RayEvaluator(problem, 1)
    try:
        with pytest.raises(RuntimeError, match=message):
            evaluator(population, 0)
    finally:
        evaluator.close()
