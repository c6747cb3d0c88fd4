"""What evolution searches: a **problem** names its parameters and scores a population of them.

The contract (:class:`EvolutionProblem`): ``initial()`` gives the named parameters the search starts
from; ``fitness(population, generation)`` scores ``P ≤ chunk`` individuals stacked on a leading
dimension (higher is better), as a pure function of its arguments and the problem's seed — so a Ray
worker computes the same bits as the main process; ``evaluate(params)`` scores one individual on
held-out data (key ``"score"``: what the goal is stated in). ``bounds`` limit hyperparameters.

:class:`Genome` flattens the named parameters to the vector strategies search and back.
:class:`Classification` evolves the weights of a task's spiking network (the task's recipe with a
smaller hidden layer), every individual of a chunk in one batched forward pass over the stacked
parameters (:func:`~neuroplastic.networks.population.population_forward`: batched products, the
models folded into the batch of the fused recurrence), not a copy of the model per individual.
"""
from __future__ import annotations

import itertools
import math
from typing import Protocol

import torch
from torch.func import functional_call

from neuroplastic.networks.population import population_forward
from neuroplastic.tasks import load_task
from neuroplastic.training.losses import readout_cross_entropies
from neuroplastic.training.objectives import Classification as CrossEntropy
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.validation import require_count

__all__ = ["EvolutionProblem", "Genome", "Classification", "generation_generator"]


class EvolutionProblem(Protocol):
    name: str
    chunk: int  # the most individuals one fitness call scores (1: individuals cannot share a batch)
    bounds: dict[str, tuple[float, float]] | None

    def initial(self) -> dict[str, torch.Tensor]: ...

    def fitness(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor: ...

    def evaluate(self, params: dict[str, torch.Tensor]) -> dict[str, float]: ...


class Genome:
    """Named tensors ↔ one float64 vector of ``size`` numbers (names in the order of ``initial``)."""

    def __init__(self, initial: dict[str, torch.Tensor], bounds: dict[str, tuple[float, float]] | None = None):
        self.names = list(initial)
        self.shapes = [initial[name].shape for name in self.names]
        self.dtypes = [initial[name].dtype for name in self.names]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.size = sum(self.sizes)
        self.offsets = dict(zip(self.names, [0, *itertools.accumulate(self.sizes)]))  # where each name begins
        self.start = self.flatten(initial)
        unknown = sorted(set(bounds or ()) - set(self.names))
        if unknown:
            raise ValueError(f"bounds name parameters the problem lacks: {', '.join(unknown)}")
        self.bounds = None if not bounds else torch.cat([
            torch.tensor(bounds.get(name, (-math.inf, math.inf)), dtype=torch.float64).expand(size, 2)
            for name, size in zip(self.names, self.sizes)])

    def flatten(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([params[name].detach().reshape(-1).double() for name in self.names])

    def unflatten(self, vectors: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(P, size)`` → each name's ``(P, *shape)`` in its own dtype."""
        pieces = vectors.split(self.sizes, dim=-1)
        return {name: piece.reshape(tuple(vectors.shape[:-1]) + tuple(shape)).to(dtype)
                for name, piece, shape, dtype in zip(self.names, pieces, self.shapes, self.dtypes)}


def generation_generator(seed: int, generation: int) -> torch.Generator:
    """The draws of one generation of a problem seeded ``seed`` (its batch, its networks): the same for
    every individual of the generation and in every process, different from generation to generation."""
    return torch.Generator().manual_seed(seed * 1_000_003 + generation)


class Classification:
    """Evolve the weights of the spiking network of ``task``'s recipe (``hidden`` neurons): fitness is
    minus the readout's cross-entropy on ``batch`` training samples drawn anew each generation (the
    same for every individual of it); ``evaluate`` gives the test accuracy."""

    bounds = None

    def __init__(self, task: str = "digits", *, hidden: int = 32, batch: int = 256, chunk: int = 16,
                 seed: int = 0, task_options: dict | None = None):
        if task_options is not None and not isinstance(task_options, dict):
            raise ValueError(f"task_options must be a dict of the task's options, got {task_options!r}")
        self.task = load_task(task, seed=seed, **(task_options or {}))
        if self.task.kind != "classification":
            raise ValueError(f"task {task!r} is not a classification task")
        self.name, self.seed = task, seed
        self.batch, self.chunk = require_count("batch", batch), require_count("chunk", chunk)
        self.network = build_network(self.task, recipe_for(task, hidden=(require_count("hidden", hidden),)), seed=seed)
        self.network.requires_grad_(False)
        self.objective = CrossEntropy()

    def initial(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.network.named_parameters()}

    def _readout(self, params, inputs):
        return functional_call(self.network, params, (inputs,)).readout

    def fitness(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
        generator = generation_generator(self.seed, generation)
        train = self.task.train
        index = torch.randperm(len(train), generator=generator)[:self.batch]
        inputs, targets = train.inputs[index].transpose(0, 1), train.targets[index]
        with torch.inference_mode():
            readouts = population_forward(self.network, population, inputs, keep_spikes=False).readout
            losses = readout_cross_entropies(readouts, targets, self.objective.loss_steps)
        return -losses.double()

    def evaluate(self, params: dict[str, torch.Tensor]) -> dict[str, float]:
        test = self.task.test
        with torch.inference_mode():
            readout = self._readout(params, test.inputs.transpose(0, 1))
        accuracy = float((self.objective.decide(readout) == test.targets).double().mean())
        return {"score": accuracy, "test_accuracy": accuracy, "test_samples": len(test)}
