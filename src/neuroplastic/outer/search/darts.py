"""DARTS for spiking cells: architecture weights on validation data, network weights on training data.

Liu, Simonyan & Yang 2019, "DARTS: Differentiable architecture search" (ICLR), written from the
paper. Every edge of the supernet (:class:`~.space.CellNetwork` without a cell) is the mixed operation

    ō(x) = Σ_o softmax(α)_o · o(x)

and the search alternates one step of the bilevel problem ``min_α L_val(w*(α), α)`` with
``w*(α) = argmin_w L_train(w, α)``: the weights ``w`` descend ``∇_w L_train(w, α)`` on a training
batch, the architecture ``α`` descends the hypergradient on a validation batch,

    ∇_α L_val(w′, α) − ξ ∇²_{α,w} L_train(w, α) ∇_{w′} L_val(w′, α),    w′ = w − ξ ∇_w L_train(w, α),

whose Hessian-vector product is the central difference (the paper's eq. 8)

    ∇²_{α,w} L_train(w, α) v  ≈  (∇_α L_train(w⁺, α) − ∇_α L_train(w⁻, α)) / 2ε,
    w± = w ± ε v,  v = ∇_{w′} L_val(w′, α),  ε = ε₀ / ‖v‖  (ε₀ = 0.01).

The central difference differentiates the α-gradient along ``w``, as the paper writes it; autograd
through the virtual step ``w′`` would differentiate the ``w``-gradient along ``α``. For a smooth loss
they are one Hessian; through spikes, whose surrogate gradient is no gradient of any function, the two
mixed second derivatives differ slightly (tests: equal where no spike lies between ``w`` and ``α``,
within about 10⁻³ of the hypergradient's size otherwise).

``ξ = 0`` is the first-order approximation (``∇_α L_val(w, α)`` alone). Losses are the objective's
(:class:`~neuroplastic.training.problem.Problem`), the network called with the weights and α passed
functionally (``torch.func.functional_call``). After the search the cell keeps, on every edge, the
operation of the largest α (:func:`discretize`).

Defaults differ from the paper's image setting where short searches need it: the weights train with
AdamW at the recipe's rate (``ξ`` defaults to it), α with Adam at ``arch_lr = 3·10⁻³`` (paper 3·10⁻⁴;
β = (0.5, 0.999), weight decay 10⁻³ as in the paper).
"""
from __future__ import annotations

import torch

from neuroplastic.outer.search.random import draw_batch
from neuroplastic.outer.search.space import Cell, CellNetwork, SearchSpace
from neuroplastic.tasks import Task
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import Problem
from neuroplastic.training.recipes import Recipe
from neuroplastic.validation import require_non_negative, require_positive

__all__ = ["Darts", "architecture_gradient", "discretize", "split_parameters"]


def split_parameters(network: CellNetwork) -> tuple[dict, dict]:
    """The network's weights ``w`` and architecture weights ``α``, each a dict by parameter name."""
    named = dict(network.named_parameters())
    alphas = {n: p for n, p in named.items() if n.startswith("alphas.")}
    return {n: p for n, p in named.items() if n not in alphas}, alphas


def _grads(loss, tensors: dict) -> dict:
    found = torch.autograd.grad(loss, list(tensors.values()), allow_unused=True)
    return {n: torch.zeros_like(t) if g is None else g for (n, t), g in zip(tensors.items(), found)}


def architecture_gradient(loss_fn, weights: dict, alphas: dict, train, validation, *, xi: float,
                          epsilon: float = 0.01) -> dict:
    """DARTS' hypergradient (module docstring) by name of ``alphas``; ``loss_fn(params, inputs, targets)``
    as :meth:`Problem.loss_fn`, ``train`` and ``validation`` ``(inputs, targets)`` batches. ``xi = 0``:
    first order."""
    w = {n: p.detach() for n, p in weights.items()}
    if xi == 0:
        return _grads(loss_fn({**w, **alphas}, *validation), alphas)
    trainable = {n: p.detach().requires_grad_() for n, p in w.items()}  # w itself stays out of every graph
    step = _grads(loss_fn({**trainable, **{n: a.detach() for n, a in alphas.items()}}, *train), trainable)
    w_prime = {n: (w[n] - xi * step[n]).requires_grad_() for n in w}
    both = _grads(loss_fn({**w_prime, **alphas}, *validation), {**alphas, **w_prime})
    direction = {n: both[n] for n in w_prime}
    scale = epsilon / torch.sqrt(sum((v * v).sum() for v in direction.values()))

    def alpha_gradient(sign):
        shifted = {n: w[n] + sign * scale * direction[n] for n in w}
        return _grads(loss_fn({**shifted, **alphas}, *train), alphas)

    plus, minus = alpha_gradient(1.0), alpha_gradient(-1.0)
    return {n: both[n] - xi * (plus[n] - minus[n]) / (2 * scale) for n in alphas}


