"""Layered energy-based networks that relax to a fixed point: the substrate of equilibrium propagation
(Scellier & Bengio 2017, "Equilibrium propagation: bridging the gap between energy-based models and
backpropagation", Frontiers in Computational Neuroscience 11:24).

States ``s_1 … s_L`` of layers above a clamped input ``s_0 = x``, with the Hopfield-like energy

    E(s) = ½ Σ_l ‖s_l‖² − Σ_l ρ(s_l)ᵀ W_l ρ(s_{l−1}) − Σ_l b_lᵀ ρ(s_l),

a cost ``C = ½ ‖s_L − y‖²`` at the output layer and the total energy ``F = E + β C`` (``β = 0``: the
free phase; ``β ≠ 0``: nudged towards the target ``y``). A relaxation is gradient descent on ``F``,

    s ← s − ε ∂F/∂s,

one step per step of the one time loop (:func:`~neuroplastic.sim.run`, ``dt = ε``) over the constant
input, its gradient taken from the energy by autograd (``E`` is written once). ``ρ``: the hard sigmoid
``clamp(s, 0, 1)`` of the paper, whose states are kept in ``[0, 1]`` (projected descent, as in the
paper's experiments: outside, ``ρ' = 0`` and plain descent circles around the box's edge), or the identity, which makes ``E`` quadratic and the fixed point the
solution of a linear system (:meth:`EnergyNetwork.fixed_point`, the tests' closed form). Energies are
means over the batch, so parameter gradients of ``E`` are batch means. A relaxation that has not
settled (its last step still moves a state by more than ``tolerance``) raises :class:`NotSettled`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from neuroplastic.networks.network import NetworkOutput, NetworkState
from neuroplastic.sim.loop import detached, run
from neuroplastic.validation import lookup, require_count, require_positive

__all__ = ["EnergyNetwork", "Phase", "NotSettled", "ACTIVATIONS", "cost"]

ACTIVATIONS = {"hard-sigmoid": lambda s: torch.clamp(s, 0.0, 1.0), "linear": lambda s: s}
BOUNDED = {"hard-sigmoid"}  # activations whose states the relaxation keeps in [0, 1]


def cost(output, target) -> torch.Tensor:
    """``C = ½ ‖s_L − y‖²``, summed over the batch: what the nudged phase adds ``β`` times."""
    return 0.5 * ((output - target) ** 2).sum()


class NotSettled(ValueError):
    """A relaxation still moving after its step budget."""


class EnergyNetwork(nn.Module):
    """Layers ``sizes = (n_in, n_1, …, n_L)`` with weights ``W_l`` ``(n_l, n_{l−1})`` drawn Glorot-uniform
    times ``scale`` from ``generator`` (at the default 0.5 the energy is convex inside the box and the
    relaxation settles geometrically; full Glorot weights make it circle) and biases ``b_l = 0``;
    ``activation``: a key of ``ACTIVATIONS``; ``step_size``: ε; ``free_steps`` / ``nudged_steps``: the
    relaxations' budgets; ``tolerance``: the largest move of the last step of a settled relaxation."""

    output_name = "readout"
    differentiable = True  # whether a relaxation can keep its graph (a spiking one cannot)

    def __init__(self, sizes, *, activation: str = "hard-sigmoid", step_size: float = 0.5, free_steps: int = 100,
                 nudged_steps: int = 30, tolerance: float = 0.05, scale: float = 0.5,
                 generator: torch.Generator | None = None):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"an energy network needs an input and at least one layer, got sizes {sizes}")
        self.sizes = tuple(require_count("layer size", n) for n in sizes)
        self.activation = activation
        self.rho = lookup("activation", activation, ACTIVATIONS)
        self.step_size = require_positive("step_size", step_size)
        self.free_steps = require_count("free_steps", free_steps)
        self.nudged_steps = require_count("nudged_steps", nudged_steps)
        self.tolerance = require_positive("tolerance", tolerance)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = require_positive("scale", scale) * math.sqrt(6.0 / (n_in + n_out))
            self.weights.append(nn.Parameter((2 * torch.rand(n_out, n_in, generator=generator) - 1) * bound))
            self.biases.append(nn.Parameter(torch.zeros(n_out)))

    def energy(self, states, x) -> torch.Tensor:
        """``E(s)`` of the batch, a mean over its samples; ``states``: one ``(B, n_l)`` per layer."""
        return self.energy_of(self.potentials(states), self.activities(states), x)

    def energy_of(self, potentials, activities, x) -> torch.Tensor:
        """The energy with each layer's state ``s_l`` (``potentials``) and its activity ``ρ(s_l)``
        (``activities``) given apart: the one formula of ``E`` (a spiking network's activities are its
        spike traces)."""
        below = self.rho(x)
        total = 0.0
        for s, above, weight, bias in zip(potentials, activities, self.weights, self.biases):
            total = total + 0.5 * (s * s).sum() - (above * (below @ weight.t())).sum() - (above @ bias).sum()
            below = above
        return total / x.shape[0]

    def potentials(self, states) -> tuple:
        """Each layer's state ``s_l`` (what the relaxation moves and the settling check watches)."""
        return tuple(states)

    def activities(self, states) -> tuple:
        """What each layer sends its neighbours: ``ρ(s_l)``."""
        return tuple(self.rho(s) for s in states)

    def phase(self, target, beta: float, differentiable: bool = False):
        """The model of the time loop for one relaxation."""
        return Phase(self, target, beta, differentiable)

    def init_state(self, shape, *, dtype=torch.float32, device=None) -> tuple:
        """All layers at 0 for a batch of ``shape`` ``(B,)``."""
        return tuple(torch.zeros(*shape, n, dtype=dtype, device=device) for n in self.sizes[1:])

    def relax(self, x, *, target=None, beta: float = 0.0, state=None, steps: int | None = None,
              differentiable: bool = False) -> tuple:
        """The states after relaxing on input ``x`` ``(B, n_in)`` from ``state`` (default: rest), nudged
        towards ``target`` ``(B, n_L)`` with strength ``beta``; ``steps`` defaults to the phase's budget.
        ``differentiable``: keep the graph of every step (backpropagation through the relaxation, the
        reference EqProp is compared with); else the states carry none. Raises :class:`NotSettled` if the
        last step moved a state by more than ``tolerance``."""
        self._check_input(x)
        if beta != 0 and (not isinstance(target, torch.Tensor) or target.shape != (x.shape[0], self.sizes[-1])):
            shape = tuple(target.shape) if isinstance(target, torch.Tensor) else target
            raise ValueError(f"a nudged relaxation needs a target of shape {(x.shape[0], self.sizes[-1])}, got {shape}")
        phase = self.phase(target, float(beta), differentiable)
        steps = (self.free_steps if beta == 0 else self.nudged_steps) if steps is None else require_count("steps", steps)
        result = run(phase, x.expand(steps, *x.shape), self.step_size, state=state, keep_spikes=False)
        settled = detached(result.state)  # the check step needs no graph
        _, after = self.phase(target, float(beta)).step(settled, x, self.step_size)
        moved = self.moved(after, settled)
        if not moved <= self.tolerance:
            raise NotSettled(f"the {'free' if beta == 0 else 'nudged'} relaxation did not settle in {steps} steps: "
                             f"its last step moved a state by {moved:.3g} > tolerance {self.tolerance:g} "
                             "(more steps, a smaller step_size, or smaller weights)")
        return result.state

    def moved(self, after, before) -> float:
        """How far one step moved the states: the largest move of any state."""
        return max(float((a - b).abs().max()) for a, b in zip(self.potentials(after), self.potentials(before)))

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.sizes[0] or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"the clamped input must be a float tensor (B, {self.sizes[0]}), got {shape}")

    def fixed_point(self, x, *, target=None, beta: float = 0.0) -> tuple:
        """The fixed point in closed form, for the linear activation: ``∂F/∂s = 0`` is ``A s = c`` with
        the symmetric block-tridiagonal ``A`` (``I`` on the diagonal, ``+ β I`` at the output, ``−W_l``
        below it and ``−W_lᵀ`` above) and ``c_l = b_l (+ W_1 x at l = 1, + β y at l = L)``, solved by
        ``torch.linalg.solve`` — differentiable in the parameters: the tests' reference."""
        if self.activation != "linear":
            raise ValueError("the fixed point has a closed form for the linear activation only")
        self._check_input(x)
        sizes, layers = self.sizes[1:], len(self.weights)
        options = dict(dtype=x.dtype, device=x.device)

        def block(row, column):
            if row == column:
                return torch.eye(sizes[row], **options) * (1.0 + (beta if row == layers - 1 else 0.0))
            if column == row - 1:
                return -self.weights[row]
            if column == row + 1:
                return -self.weights[column].t()
            return torch.zeros(sizes[row], sizes[column], **options)
        matrix = torch.cat([torch.cat([block(r, c) for c in range(layers)], 1) for r in range(layers)])
        drive = [bias.expand(x.shape[0], -1) for bias in self.biases]
        drive[0] = drive[0] + x @ self.weights[0].t()
        if beta:
            drive[-1] = drive[-1] + beta * target
        solution = torch.linalg.solve(matrix, torch.cat(drive, 1).t()).t()
        return tuple(solution.split(list(sizes), 1))

    def forward(self, inputs: torch.Tensor, state=None, noise=None) -> NetworkOutput:
        """The free phase's output layer for a rate-coded sequence ``(T, B, n_in)`` (its mean over time is
        the clamped input), as a readout ``(T, B, n_L)`` constant in time (what the trainer evaluates).
        Where gradients are being recorded the relaxation keeps its graph: a gradient method (``bptt``)
        then trains the network by backpropagation through its relaxation."""
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise ValueError(f"network input must be (T, B, n_inputs), got shape {tuple(getattr(inputs, 'shape', ()))}")
        states = self.relax(inputs.mean(0), state=state, differentiable=self.differentiable and torch.is_grad_enabled())
        output = self.potentials(states)[-1]
        readout = output.expand(inputs.shape[0], *output.shape)
        return NetworkOutput(readout, (), NetworkState((), output), ())

    def synaptic_operations(self, batch: int, steps: int) -> int:
        """Dense multiply-adds of ``steps`` relaxation steps (the states are rates, not events): per sample
        and step every weight is read bottom-up, and above the clamped input top-down as well."""
        return steps * batch * sum(weight.numel() * (1 if l == 0 else 2) for l, weight in enumerate(self.weights))

    def relaxation_operations(self, before, after, steps: int) -> int:
        """:meth:`synaptic_operations` of a relaxation of ``steps`` from ``before`` to ``after`` (states of a
        batch), with its settling check."""
        return self.synaptic_operations(self.potentials(after)[0].shape[0], steps + 1)

    def pass_operations(self, batch: int) -> int:
        """:meth:`synaptic_operations` of one forward pass: the free relaxation and its settling check."""
        return self.synaptic_operations(batch, self.free_steps + 1)


