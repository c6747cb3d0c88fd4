"""Evolve a problem's parameters with a strategy, with checkpoints, resumption, a figure and a
summary: what ``neuroplastic evolve`` calls.

Each generation the strategy proposes a population, the evaluator scores it (here, or on Ray actors:
:mod:`.population`) and the strategy is told the fitness. A checkpoint is written atomically after
every generation; ``resume`` continues from it exactly (also with another number of workers: the
fitness does not depend on where it is computed). At the end the strategy's answer (the centre of
OpenAI-ES and CMA-ES, the best genome of the GA) is scored on held-out data by ``problem.evaluate``.
Everything goes to ``out``: ``checkpoint.pt``, ``fitness.png``, ``summary.json``.
"""
from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path

import torch

from neuroplastic.outer.evolution.control import CartPole
from neuroplastic.outer.evolution.plasticity import STDPDigits
from neuroplastic.outer.evolution.population import make_evaluator
from neuroplastic.outer.evolution.problems import Classification, Genome
from neuroplastic.outer.evolution.strategies import CMAES, OpenAIES
from neuroplastic.outer.evolution.topology import GeneticTopology, hidden_neurons
from neuroplastic.progress import progress_bar
from neuroplastic.report.evolution import plot_fitness
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.validation import build_named, lookup, require_count, require_positive

__all__ = ["evolve", "EVOLUTION_TASKS", "STRATEGIES", "make_problem", "make_strategy"]


EVOLUTION_TASKS = {
    "digits": partial(Classification, "digits"),
    "randman": partial(Classification, "randman"),
    "cartpole": CartPole,
    "stdp-digits": STDPDigits,
}
STRATEGIES = ("openai-es", "cmaes", "ga")


def make_problem(task: str, *, seed: int = 0, options: dict | None = None):
    """The problem called ``task`` (a key of :data:`EVOLUTION_TASKS`) with some options changed."""
    return build_named("evolution task", task, EVOLUTION_TASKS, seed, dict(options or {}))


def make_strategy(name: str, problem, genome: Genome, *, population: int, sigma: float, lr: float, seed: int):
    lookup("strategy", name, dict.fromkeys(STRATEGIES))
    if name == "openai-es":
        return OpenAIES(genome.start, population=population, sigma=sigma, lr=lr, bounds=genome.bounds, seed=seed)
    if name == "cmaes":
        return CMAES(genome.start, population=population, sigma=sigma, bounds=genome.bounds, seed=seed)
    network = getattr(problem, "network", None)
    if network is None or problem.bounds is not None:
        raise ValueError(f"the GA evolves network topologies; {problem.name!r} has no network weights to evolve")
    matrices = [torch.arange(genome.offsets[name], genome.offsets[name] + size)
                for name, size, shape in zip(genome.names, genome.sizes, genome.shapes) if len(shape) >= 2]
    return GeneticTopology(genome.start, population=population, synapses=torch.cat(matrices),
                           neurons=hidden_neurons(network, genome, getattr(problem, "network_prefix", "")), sigma=sigma,
                           seed=seed)


def evolve(task: str = "digits", *, strategy: str = "openai-es", population: int = 64, generations: int = 100,
           sigma: float = 0.05, lr: float = 0.03, workers: int = 0, ray_address: str | None = None, seed: int = 0,
           out="neuroplastic-out/evolve", resume: bool = False, progress: bool = True,
           task_options: dict | None = None) -> dict:
    """Evolve and return the summary (also written to summary.json)."""
    require_count("population", population, minimum=2)
    require_count("generations", generations)
    require_count("workers", workers, minimum=0)
    require_positive("sigma", sigma)
    require_positive("lr", lr)
    lookup("strategy", strategy, dict.fromkeys(STRATEGIES))
    problem = make_problem(task, seed=seed, options=task_options)
    genome = Genome(problem.initial(), problem.bounds)
    search = make_strategy(strategy, problem, genome, population=population, sigma=sigma, lr=lr, seed=seed)
    out = Path(out)
    config = json.loads(json.dumps({"task": task, "task_options": task_options or {}, "strategy": strategy,
                                    "population": population, "sigma": sigma, "lr": lr, "seed": seed}))
    history, wall, done = [], 0.0, 0
    if resume:
        checkpoint = load_checkpoint(out / "checkpoint.pt")
        if checkpoint["config"] != config:
            raise ValueError(f"the checkpoint in {out} was made with {checkpoint['config']}, not {config}")
        if checkpoint["generation"] > generations:
            raise ValueError(f"the checkpoint in {out} holds {checkpoint['generation']} generations, "
                             f"more than the {generations} asked for")
        search.load_state_dict(checkpoint["strategy"])
        history, wall, done = checkpoint["history"], checkpoint["wall_time_s"], checkpoint["generation"]
    evaluator = make_evaluator(problem, workers, address=ray_address)
    try:
        out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before evolving, not after
    except OSError:
        evaluator.close()
        raise
    bar = progress_bar(generations, initial=done, desc=f"{task}/{strategy}", unit="gen", enabled=progress,
                       every=1, leave=False)  # off a terminal, a line per generation
    try:
        for generation in range(done, generations):
            start = time.perf_counter()
            candidates = search.ask()
            fitness = evaluator(genome.unflatten(candidates), generation)
            search.tell(candidates, fitness)
            wall += time.perf_counter() - start
            finite = fitness[fitness.isfinite()]  # a diverged generation is written as null, not as NaN
            history.append({"generation": generation + 1, "best": _finite(fitness.max()),
                            "mean": _finite(finite.mean()) if len(finite) else None})
            save_checkpoint(out / "checkpoint.pt", {"config": config, "strategy": search.state_dict(),
                                                    "history": history, "wall_time_s": wall,
                                                    "generation": generation + 1})
            bar.set_postfix(best=history[-1]["best"], mean=history[-1]["mean"])
            bar.update(1)
    finally:
        bar.close()
        evaluator.close()
    answer = genome.unflatten(search.centre())
    held_out = {key: _finite(value) if isinstance(value, float) else value
                for key, value in problem.evaluate(answer).items()}
    summary = {**config, "generations": generations, "workers": workers, "parameters": genome.size,
               "score": held_out["score"], "held_out": held_out, "wall_time_s": wall,
               "evaluations_per_s": population * generations / wall if wall else None,
               "restarts": getattr(evaluator, "restarts", 0), "out": str(out), "history": history}
    if genome.bounds is not None:  # a hyperparameter search: its answer, by name
        summary["found"] = {name: value.tolist() for name, value in answer.items()}
    summary["figures"] = [str(plot_fitness(summary, out / "fitness.png"))]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
