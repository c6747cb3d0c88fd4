"""What every neuron model shares: the step contract, resets, refractoriness and validation.

A model is a frozen dataclass of parameters (time in ms, voltage in mV, ``dt`` passed explicitly)
with a ``NamedTuple`` state class and a pure step::

    state = model.init_state(shape)
    spikes, state = model.step(state, current, dt, noise=None)

``noise`` is a standard-normal tensor of the state's shape, supplied by the caller (the time loop
draws it), so the step stays a pure function and frozen noise is easy. Models without a noise term
ignore it (``noisy`` is false). Nothing is hidden in buffers: everything that evolves is in the state.

**Parameters may be tensors.** Any number of a model (and of its surrogate) may instead be a tensor
that broadcasts against the state — one value per neuron for a heterogeneous population or device
mismatch — or an ``nn.Parameter`` to learn it (a :class:`~neuroplastic.networks.SpikingLayer` shows it
in ``named_parameters()``). The equations use torch operations wherever a parameter enters
(:func:`exp_decay`), and validation checks every element.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuroplastic.integrators import Integrator
from neuroplastic.spikes import Surrogate, spike
from neuroplastic.validation import (
    require_count,
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
    "exp_decay",
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
            name = f"{type(self).__name__}.{field.name}"
            if field.name in _PARTS:
                if not isinstance(value, _PARTS[field.name]):
                    kinds = " or ".join(kind.__name__ for kind in _PARTS[field.name])
                    raise ValueError(f"{name} must be a {kinds}, got {value!r}")
                continue
            numeric = isinstance(field.default, (int, float)) and not isinstance(field.default, bool)
            if not numeric and (isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor))):
                continue
            if field.name.startswith("t_ref"):
                require_non_negative(name, value)
            elif field.name.startswith("tau"):
                require_positive(name, value)
            else:
                require_finite(name, value)

    @property
    def noisy(self) -> bool:
        """Whether ``step`` uses its ``noise`` argument: models with a noise amplitude ``sigma`` do
        unless it is the number 0."""
        sigma = getattr(self, "sigma", 0.0)
        return isinstance(sigma, torch.Tensor) or sigma > 0

    def initial_values(self) -> dict:
        """Resting value of each state field (scalars)."""
        raise NotImplementedError

    def init_state(self, shape=(), *, dtype=torch.float32, device=None):
        """The model at rest, every field a tensor of ``shape``."""
        shape = _checked_shape(shape)
        self._check_fits(dtype)
        values = self.initial_values()
        largest = torch.finfo(dtype).max
        for name, value in values.items():
            if isinstance(value, (int, float)) and not abs(value) <= largest:
                raise ValueError(f"{type(self).__name__} starts its {name} at {value!r}, beyond a {dtype} state; "
                                 "check its parameters")
        return self.State(**{name: _filled(shape, values[name], dtype, device) for name in self.State._fields})

    def step(self, state, current, dt: float, noise=None):
        raise NotImplementedError

    def _check_fits(self, dtype) -> None:
        """A clear error unless the state's ``dtype`` is a floating-point one that holds every number of
        the model (a float32 state cannot hold ``e_l = 1e300``)."""
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"{type(self).__name__} state dtype must be a floating-point dtype, got {dtype!r}")
        largest = torch.finfo(dtype).max
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > largest:
                raise ValueError(f"{type(self).__name__}.{field.name} = {value!r} does not fit in a {dtype} state "
                                 f"(at most {largest:.4g}); simulate in torch.float64 or use a smaller value")

    def state_shape(self, input_shape) -> tuple:
        """The state's shape for one step's input of ``input_shape`` (the same, unless the input
        carries channels)."""
        return tuple(input_shape)

    def drive(self, current: torch.Tensor) -> torch.Tensor:
        """The model's input for an injected current of shape ``(T, *shape)`` (identity by default;
        models whose input carries more channels override this)."""
        return current

    def crossing_potential(self, state) -> torch.Tensor:
        """The membrane potential the spikes of the step that made ``state`` were read from, in units
        of the threshold (``≥ 1`` where a neuron fired): what a graded spike's payload is read from
        (:class:`~neuroplastic.spikes.QuantizedPayload`). Models whose state keeps it override this."""
        raise ValueError(f"{type(self).__name__} resets its potential within the step and does not keep the "
                         "potential at the crossing; a payload read from it needs ALIF (discrete-lif, discrete-alif)")

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


# What a model's parts must be: checked at construction, where a wrong one would fail deep in a step.
_PARTS = {"reset": (ResetTo, ResetBySubtraction), "surrogate": (Surrogate,), "integrator": (Integrator,)}


def _checked_shape(shape) -> tuple:
    """``shape`` as a tuple of sizes, or a clear error."""
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of sizes, got {shape!r}") from None
    for size in shape:
        require_count("shape", size, minimum=0)
    return shape


def _filled(shape, value, dtype, device) -> torch.Tensor:
    """A tensor of ``shape`` holding ``value``: a number, or a tensor (per neuron) broadcast to it."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype=dtype, device=device).expand(tuple(shape)).clone()
    return torch.full(tuple(shape), float(value), dtype=dtype, device=device)


def check_dt(dt) -> float:
    return require_positive("dt", dt)


def exp_decay(dt: float, tau):
    """``exp(−dt/τ)``: a float for a number ``τ``, a tensor (with its gradient) for a tensor."""
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)


def refractory_mask(remaining: torch.Tensor, dt: float) -> torch.Tensor:
    """True where the neuron is still refractory (``remaining`` ms, counted down by ``dt``)."""
    return remaining > dt / 2


def restart_refractory(remaining, spikes, t_ref: float, dt: float):
    """Count the refractory time down by ``dt``; a spike starts it again at ``t_ref``."""
    return torch.where(spikes > 0, t_ref, (remaining - dt).clamp(min=0.0))


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