@dataclass
class Phase:
    """One relaxation as a model of the time loop: ``step`` is ``s ← s − ε ∂F/∂s`` on the input (with
    the graph of that step where ``differentiable``)."""

    network: EnergyNetwork
    target: torch.Tensor | None
    beta: float
    differentiable: bool = False

    def init_state(self, shape, *, dtype=torch.float32, device=None):
        return self.network.init_state(shape, dtype=dtype, device=device)

    def state_shape(self, input_shape):
        return tuple(input_shape[:1])

    def total_energy(self, states, x):
        """``F = E + β C``, a mean over the batch."""
        total = self.network.energy(states, x)
        if self.beta:
            total = total + self.beta * cost(states[-1], self.target) / x.shape[0]
        return total

    def step(self, state, x, dt, noise=None):
        keep = self.differentiable
        with torch.enable_grad():
            leaves = tuple(s if keep and s.requires_grad else s.detach().requires_grad_() for s in state)
            grads = torch.autograd.grad(self.total_energy(leaves, x) * x.shape[0], leaves, create_graph=keep)
        new = tuple((s if keep else s.detach()) - dt * g for s, g in zip(leaves, grads))
        if self.network.activation in BOUNDED:
            new = tuple(torch.clamp(s, 0.0, 1.0) for s in new)
        return new[-1], new
