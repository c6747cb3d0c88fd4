"""Current-based LIF: a LIF neuron behind an exponential synaptic current (Gerstner et al., *Neuronal
Dynamics*, 2014, ch. 1 and 5; NEST's ``iaf_psc_exp``).

    τ_s dI_syn/dt = −I_syn,                    I_syn ← I_syn + w   at a presynaptic spike
    τ_m dV/dt     = −(V − E_L) + R I_syn

A spike is emitted when ``V ≥ ϑ``; then the reset (``ResetTo(V_r)`` or ``ResetBySubtraction()``) is
applied and ``V`` is held for ``t_ref`` while ``I_syn`` keeps decaying and receiving input.

**Input.** The step's ``current`` is the sum of the weighted presynaptic spikes arriving in this step
(nA): it is added to ``I_syn`` at the start of the step, and then ``(V, I_syn)`` advance over ``dt``.
A spike of weight ``w`` at time 0 therefore gives the postsynaptic potential

    V(t) − E_L = R w τ_s / (τ_s − τ_m) · (e^{−t/τ_s} − e^{−t/τ_m})      (R w t/τ_m · e^{−t/τ_m} if τ_s = τ_m),

read at the end of each step, ``t = dt, 2 dt, …``. A jump of ``q/τ_s`` carries the charge ``q``;
as ``τ_s → 0`` the PSP tends to the LIF's impulse response ``(R q/τ_m) e^{−t/τ_m}``.

**Integration.** The default :class:`Exact` integrator applies the exact propagator of this linear
pair (Rotter & Diesmann 1999, "Exact digital simulation of time-invariant linear systems with
applications to neuronal modeling", Biol. Cybern. 81:381–402): the PSP above is reproduced to
rounding error at any ``dt``. ``Euler()`` and ``RK4()`` work through ``derivatives``; ``Exponential()``
works through ``relaxation`` but holds ``I_syn`` at its start-of-step value for ``V`` (exponential
Euler), an error of order ``dt/τ_s`` in each PSP. The model has no noise term: ``noise`` is ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neuroplastic.integrators import Exact, Integrator
from neuroplastic.neurons.base import (
    NeuronModel,
    ResetBySubtraction,
    ResetTo,
    check_dt,
    exp_decay,
    fire_and_reset,
)
from neuroplastic.spikes import FastSigmoid, Surrogate

__all__ = ["CurrentLIF", "CurrentLIFState"]


class CurrentLIFState(NamedTuple):
    v: torch.Tensor
    i_syn: torch.Tensor  # synaptic current (nA)
    refractory: torch.Tensor  # remaining refractory time (ms)


def _psc_gain(dt: float, tau_m, tau_s):
    """``τ_s/(τ_s − τ_m)·(e^{−dt/τ_s} − e^{−dt/τ_m})``: the voltage (per unit ``R I_syn``) that a
    synaptic current present at the start of a step adds by its end. Written as
    ``(dt/τ_m)·e^{−min(dt/τ_m, dt/τ_s)}·φ(−|dt/τ_m − dt/τ_s|)`` with ``φ(x) = (eˣ − 1)/x``: no cancellation
    near ``τ_s = τ_m`` and no overflow (``φ``'s argument is never positive); numbers or tensors."""
    a, b = dt / tau_m, dt / tau_s
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        like = a if isinstance(a, torch.Tensor) else b
        a, b = torch.as_tensor(a, device=like.device), torch.as_tensor(b, device=like.device)
        return a * torch.exp(-torch.minimum(a, b)) * _relative_expm1(-(a - b).abs())
    return a * math.exp(-min(a, b)) * _relative_expm1(-abs(a - b))


def _relative_expm1(x):
    """``φ(x) = (eˣ − 1)/x``, its series ``1 + x/2 + x²/6`` near 0 (where it is exact to rounding, and
    its derivative 1/2 is right at 0 too)."""
    if isinstance(x, torch.Tensor):
        small = x.abs() < 1e-5
        safe = torch.where(small, -torch.ones_like(x), x)
        return torch.where(small, 1 + x / 2 + x * x / 6, torch.expm1(safe) / safe)
    return 1 + x / 2 + x * x / 6 if abs(x) < 1e-5 else math.expm1(x) / x


@dataclass(frozen=True)
class CurrentLIF(NeuronModel):
    """LIF with an exponentially decaying synaptic current (``tau_s``, ms); input = current jumps."""

    tau_m: float = 10.0
    tau_s: float = 5.0
    e_l: float = -65.0
    v_th: float = -50.0
    resistance: float = 1.0
    t_ref: float = 2.0
    reset: ResetTo | ResetBySubtraction = ResetTo(-65.0)
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=Exact)

    State = CurrentLIFState
    default_current = 0.4  # at dt = 0.1 ms: a mean synaptic current of 20 nA
    current_unit = "nA/step"  # jump of I_syn per step

    def initial_values(self):
        return {"v": self.e_l, "i_syn": 0.0, "refractory": 0.0}

    def propagate(self, y, current, dt):
        v, i_syn = y
        gain = self.resistance * _psc_gain(dt, self.tau_m, self.tau_s)
        return (self.e_l + (v - self.e_l) * exp_decay(dt, self.tau_m) + gain * i_syn,
                i_syn * exp_decay(dt, self.tau_s))

    def relaxation(self, y, current):
        _, i_syn = y
        return (self.tau_m, self.tau_s), (self.e_l + self.resistance * i_syn, 0.0)

    def derivatives(self, y, current):
        v, i_syn = y
        return (self.e_l + self.resistance * i_syn - v) / self.tau_m, -i_syn / self.tau_s

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        v, i_syn = self.integrator(self, (state.v, state.i_syn + current), None, dt)
        spikes, v, refractory = fire_and_reset(self, state.v, v, state.refractory, dt)
        return spikes, CurrentLIFState(v, i_syn, refractory)
