"""Izhikevich's simple model (Izhikevich 2003, "Simple model of spiking neurons", IEEE Trans. Neural
Netw. 14(6):1569–1572).

    dv/dt = 0.04 v² + 5 v + 140 − u + I
    du/dt = a (b v − u)

with ``v`` in mV, ``t`` in ms and the current ``I`` entering ``dv/dt`` directly. When ``v ≥ 30`` mV
(the spike peak) a spike is emitted and ``v ← c``, ``u ← u + d``. The four parameters select the
firing pattern; :data:`PRESETS` holds the seven cortical and thalamic types of the paper's Fig. 2.

With ``u = b v`` the equilibria solve ``0.04 v² + (5 − b) v + 140 + I = 0``; they merge in a
saddle-node at ``I = (5 − b)²/0.16 − 140`` (4 for ``b = 0.2``, where ``I = 0`` gives −70 and −50 mV).

The default integrator is forward Euler; firing patterns depend on the step scheme (the paper's code
makes two 0.5 ms ``v``-steps per 1 ms), so pin ``dt`` when comparing numbers. The model has no noise
term: ``noise`` is ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neuroplastic.integrators import Euler, Integrator
from neuroplastic.neurons.base import NeuronModel, check_dt
from neuroplastic.spikes import FastSigmoid, Surrogate, spike
from neuroplastic.validation import require_positive

__all__ = ["Izhikevich", "IzhikevichState", "PRESETS"]

PRESETS = {
    "RS": dict(a=0.02, b=0.2, c=-65.0, d=8.0),  # regular spiking (adapting)
    "IB": dict(a=0.02, b=0.2, c=-55.0, d=4.0),  # intrinsically bursting
    "CH": dict(a=0.02, b=0.2, c=-50.0, d=2.0),  # chattering (fast rhythmic bursting)
    "FS": dict(a=0.1, b=0.2, c=-65.0, d=2.0),  # fast spiking
    "LTS": dict(a=0.02, b=0.25, c=-65.0, d=2.0),  # low-threshold spiking
    "TC": dict(a=0.02, b=0.25, c=-65.0, d=0.05),  # thalamo-cortical
    "RZ": dict(a=0.1, b=0.26, c=-65.0, d=2.0),  # resonator
}


class IzhikevichState(NamedTuple):
    v: torch.Tensor  # membrane potential (mV)
    u: torch.Tensor  # recovery variable


@dataclass(frozen=True)
class Izhikevich(NeuronModel):
    """Izhikevich neuron; the defaults are the regular-spiking (RS) type.

    ``a`` is the recovery rate (1/ms), ``b`` the sensitivity of ``u`` to ``v``, ``c`` the reset
    voltage (mV), ``d`` the recovery jump per spike, ``v_peak`` the spike cut-off (mV) and ``v_init``
    the starting voltage (mV; the paper's code starts every type at −65 with ``u = b v``).
    """

    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    v_peak: float = 30.0
    v_init: float = -65.0
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=Euler)

    State = IzhikevichState
    default_current = 10.0
    current_unit = "a.u."  # Izhikevich's I, added to dv/dt in mV/ms

    def __post_init__(self):
        super().__post_init__()
        require_positive("Izhikevich.a", self.a)

    @classmethod
    def preset(cls, name: str, **changes) -> Izhikevich:
        """The named type of the 2003 paper (``"RS"``, ``"IB"``, …) with optional overrides."""
        try:
            parameters = PRESETS[name]
        except KeyError:
            raise ValueError(
                f"unknown Izhikevich preset {name!r}; choose from {', '.join(PRESETS)}"
            ) from None
        return cls(**{**parameters, **changes})

    def initial_values(self):
        u = self.b * self.v_init
        if not isinstance(u, torch.Tensor) and not math.isfinite(u):
            raise ValueError(f"Izhikevich.b · v_init = {self.b!r} · {self.v_init!r} (the initial u) overflows")
        return {"v": self.v_init, "u": u}

    def derivatives(self, y, current):
        v, u = y
        dv = 0.04 * v * v + 5.0 * v + 140.0 - u + current
        du = self.a * (self.b * v - u)
        return dv, du

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        v, u = self.integrator(self, (state.v, state.u), current, dt)
        spikes = spike(v - self.v_peak, self.surrogate)
        v = v - spikes * (v - self.c)
        u = u + spikes * self.d
        return spikes, IzhikevichState(v, u)
