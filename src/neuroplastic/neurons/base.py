"""What every neuron model shares: the step contract, resets, refractoriness and validation.

A model is a frozen dataclass of parameters (time in ms, voltage in mV, ``dt`` passed explicitly)
with a ``NamedTuple`` state class and a pure step::

    state = model.init_state(shape)
    spikes, state = model.step(state, current, dt, noise=None)

``noise`` is a standard-normal tensor of the state's shape, supplied by the caller (the time loop
draws it), so the step stays a pure function and frozen noise is easy. Models without a noise term
ignore it. Nothing is hidden in buffers: everything that evolves is in the state.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuroplastic.spikes import spike
from neuroplastic.validation import (
    require_finite,
    require_non_negative,
    require_positive,
)

__all__ = [
    "NeuronModel",
    "ResetTo",
    "ResetBySubtraction",
    "refractory_mask",
    "restart_refractory",
    "fire_and_reset",
    "check_dt",
]


class NeuronModel:
    """Abstract neuron model. Subclasses are frozen dataclasses and define ``State``, ``step``.

    Class attributes: ``State`` (a NamedTuple type), ``voltage`` (the name of the membrane-potential
    field, for plots and probes), ``default_current`` (a step current that makes the model fire,
    in ``current_unit``) and ``default_dt`` (ms), for the command line.
    """

    State: type = NamedTuple
    voltage: str = "v"
    default_current: float = 1.0
    current_unit: str = "a.u."
    default_dt: float = 0.1

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.startswith(("tau", "t_ref")) and isinstance(value, (int, float)):
                checker = require_non_negative if field.name.startswith("t_ref") else require_positive
                checker(f"{type(self).__name__}.{field.name}", value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                require_finite(f"{type(self).__name__}.{field.name}", value)

    def initial_values(self) -> dict:
        """Resting value of each state field (scalars)."""
        raise NotImplementedError

    def init_state(self, shape=(), *, dtype=torch.float32, device=None):
        """The model at rest, every field a tensor of ``shape``."""
        values = self.initial_values()
        return self.State(
            **{name: torch.full(tuple(shape), float(values[name]), dtype=dtype, device=device)
               for name in self.State._fields}
        )

    def step(self, state, current, dt: float, noise=None):
        raise NotImplementedError

    def state_shape(self, input_shape) -> tuple:
        """The state's shape for one step's input of ``input_shape`` (the same, unless the input
        carries channels)."""
        return tuple(input_shape)

    def drive(self, current: torch.Tensor) -> torch.Tensor:
        """The model's input for an injected current of shape ``(T, *shape)`` (identity by default;
        models whose input carries more channels override this)."""
        return current

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ResetTo:
    """After a spike the voltage is set to ``value`` (mV). With ``detach``, no gradient flows
    through the reset."""

    value: float
    detach: bool = False

    def __post_init__(self):
        require_finite("reset value", self.value)

    def __call__(self, v, spikes, height):
        z = spikes.detach() if self.detach else spikes
        return v - z * (v - self.value)


@dataclass(frozen=True)
class ResetBySubtraction:
    """After a spike the threshold height above rest is subtracted: ``v ← v − (ϑ − E_L)``. With
    ``detach``, no gradient flows through the reset."""

    detach: bool = False

    def __call__(self, v, spikes, height):
        z = spikes.detach() if self.detach else spikes
        return v - z * height


def check_dt(dt) -> float:
    return require_positive("dt", dt)


def refractory_mask(remaining: torch.Tensor, dt: float) -> torch.Tensor:
    """True where the neuron is still refractory (``remaining`` ms, counted down by ``dt``)."""
    return remaining > dt / 2


def restart_refractory(remaining, spikes, t_ref: float, dt: float):
    """Count the refractory time down by ``dt``; a spike starts it again at ``t_ref``."""
    return torch.where(spikes > 0, torch.full_like(remaining, t_ref), (remaining - dt).clamp(min=0.0))


def fire_and_reset(model, v_before, v, remaining, dt: float):
    """The integrate-and-fire event shared by the LIF family (``model`` has ``v_th``, ``e_l``,
    ``t_ref``, ``reset``, ``surrogate``): while refractory ``V`` keeps its value ``v_before``;
    otherwise it spikes at ``V ≥ ϑ``, is reset, and the refractory count restarts.
    Returns ``(spikes, v, remaining)``."""
    held = refractory_mask(remaining, dt)
    v = torch.where(held, v_before, v)
    spikes = spike(v - model.v_th, model.surrogate) * (~held)
    v = model.reset(v, spikes, model.v_th - model.e_l)
    return spikes, v, restart_refractory(remaining, spikes, model.t_ref, dt)
