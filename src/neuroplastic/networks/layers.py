"""Layers of spiking neurons and a leaky-integrator readout, over one step or a whole sequence.

A :class:`SpikingLayer` is a population of any neuron model fed by dense synapses
``I_t = W x_t`` and, if recurrent, by its own spikes of the previous step ``+ W_rec z_{t−1}``
(no self-connections). ``step`` is the readable truth; ``forward`` runs a whole time-first sequence
and is tested equal to it: the input currents of all steps come from one matrix product, and a
feed-forward layer of plain LIF neurons (``ALIF`` with ``beta = 0``, no refractoriness, reset by
subtraction) runs its recurrence in the fused kernel of :mod:`neuroplastic.fused`, fed by
event-driven synapses where its input is spikes, as one operation
(:func:`~neuroplastic.fused.linear_lif_sequence`).

:class:`LeakyReadout` is e-prop's output (Bellec et al. 2020): ``y_t = κ y_{t−1} + W_out z_t + b``,
``κ = exp(−dt/τ_out)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.modules import module as module_hooks

from neuroplastic.fused import LeakyState, lif_sequence, linear_lif_sequence
from neuroplastic.neurons import ALIF, NeuronModel, ResetBySubtraction
from neuroplastic.neurons.alif import ALIFState
from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.spikes import Rescaled
from neuroplastic.synapses import Dense, Recurrent
from neuroplastic.validation import require_positive

__all__ = ["SpikingLayer", "LayerState", "LeakyReadout"]


class LayerState(NamedTuple):
    neuron: tuple  # the neuron model's state
    z: torch.Tensor  # spikes of the previous step (B, N)


class SpikingLayer(nn.Module):
    """``n_in → n_out`` spiking neurons of model ``neuron`` advancing by ``dt`` ms per step."""

    def __init__(self, n_in: int, n_out: int, neuron: NeuronModel, *, dt: float = 1.0,
                 recurrent: bool = False, scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(neuron, NeuronModel):
            raise ValueError(f"neuron must be a neuroplastic neuron model, got {neuron!r}")
        self.neuron = neuron
        self.dt = require_positive("dt", dt)
        self.size = n_out
        self.synapses = Dense(n_in, n_out, scale=scale, generator=generator)
        self.recurrent = Recurrent(n_out, scale=scale, generator=generator) if recurrent else None

    @property
    def fused(self) -> bool:
        """Whether ``forward`` runs the fused LIF kernel."""
        n = self.neuron
        return (self.recurrent is None and isinstance(n, ALIF) and n.beta == 0 and n.t_ref == 0
                and isinstance(n.reset, ResetBySubtraction))

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> LayerState:
        shape = (batch, self.size)
        return LayerState(self.neuron.init_state(shape, dtype=dtype, device=device),
                          torch.zeros(shape, dtype=dtype, device=device))

    def step(self, state: LayerState, x: torch.Tensor) -> tuple[torch.Tensor, LayerState]:
        """One step: ``x`` is ``(B, n_in)``."""
        current = self.synapses(x)
        if self.recurrent is not None:
            current = current + self.recurrent(state.z)
        z, neuron_state = self.neuron.step(state.neuron, current, self.dt)
        return z, LayerState(neuron_state, z)

    def forward(self, x: torch.Tensor, state: LayerState | None = None):
        """A whole sequence: ``x`` is ``(T, B, n_in)``; returns spikes ``(T, B, n_out)`` and the state."""
        if state is None:
            state = self.init_state(x.shape[1], dtype=x.dtype, device=x.device)
        if self.fused:
            return self._forward_fused(x, state)
        currents = self.synapses(x)
        w_rec = None if self.recurrent is None else self.recurrent.weight  # read once per sequence
        neuron_state, z, outputs = state.neuron, state.z, []
        for current in currents.unbind(0):
            if w_rec is not None:
                current = current + z @ w_rec.T
            z, neuron_state = self.neuron.step(neuron_state, current, self.dt)
            outputs.append(z)
        return torch.stack(outputs), LayerState(neuron_state, z)

    def _forward_fused(self, x, state):
        n = self.neuron
        options = dict(beta=math.exp(-self.dt / n.tau_m), threshold=n.v_th, surrogate=Rescaled(n.surrogate, n.v_th),
                       detach_reset=n.reset.detach, state=LeakyState(state.neuron.v, state.neuron.z))
        if _plain(self.synapses):  # once differentiable anyway, so the synapses may be fused in
            spikes, final = linear_lif_sequence(x, self.synapses.weight, self.synapses.bias, **options)
        else:
            spikes, final = lif_sequence(self.synapses(x), **options)
        # beta = 0: the adaptation a has no effect, and is not tracked on this path.
        neuron_state = ALIFState(final.v, state.neuron.a, final.z, state.neuron.refractory)
        return spikes, LayerState(neuron_state, final.z)


def _plain(synapses: nn.Module) -> bool:
    """A :class:`Dense` whose call is just its product: no subclass, no forward hooks of its own
    (pruning, spectral norm and the like install them) or global ones."""
    return (type(synapses) is Dense and not synapses._forward_hooks and not synapses._forward_pre_hooks
            and not module_hooks._global_forward_hooks and not module_hooks._global_forward_pre_hooks)


class LeakyReadout(nn.Module):
    """Leaky-integrator output neurons: ``y_t = κ y_{t−1} + W z_t + b`` with ``κ = e^{−dt/τ_out}``."""

    def __init__(self, n_in: int, n_out: int, *, tau_out: float = 20.0, dt: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.decay = math.exp(-require_positive("dt", dt) / require_positive("tau_out", tau_out))
        self.synapses = Dense(n_in, n_out, bias=True, generator=generator)
        self.size = n_out

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.size, dtype=dtype, device=device)

    def step(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decay * y + self.synapses(z)

    def forward(self, z: torch.Tensor, y0: torch.Tensor | None = None) -> torch.Tensor:
        """Readout ``(T, B, n_out)`` of spikes ``(T, B, n_in)``."""
        return leaky_integrate(self.synapses(z), self.decay, y0)
