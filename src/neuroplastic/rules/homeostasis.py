"""Homeostatic plasticity: adaptive thresholds, synaptic scaling and weight normalization.

**Adaptive threshold** (Diehl & Cook 2015, "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99): each neuron's threshold offset
``θ`` jumps by ``θ+`` at its spikes and decays with ``τ_θ``::

    θ ← θ e^{−dt/τ_θ} + θ+ s        (the rule's change: θ (e^{−dt/τ_θ} − 1) + θ+ s)

Under regular firing with period ``T`` it settles, just after each spike, at ``θ+ / (1 − e^{−T/τ_θ})``,
so a neuron that fires more has a higher threshold. ``params`` is ``(θ,)`` of shape ``(n_post,)``.

**Synaptic scaling** (Turrigiano et al. 1998; van Rossum, Bi & Turrigiano 2000, J. Neurosci.
20:8812): a rate estimate ``a`` (Hz) per postsynaptic neuron, ``τ_a ȧ = −a + 1000 Σ δ(t − t_f)``,
scales all the neuron's incoming weights multiplicatively toward a target rate::

    ΔW_ij = β dt W_ij (a_target − a_i)

**Normalization** (Diehl & Cook 2015): each neuron's incoming weights are rescaled to a fixed sum,
``ΔW_ij = W_ij (total / Σ_k W_ik − 1)`` (applied e.g. once per input with ``every``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.rules.stdp import check_step, decay
from neuroplastic.validation import require_finite, require_non_negative, require_positive

__all__ = ["AdaptiveThreshold", "SynapticScaling", "Normalize"]


@dataclass(frozen=True)
class AdaptiveThreshold(Rule):
    """Threshold offsets ``θ`` that jump by ``theta_plus`` per spike and decay with ``tau`` (ms)."""

    theta_plus: float = 0.05
    tau: float = 1e7

    def __post_init__(self):
        require_non_negative("AdaptiveThreshold theta_plus", self.theta_plus)
        require_positive("AdaptiveThreshold tau", self.tau)

    def update(self, info, state, params, **signals):
        if len(params) != 1 or params[0].shape != info.post.shape[-1:]:
            raise ValueError(f"AdaptiveThreshold changes one threshold vector of shape (n_post,) = "
                             f"{tuple(info.post.shape[-1:])}, got {[tuple(p.shape) for p in params]}")
        (theta,) = params
        spikes = info.post.to(theta.dtype).reshape(-1, theta.shape[0]).sum(0)
        return (theta * (decay(self.tau, require_positive("dt", info.dt)) - 1.0) + self.theta_plus * spikes,), state


@dataclass(frozen=True)
class SynapticScaling(Rule):
    """Multiplicative scaling of each neuron's incoming weights toward ``target_hz``.

    ``beta`` is the rate per ms per Hz of error; state: the rate estimate ``a`` (Hz, ``(n_post,)``).
    """

    target_hz: float = 10.0
    tau: float = 1000.0
    beta: float = 1e-6

    def __post_init__(self):
        require_non_negative("SynapticScaling target_hz", self.target_hz)
        require_positive("SynapticScaling tau", self.tau)
        require_finite("SynapticScaling beta", self.beta)

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "SynapticScaling")
        spikes = info.post.to(weight.dtype).sum(0)
        rate = torch.zeros_like(spikes) if state is None else state
        rate = rate * decay(self.tau, info.dt) + spikes * (1000.0 / self.tau)
        return (self.beta * info.dt * weight * (self.target_hz - rate)[:, None],), rate


@dataclass(frozen=True)
class Normalize(Rule):
    """Rescale every row of ``W`` (a neuron's incoming weights) to sum to ``total``."""

    total: float = 1.0

    def __post_init__(self):
        require_positive("Normalize total", self.total)

    def update(self, info, state, params, **signals):
        changes = []
        for weight in params:
            sums = weight.sum(-1, keepdim=True)
            if (sums <= 0).any():
                raise ValueError("Normalize needs every row of the weight to have a positive sum")
            changes.append(weight * (self.total / sums - 1.0))
        return tuple(changes), state
