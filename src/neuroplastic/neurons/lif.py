"""Leaky integrate-and-fire neuron (Lapicque 1907; Gerstner et al., *Neuronal Dynamics*, 2014, ch. 1).

    τ_m dV/dt = −(V − E_L) + R I + σ √τ_m ξ(t)

A spike is emitted when ``V ≥ ϑ``; then the reset (``ResetTo(V_r)`` or ``ResetBySubtraction()``)
is applied and ``V`` is held for the absolute refractory period ``t_ref``.

Under a constant current with ``RI > ϑ − E_L`` (and ``V_r`` the reset) the firing rate is

    ν = [t_ref + τ_m ln((RI − (V_r − E_L)) / (RI − (ϑ − E_L)))]⁻¹,

and with white noise of strength σ it is given by the Siegert formula (Brunel 2000). The default
integrator is the exact exponential step, which makes the discrete interspike interval
``(n* + n_ref)·dt`` with ``n* = ⌈τ_m ln(…)/dt⌉``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neuroplastic.integrators import Exponential, Integrator, noise_increment
from neuroplastic.neurons.base import (
    NeuronModel,
    ResetBySubtraction,
    ResetTo,
    check_dt,
    fire_and_reset,
)
from neuroplastic.spikes import FastSigmoid, Surrogate
from neuroplastic.validation import require_non_negative

__all__ = ["LIF", "LIFState"]


class LIFState(NamedTuple):
    v: torch.Tensor
    refractory: torch.Tensor  # remaining refractory time (ms)


@dataclass(frozen=True)
class LIF(NeuronModel):
    """LIF with absolute refractoriness and an optional white-noise term (``sigma``, mV)."""

    tau_m: float = 10.0
    e_l: float = -65.0
    v_th: float = -50.0
    resistance: float = 1.0
    t_ref: float = 2.0
    sigma: float = 0.0
    reset: ResetTo | ResetBySubtraction = ResetTo(-65.0)
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=Exponential)

    State = LIFState
    default_current = 20.0
    current_unit = "nA"  # with R in MΩ, R·I is in mV

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("LIF.sigma", self.sigma)

    def initial_values(self):
        return {"v": self.e_l, "refractory": 0.0}

    def relaxation(self, y, current):
        return (self.tau_m,), (self.e_l + self.resistance * current,)

    def derivatives(self, y, current):
        (v,) = y
        return ((self.e_l + self.resistance * current - v) / self.tau_m,)

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        (v,) = self.integrator(self, (state.v,), current, dt)
        if noise is not None and self.noisy:
            v = v + noise_increment(self.sigma, self.tau_m, dt, noise)
        spikes, v, refractory = fire_and_reset(self, state.v, v, state.refractory, dt)
        return spikes, LIFState(v, refractory)
