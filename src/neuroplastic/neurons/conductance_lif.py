"""Conductance-based LIF with excitatory and inhibitory synapses and white noise (Vogels & Abbott 2005,
"Signal propagation and logic gating in networks of integrate-and-fire neurons", J. Neurosci.
25:10786; Brian2's COBA example; Gerstner et al., *Neuronal Dynamics*, 2014, ch. 3.1).

    τ_m dV/dt = −(V − E_L) − g_e (V − E_e) − g_i (V − E_i) + R I + σ √τ_m ξ(t)
    τ_e dg_e/dt = −g_e,    τ_i dg_i/dt = −g_i

The conductances are dimensionless, relative to the leak conductance. A spike is emitted when
``V ≥ ϑ``; the reset is applied and ``V`` held for ``t_ref`` while the conductances keep decaying.
For fixed conductances ``V`` relaxes with ``τ_eff = τ_m/(1 + g_e + g_i)`` towards

    V_∞ = (E_L + g_e E_e + g_i E_i + R I) / (1 + g_e + g_i),

which makes the default ``Exponential()`` step exact for the conductances and exponential Euler for
``V`` (conductances held at their start-of-step values: an error of order ``dt/τ_e`` while they
change, none while they are constant). ``Euler()`` and ``RK4()`` work through ``derivatives``. Noise
enters as an Euler–Maruyama increment; with no conductances ``V`` is an Ornstein–Uhlenbeck process of
stationary variance ``σ²/2``.

**Input.** The model needs three inputs per neuron and step, so its input has a trailing channel
dimension of size 3: ``(I_ext, Δg_e, Δg_i)`` — the external current (nA) and the conductance jumps of
the presynaptic spikes arriving in this step, added before the step. A sequence for
:func:`neuroplastic.sim.run` has shape ``(T, *shape, 3)`` while the state has ``shape``;
:func:`conductance_input` builds it and :meth:`ConductanceLIF.drive` turns a plain current into it.
``run`` sizes the state and the noise with :meth:`ConductanceLIF.state_shape`.
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

__all__ = ["ConductanceLIF", "ConductanceLIFState", "conductance_input"]

CHANNELS = ("current", "g_e", "g_i")


def conductance_input(current, g_e=0.0, g_i=0.0) -> torch.Tensor:
    """Stack the external current and the excitatory and inhibitory conductance jumps (broadcast to
    one shape) into the model's input ``(..., 3)``, on the device of the first of them that is a tensor."""
    like = next((x for x in (current, g_e, g_i) if isinstance(x, torch.Tensor)), None)
    current = current if isinstance(current, torch.Tensor) else torch.as_tensor(
        current, dtype=None if like is None else like.dtype, device="cpu" if like is None else like.device)
    parts = [torch.as_tensor(x, dtype=current.dtype, device=current.device) for x in (current, g_e, g_i)]
    return torch.stack(torch.broadcast_tensors(*parts), dim=-1)


class ConductanceLIFState(NamedTuple):
    v: torch.Tensor
    g_e: torch.Tensor  # excitatory conductance (relative to leak)
    g_i: torch.Tensor  # inhibitory conductance (relative to leak)
    refractory: torch.Tensor  # remaining refractory time (ms)


@dataclass(frozen=True)
class ConductanceLIF(NeuronModel):
    """COBA LIF; defaults are Vogels & Abbott's (2005) and Brian2's COBA benchmark."""

    tau_m: float = 20.0
    e_l: float = -60.0
    v_th: float = -50.0
    resistance: float = 1.0
    t_ref: float = 5.0
    e_e: float = 0.0
    e_i: float = -80.0
    tau_e: float = 5.0
    tau_i: float = 10.0
    sigma: float = 0.0
    reset: ResetTo | ResetBySubtraction = ResetTo(-60.0)
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=Exponential)

    State = ConductanceLIFState
    default_current = 15.0
    current_unit = "nA"  # the I_ext channel; R in MΩ

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("ConductanceLIF.sigma", self.sigma)

    def initial_values(self):
        return {"v": self.e_l, "g_e": 0.0, "g_i": 0.0, "refractory": 0.0}

    def state_shape(self, input_shape) -> tuple:
        """The state's shape for an input of ``input_shape`` (the input less its channel dimension)."""
        input_shape = tuple(input_shape)
        if not input_shape or input_shape[-1] != len(CHANNELS):
            raise ValueError(f"ConductanceLIF input needs a last dimension of 3 {CHANNELS}; got {input_shape}")
        return input_shape[:-1]

    def drive(self, current):
        """The input for an injected current alone (no synaptic conductance jumps)."""
        return conductance_input(current)

    def relaxation(self, y, current):
        _, g_e, g_i = y
        total = 1.0 + g_e + g_i
        target = (self.e_l + g_e * self.e_e + g_i * self.e_i + self.resistance * current) / total
        return (self.tau_m / total, self.tau_e, self.tau_i), (target, 0.0, 0.0)

    def derivatives(self, y, current):
        v, g_e, g_i = y
        leak = self.e_l - v + self.resistance * current
        dv = (leak + g_e * (self.e_e - v) + g_i * (self.e_i - v)) / self.tau_m
        return dv, -g_e / self.tau_e, -g_i / self.tau_i

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        if current.shape != (*state.v.shape, len(CHANNELS)):
            raise ValueError(
                f"ConductanceLIF input has shape {tuple(current.shape)} for a state of shape "
                f"{tuple(state.v.shape)}; it needs the state's shape plus a channel dimension of 3 "
                f"{CHANNELS}"
            )
        i_ext, jump_e, jump_i = current.unbind(-1)
        y = (state.v, state.g_e + jump_e, state.g_i + jump_i)
        v, g_e, g_i = self.integrator(self, y, i_ext, dt)
        if noise is not None and self.noisy:
            v = v + noise_increment(self.sigma, self.tau_m, dt, noise)
        spikes, v, refractory = fire_and_reset(self, state.v, v, state.refractory, dt)
        return spikes, ConductanceLIFState(v, g_e, g_i, refractory)
