"""Random search, the baseline every search must beat (Li & Talwalkar 2019, "Random search and
reproducibility for neural architecture search", UAI): cells drawn uniformly from the space, each
trained briefly on the training split and scored by its validation accuracy; the best one wins.

Also what the other searches share with it: batches drawn at random (:func:`draw_batch`, so a
resumed search draws what an uninterrupted one would), a cell's brief training with the library's
BPTT learner (:func:`train_cell`: :class:`~neuroplastic.training.problem.GradientMethod`'s learner,
AdamW at the recipe's rate) and a split's accuracy (:func:`accuracy`).
"""
from __future__ import annotations

import math

import torch

from neuroplastic.outer.search.space import Cell, CellNetwork, SearchSpace
from neuroplastic.rules import make_rule
from neuroplastic.tasks import Task
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import GradientMethod, Problem
from neuroplastic.training.recipes import Recipe
from neuroplastic.validation import require_count

__all__ = ["RandomSearch", "SampledSearch", "draw_batch", "train_cell", "accuracy", "build_cell"]


def draw_batch(task: Task, split: str, batch_size: int, generator: torch.Generator, device=None):
    """``batch_size`` samples of ``split`` drawn uniformly with replacement: ``(inputs (T, B, n), targets)``."""
    samples = task.splits[split]
    index = torch.randint(len(samples), (batch_size,), generator=generator)
    inputs, targets = next(task.batches(samples.subset(index), batch_size, shuffle=False))
    return inputs.to(device), targets.to(device)


def build_cell(task: Task, cell: Cell, recipe: Recipe, seed: int, device=None) -> CellNetwork:
    return CellNetwork(cell.space, task.n_inputs, task.n_outputs, recipe, dt=task.dt, cell=cell, seed=seed).to(device)


def train_cell(network: CellNetwork, task: Task, recipe: Recipe, batches: int, generator: torch.Generator,
               device=None) -> float:
    """``batches`` BPTT steps on random training batches; the mean training loss."""
    problem = Problem(network, objective_for(task), task.dt, recipe.rate_target_hz, recipe.rate_weight)
    learner = GradientMethod(make_rule("bptt")).learner(problem)
    optimizer = torch.optim.AdamW(learner.params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    network.train()
    losses = [learner.train_batch(*draw_batch(task, "train", recipe.batch_size, generator, device), optimizer)
              for _ in range(require_count("batches", batches))]
    return sum(losses) / len(losses)


@torch.no_grad()
def accuracy(network: CellNetwork, task: Task, split: str, device=None) -> float:
    """The objective's first metric (accuracy for classification) over ``split``, a mean over samples."""
    network.eval()
    evaluate, total = objective_for(task).evaluate, 0.0
    for inputs, targets in task.batches(split, 256, shuffle=False):
        metrics = evaluate(network(inputs.to(device)).readout, targets.to(device))
        total += next(iter(metrics.values())) * len(targets)
    return total / len(task.splits[split])


class SampledSearch:
    """A search by cells drawn uniformly from ``space``: each :meth:`advance` draws one, builds it with
    fresh weights and scores it (:meth:`score`, higher is better); :meth:`pick` is the best so far."""

    name = "sampled"
    score_name = "score"

    def __init__(self, task: Task, space: SearchSpace, recipe: Recipe, *, seed: int, device=None):
        self.task, self.space, self.recipe, self.device = task, space, recipe, device
        self.generator = torch.Generator().manual_seed(seed)
        self.scored: list[tuple[Cell, float]] = []

    def score(self, network: CellNetwork) -> float:
        raise NotImplementedError

    def advance(self) -> dict:
        cell = self.space.sample(self.generator)
        seed = int(torch.randint(2**31, (), generator=self.generator))
        score = self.score(build_cell(self.task, cell, self.recipe, seed, self.device))
        self.scored.append((cell, score))
        return {"cell": str(cell), self.score_name: score if math.isfinite(score) else None}

    def pick(self) -> Cell:
        if not self.scored:
            raise ValueError("no cell was scored within the budget: give the search more time")
        return max(self.scored, key=lambda entry: entry[1])[0]

    def details(self) -> dict:
        return {"cells_scored": len(self.scored)}

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "scored": [(c.to_json(), s) for c, s in self.scored]}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.scored = [(Cell.from_json(c), s) for c, s in state["scored"]]


class RandomSearch(SampledSearch):
    """Random search: each cell drawn is trained for ``batches`` batches and scored by its validation
    accuracy."""

    name = "random"
    score_name = "validation_accuracy"

    def __init__(self, task: Task, space: SearchSpace, recipe: Recipe, *, seed: int = 0, batches: int = 20,
                 device=None):
        if task.validation is None:
            raise ValueError("random search scores cells on validation data: give a task with_validation")
        super().__init__(task, space, recipe, seed=seed + 2, device=device)
        self.batches = require_count("batches", batches)

    def score(self, network: CellNetwork) -> float:
        train_cell(network, self.task, self.recipe, self.batches, self.generator, self.device)
        return accuracy(network, self.task, "validation", self.device)
