"""The differential-pair-integrator (DPI) neuron and synapse of mixed-signal neuromorphic chips, in
their current-mode equations (Bartolozzi & Indiveri 2007, "Synaptic dynamics in analog VLSI", Neural
Computation 19:2581; Chicca, Stefanini, Bartolozzi & Indiveri 2014, "Neuromorphic electronic circuits
for building autonomous cognitive systems", Proc. IEEE 102:1367, the adaptive exponential I&F circuit).

Subthreshold transistors make every quantity a current. The synaptic DPI low-pass filters the pulses of
its input spikes, and the membrane DPI low-pass filters its input current::

    τ_syn dI_syn/dt = −I_syn            I_syn ← I_syn + I_w   at a presynaptic spike (weight current I_w)
    τ_mem (1 + I_th/I_mem) dI_mem/dt = (I_th/I_τ) I_syn − I_mem (1 + I_ahp/I_τ) − I_th + I_a

with ``τ = C U_T / (κ I_τ)`` for either DPI (the leak current ``I_τ`` sets the time constant, the
threshold current ``I_th`` the gain ``I_th/I_τ``). Without adaptation (``I_ahp = 0``) and positive
feedback (``I_a = 0``), and for ``I_mem ≫ I_th``, the membrane equation is linear,

    τ_mem dI_mem/dt = −I_mem + g I_syn,        g = I_th / I_τ,

a current-based LIF in current units: :class:`DPI` is :class:`~neuroplastic.neurons.CurrentLIF` with
``v`` read as ``I_mem``, ``e_l = 0`` (the dark current, taken as 0), ``resistance`` as the gain ``g``,
``v_th`` as the spiking threshold current ``I_spk`` (units: ``I_spk = 1``), a reset to ``I_reset = 0``
and a refractory period set by the refractory current (``t_ref``). Two things differ: a current never
goes below the dark current (``I_mem ≥ 0``: inhibition cannot drive it negative), and the circuit is
noisy from run to run: ``sigma`` is the standard deviation of a current added to ``I_mem`` at every step
(thermal and shot noise; the time loop draws it). Device mismatch is a chip's business
(:mod:`neuroplastic.physical`): it gives each neuron its own ``tau_m``, ``tau_s``, ``resistance`` and
``v_th`` (per-neuron tensors).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.neurons.base import ResetTo, check_dt, fire_and_reset
from neuroplastic.neurons.current_lif import CurrentLIF, CurrentLIFState
from neuroplastic.spikes import FastSigmoid, Surrogate
from neuroplastic.validation import require_non_negative

__all__ = ["DPI"]


@dataclass(frozen=True)
class DPI(CurrentLIF):
    """A DPI neuron behind a DPI synapse (module docstring), in units of its threshold current."""

    tau_m: float = 20.0
    tau_s: float = 5.0
    e_l: float = 0.0
    v_th: float = 1.0
    resistance: float = 1.0
    t_ref: float = 1.0
    reset: ResetTo = ResetTo(0.0)
    surrogate: Surrogate = FastSigmoid(10.0)
    sigma: float = 0.0

    voltage = "v"  # I_mem
    current_unit = "I_spk/step"
    default_current = 0.2

    def __post_init__(self):
        super().__post_init__()
        require_non_negative("DPI.sigma", self.sigma)

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        i_mem, i_syn = self.integrator(self, (state.v, state.i_syn + current), None, dt)
        if noise is not None:
            i_mem = i_mem + self.sigma * noise
        i_mem = torch.clamp(i_mem, min=0.0)  # no current below the dark current
        spikes, i_mem, refractory = fire_and_reset(self, state.v, i_mem, state.refractory, dt)
        return spikes, CurrentLIFState(i_mem, i_syn, refractory)