def discretize(network: CellNetwork) -> Cell:
    """The cell of the supernet's strongest operations: ``argmax_o α_o`` on every edge."""
    if network.cell is not None:
        raise ValueError("discretize takes a supernet (a CellNetwork built without a cell)")
    space = network.space
    return Cell(space, tuple(space.candidates(edge)[int(alpha.argmax())]
                             for edge, alpha in zip(space.edges, network.alphas)))


class Darts:
    """A DARTS search over ``space`` on ``task`` (with a validation split): each :meth:`advance` is one
    architecture step on a validation batch, then one weight step on a training batch."""

    name = "darts"

    def __init__(self, task: Task, space: SearchSpace, recipe: Recipe, *, seed: int = 0, second_order: bool = False,
                 xi: float | None = None, arch_lr: float = 3e-3, epsilon: float = 0.01, device=None):
        if task.validation is None:
            raise ValueError("DARTS trains the architecture on validation data: give a task with_validation")
        self.task, self.recipe, self.device = task, recipe, device
        self.network = CellNetwork(space, task.n_inputs, task.n_outputs, recipe, dt=task.dt, seed=seed).to(device)
        self.problem = Problem(self.network, objective_for(task), task.dt, recipe.rate_target_hz, recipe.rate_weight)
        self.weights, self.alphas = split_parameters(self.network)
        self.xi = require_non_negative("xi", recipe.lr if xi is None else xi) if second_order else 0.0
        self.epsilon = require_positive("epsilon", epsilon)
        self.weight_optimizer = torch.optim.AdamW(self.weights.values(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        self.arch_optimizer = torch.optim.Adam(self.alphas.values(), lr=require_positive("arch_lr", arch_lr),
                                               betas=(0.5, 0.999), weight_decay=1e-3)
        self.generator = torch.Generator().manual_seed(seed + 1)

    def advance(self) -> dict:
        train = draw_batch(self.task, "train", self.recipe.batch_size, self.generator, self.device)
        validation = draw_batch(self.task, "validation", self.recipe.batch_size, self.generator, self.device)
        gradient = architecture_gradient(self.problem.loss_fn, self.weights, self.alphas, train, validation,
                                         xi=self.xi, epsilon=self.epsilon)
        self.arch_optimizer.zero_grad()
        for name, alpha in self.alphas.items():
            alpha.grad = gradient[name]
        self.arch_optimizer.step()
        loss = self.problem.loss(self.network(train[0]), train[1])
        self.weight_optimizer.zero_grad()
        loss.backward()
        for alpha in self.alphas.values():  # α moves on validation data only
            alpha.grad = None
        self.weight_optimizer.step()
        return {"train_loss": float(loss.detach())}

    def pick(self) -> Cell:
        return discretize(self.network)

    def details(self) -> dict:
        """Each edge's ``softmax(α)`` by operation (for the report)."""
        return {"mixing": [dict(zip(self.network.space.candidates(e), map(float, torch.softmax(a.detach(), 0))))
                           for e, a in zip(self.network.space.edges, self.network.alphas)]}

    def state_dict(self) -> dict:
        return {"network": self.network.state_dict(), "weight_optimizer": self.weight_optimizer.state_dict(),
                "arch_optimizer": self.arch_optimizer.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.network.load_state_dict(state["network"])
        self.weight_optimizer.load_state_dict(state["weight_optimizer"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.generator.set_state(state["generator"])
