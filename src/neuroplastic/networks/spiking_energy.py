"""An energy network whose layers talk in spikes: the spiking form of equilibrium propagation (after
EqSpike: Martin, Ernoult, Laydevant, Li, Querlioz, Petrisor & Grollier 2021, "EqSpike: spike-driven
equilibrium propagation for neuromorphic implementations", iScience 24:102222).

Each layer keeps the state ``s_l`` of :class:`~neuroplastic.networks.EnergyNetwork` and turns its
activity ``ρ(s_l) ∈ [0, 1]`` into spikes by integrate-and-fire: an accumulator ``a ← a + ρ(s_l)`` emits
a spike and drops by one when it reaches 1, so the layer fires ``ρ(s_l)`` spikes per step on average.
Neighbours see only those spikes, through a trace ``r ← r + (z − r)/τ`` (``τ`` steps): the relaxation
moves each layer by the gradient of the one energy with its neighbours' activities replaced by their
traces,

    s_l ← s_l − ε ∂E/∂s_l (s, activities = r with ρ(s_l) in place l),

and the energy whose parameter gradient gives the update is ``E`` with every activity a trace
(:meth:`activities`): ``∂E/∂W_l = −r_l r_{l−1}ᵀ`` (the batch mean), a product of the synapse's own
pre- and postsynaptic traces. Summed over the steps of the nudged phase, the update is the integral of
that product's change (:func:`~neuroplastic.training.eqprop.step_updates`, local in time as in EqSpike:
no synapse keeps the free phase's product). The clamped input stays a rate. Traces of spikes jitter by
about ``1/τ`` around the rates, and single states with them: the settling check watches each layer's
mean move (over its neurons and the batch), not the largest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuroplastic.networks.energy import EnergyNetwork, cost
from neuroplastic.validation import require_positive

__all__ = ["SpikingEnergyNetwork", "SpikingRelaxationState"]


class SpikingRelaxationState(NamedTuple):
    s: tuple  # each layer's state (B, n_l)
    accumulator: tuple  # integrate-and-fire accumulators
    trace: tuple  # spike traces: the activities neighbours see
    spikes: tuple  # spikes each neuron emitted so far (B, n_l): what synaptic events count


class SpikingEnergyNetwork(EnergyNetwork):
    """:class:`EnergyNetwork` (hard sigmoid) whose layers send spikes; ``trace_steps``: τ of the traces."""

    differentiable = False

    def __init__(self, sizes, *, trace_steps: float = 10.0, tolerance: float = 0.02, **options):
        if options.get("activation", "hard-sigmoid") != "hard-sigmoid":
            raise ValueError("a spiking energy network fires at the rate ρ(s) ∈ [0, 1]: the hard sigmoid")
        trace_steps = require_positive("trace_steps", trace_steps)
        if trace_steps < 1:
            raise ValueError(f"trace_steps must be at least 1 step (a shorter trace overshoots), got {trace_steps!r}")
        super().__init__(sizes, tolerance=tolerance, **options)
        self.trace_steps = trace_steps

    def init_state(self, shape, *, dtype=torch.float32, device=None) -> SpikingRelaxationState:
        rest = super().init_state(shape, dtype=dtype, device=device)
        return SpikingRelaxationState(rest, rest, rest, rest)

    def potentials(self, states) -> tuple:
        return tuple(states.s)

    def moved(self, after, before) -> float:
        """The largest of the layers' mean moves (single states jitter with the spikes)."""
        return max(float((a - b).abs().mean()) for a, b in zip(after.s, before.s))

    def activities(self, states) -> tuple:
        return tuple(states.trace)

    def phase(self, target, beta: float, differentiable: bool = False):
        if differentiable:
            raise ValueError("a spiking relaxation has no gradient to backpropagate (its spikes are events)")
        return SpikingPhase(self, target, beta)

    def fixed_point(self, x, *, target=None, beta: float = 0.0):
        raise ValueError("a spiking energy network has no closed-form fixed point")

    def relaxation_operations(self, before, after, steps: int) -> int:
        """Synaptic events from ``before`` to ``after`` (``before`` None: rest): each spike reaches the layer
        above and, above the first layer, the one below (the clamped input receives none); the constant
        input is read densely at every step, the settling check's included."""
        start = (0,) * len(self.weights) if before is None else [int(c.sum()) for c in before.spikes]
        fanout = [(self.sizes[l] if l > 0 else 0) + (self.sizes[l + 2] if l + 2 < len(self.sizes) else 0)
                  for l in range(len(self.weights))]
        events = sum((int(count.sum()) - begun) * out for count, begun, out in zip(after.spikes, start, fanout))
        return events + (steps + 1) * after.s[0].shape[0] * self.weights[0].numel()


@dataclass
class SpikingPhase:
    """One spiking relaxation as a model of the time loop (module docstring)."""

    network: SpikingEnergyNetwork
    target: torch.Tensor | None
    beta: float

    def init_state(self, shape, *, dtype=torch.float32, device=None):
        return self.network.init_state(shape, dtype=dtype, device=device)

    def state_shape(self, input_shape):
        return tuple(input_shape[:1])

    def step(self, state, x, dt, noise=None):
        net = self.network
        moved = []
        for l in range(len(state.s)):
            with torch.enable_grad():
                leaf = state.s[l].detach().requires_grad_()
                potentials = (*state.s[:l], leaf, *state.s[l + 1:])
                activities = (*state.trace[:l], net.rho(leaf), *state.trace[l + 1:])
                total = net.energy_of(potentials, activities, x) * x.shape[0]
                if self.beta and l == len(state.s) - 1:
                    total = total + self.beta * cost(leaf, self.target)
                (gradient,) = torch.autograd.grad(total, leaf)
            moved.append(torch.clamp(state.s[l] - dt * gradient, 0.0, 1.0))
        accumulated = [a + net.rho(s) for a, s in zip(state.accumulator, moved)]
        spikes = [(a >= 1.0).to(a.dtype) for a in accumulated]
        trace = [r + (z - r) / net.trace_steps for r, z in zip(state.trace, spikes)]
        counts = [c + z for c, z in zip(state.spikes, spikes)]
        new = SpikingRelaxationState(tuple(moved), tuple(a - z for a, z in zip(accumulated, spikes)), tuple(trace),
                                     tuple(counts))
        return new.s[-1], new
