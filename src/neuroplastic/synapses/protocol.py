"""The synapse protocol: what a layer asks of its synapses, with room for state of their own.

A synapse maps presynaptic activity ``x`` (spikes, graded spikes, rates) to postsynaptic currents.
Some have state that evolves with time (delays keep a ring buffer of recent inputs, fast Hebbian
weights a trace, a mixed search operation its candidates' states), so the layer talks to every
synapse through four methods and keeps the state in its :class:`~neuroplastic.networks.LayerState`::

    state = synapses.init_state(batch, dtype=..., device=...)
    current, state = synapses.step(state, x)            # x (B, n_in) → (B, n_out)
    currents, state = synapses.sequence(state, x)       # x (T, B, n_in) → (T, B, n_out), equal to T steps
    pre = synapses.presynaptic(state, x)                # what reaches the weights at this step

``presynaptic`` (called with the state *before* the step) is what plasticity and online rules see
as presynaptic activity, ``StepInfo.pre``: for a synapse without state it is ``x`` itself; a synapse
that delays or filters its input before the weights returns the delayed or filtered activity — the
spikes that arrive at the synapse at this step, not the ones the presynaptic neurons emit.

:class:`Stateless` implements the protocol for synapses that are a map of the current input only
(``Dense``, ``Recurrent``, the Dale layers, conductance synapses): their state is ``()`` and
``sequence`` applies the map to all steps at once (one matrix product).
"""
from __future__ import annotations

import torch

__all__ = ["Stateless"]


class Stateless:
    """The synapse protocol for a map ``current = self(x)`` with no state of its own."""

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> tuple:
        return ()

    def step(self, state: tuple, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        return self(x), state

    def sequence(self, state: tuple, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        return self(x), state

    def presynaptic(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        return x
