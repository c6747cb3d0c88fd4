"""Probes: objects that watch the time loop and return what they saw (Brian2's monitors).

Each probe has a ``name`` (its key in the run's results), ``observe(spikes, state)`` called once per
step after the neurons advanced, and ``result()``. Probes only record; they never change the run.
"""
from __future__ import annotations

import torch

from neuroplastic.sim.loop import detached

__all__ = ["Probe", "Record", "Trajectory", "SpikeRaster", "SpikeCount"]


class Probe:
    name: str = "probe"

    def observe(self, spikes: torch.Tensor, state) -> None:
        raise NotImplementedError

    def result(self):
        raise NotImplementedError


class Record(Probe):
    """Record one state field (e.g. ``"v"``) at every step: result has shape ``(T, *shape)``."""

    def __init__(self, field: str):
        self.field = field
        self.name = field
        self._values = []

    def observe(self, spikes, state):
        if self.field not in state._fields:
            raise ValueError(f"cannot record {self.field!r}: the state has fields {state._fields}")
        self._values.append(getattr(state, self.field).detach().clone())

    def result(self):
        return torch.stack(self._values)


class Trajectory(Probe):
    """Record the whole state (any tree of tensors, without its graph) at every step: a list."""

    name = "trajectory"

    def __init__(self):
        self._values = []

    def observe(self, spikes, state):
        self._values.append(detached(state))

    def result(self):
        return self._values


class SpikeRaster(Probe):
    """Record spikes at every step as booleans: result has shape ``(T, *shape)``."""

    name = "spikes"

    def __init__(self):
        self._values = []

    def observe(self, spikes, state):
        self._values.append(spikes.detach() > 0)

    def result(self):
        return torch.stack(self._values)


class SpikeCount(Probe):
    """Count spikes per neuron over the whole run."""

    name = "count"

    def __init__(self):
        self._count = None

    def observe(self, spikes, state):
        z = spikes.detach()
        self._count = z.clone() if self._count is None else self._count + z

    def result(self):
        return self._count
