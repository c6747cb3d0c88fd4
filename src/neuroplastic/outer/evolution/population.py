"""Scoring a population: in this process, or on Ray actors — the same chunks either way.

A population of ``P`` individuals is cut into chunks of at most ``problem.chunk``; each chunk is one
call of ``problem.fitness`` (one batched forward pass for a network problem). :class:`SerialEvaluator`
runs the chunks here; :class:`RayEvaluator` hands them to Ray actors (Moritz et al. 2018, "Ray: a
distributed framework for emerging AI applications"), each holding its own copy of the problem. The
chunks and the torch thread count are the same in both, so a seeded run gives the same fitness, bit
for bit, in one process or on local actors (machines of other CPUs may round differently). An actor
that dies mid-generation is replaced and its chunk scored again, never dropped — up to
:data:`RETRIES` times per chunk; an error raised by the problem itself stops the run with one line.

Ray runs locally with ``workers`` CPUs, or joins the cluster named by ``address`` (or the
``RAY_ADDRESS`` environment variable): start one with ``ray start --head`` on one machine and
``ray start --address=HEAD:6379`` on the others, then ``neuroplastic evolve ... --workers N
--ray-address HEAD:6379``.
"""
from __future__ import annotations

import os

import torch

__all__ = ["SerialEvaluator", "RayEvaluator", "make_evaluator", "RETRIES"]

RETRIES = 3  # new actors for one chunk before the run gives up (an actor that cannot even start)


def _chunks(population: dict[str, torch.Tensor], chunk: int) -> list[dict[str, torch.Tensor]]:
    size = len(next(iter(population.values())))
    return [{name: values[first:first + chunk] for name, values in population.items()}
            for first in range(0, size, chunk)]


def _score(problem, chunk: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
    fitness = problem.fitness(chunk, generation).double()
    expected = len(next(iter(chunk.values())))
    if fitness.shape != (expected,):
        raise ValueError(f"{problem.name}: fitness returned shape {tuple(fitness.shape)} for {expected} individuals")
    return fitness.nan_to_num(nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)  # NaN: the worst, not a poison


class SerialEvaluator:
    """Scores chunk after chunk in this process."""

    def __init__(self, problem):
        self.problem = problem

    def __call__(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
        return torch.cat([_score(self.problem, chunk, generation) for chunk in _chunks(population, self.problem.chunk)])

    def close(self) -> None:
        pass


class _Worker:
    """A Ray actor: the problem, scored with the main process's torch thread count."""

    def __init__(self, problem, threads: int):
        torch.set_num_threads(threads)
        self.problem = problem

    def score(self, chunk, generation):
        return _score(self.problem, chunk, generation)


class RayEvaluator:
    """Scores the chunks on ``workers`` Ray actors; ``restarts`` counts actors replaced after dying."""

    def __init__(self, problem, workers: int, *, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ImportError("--workers needs Ray: pip install 'neuroplastic[evolve]'") from None
        self.ray, self.problem, self.restarts = ray, problem, 0
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            address = address or os.environ.get("RAY_ADDRESS")
            options = {"address": address} if address else {"num_cpus": workers}
            ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
        elif address:
            raise ValueError(f"Ray is already running in this process; it cannot join {address} as well")
        try:
            self._actor = ray.remote(num_cpus=1, max_restarts=0)(_Worker)
            self._problem_ref = ray.put(problem)
            self._threads = torch.get_num_threads()
            self.actors = [self._new_actor() for _ in range(workers)]
        except BaseException:
            self.close()
            raise

    def _new_actor(self):
        return self._actor.remote(self._problem_ref, self._threads)

    def __call__(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
        ray = self.ray
        chunks = _chunks(population, self.problem.chunk)
        results: list[torch.Tensor | None] = [None] * len(chunks)
        waiting = list(range(len(chunks)))
        running = {}  # object ref → (chunk index, actor index)
        idle = list(range(len(self.actors)))
        retries = [0] * len(chunks)
        while waiting or running:
            while waiting and idle:
                index, worker = waiting.pop(0), idle.pop(0)
                running[self.actors[worker].score.remote(chunks[index], generation)] = (index, worker)
            [ref], _ = ray.wait(list(running), num_returns=1)
            index, worker = running.pop(ref)
            try:
                results[index] = ray.get(ref)
            except ray.exceptions.RayTaskError as error:  # the problem raised: no retry helps
                raise RuntimeError(f"{self.problem.name}: scoring failed on a Ray worker: {error.cause!r}") from None
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
                retries[index] += 1
                if retries[index] > RETRIES:
                    raise RuntimeError(f"{self.problem.name}: chunk {index} lost its Ray actor {retries[index]} times; "
                                       f"last: {type(error).__name__}") from None
                self.actors[worker] = self._new_actor()  # the lost actor's chunk is scored again
                self.restarts += 1
                waiting.insert(0, index)
            idle.append(worker)
        return torch.cat(results)

    def close(self) -> None:
        for actor in getattr(self, "actors", ()):
            self.ray.kill(actor)
        if self._owns_ray:
            self.ray.shutdown()


def make_evaluator(problem, workers: int = 0, *, address: str | None = None):
    """Serial for ``workers = 0``, else Ray with that many actors."""
    return SerialEvaluator(problem) if workers == 0 else RayEvaluator(problem, workers, address=address)
