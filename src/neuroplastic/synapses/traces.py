"""Exponential traces: the low-pass filter of spike trains shared by every plasticity rule.

A trace follows ``dx/dt = −x/τ + jump · Σ_f δ(t − t_f)``: it decays with time constant ``τ``
(ms) and jumps by ``jump`` at each spike ``t_f``. Over one step of ``dt`` the decay is solved
exactly and the spikes of that step are added *after* the decay::

    x ← x · e^{−dt/τ} + jump · s

so a spike at step ``k₀`` gives ``x = jump · e^{−(k − k₀) dt/τ}`` at step ``k ≥ k₀``, and a regular
train with period ``T`` settles, just after each spike, at ``jump / (1 − e^{−T/τ})``. These are the
pre- and postsynaptic traces of pair-based STDP (Morrison, Diesmann & Gerstner 2008,
"Phenomenological models of synaptic plasticity based on spike timing", Biol Cybern 98:459) and the
filtered presynaptic activity of eligibility traces (e-prop, SuperSpike). ``spikes`` may be any
non-negative activity (counts, rates · dt); the step is linear and differentiable in ``x`` and
``s``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neuroplastic.validation import require_finite, require_positive

__all__ = ["Trace"]


@dataclass(frozen=True)
class Trace:
    """An exponential trace with time constant ``tau`` (ms) and increment ``jump`` per spike."""

    tau: float
    jump: float = 1.0

    def __post_init__(self):
        require_positive("Trace tau", self.tau)
        require_finite("Trace jump", self.jump)

    def decay(self, dt: float) -> float:
        """The factor ``e^{−dt/τ}`` by which the trace shrinks over one step."""
        return math.exp(-require_positive("dt", dt) / self.tau)

    def init(self, shape=(), *, dtype=torch.float32, device=None) -> torch.Tensor:
        """A trace at rest (zero) of ``shape``."""
        floating = isinstance(dtype, torch.dtype) and dtype.is_floating_point
        if not floating or abs(self.jump) > torch.finfo(dtype).max:
            raise ValueError(f"a trace of Trace jump = {self.jump!r} needs a floating-point dtype that holds it, "
                             f"got {dtype!r}")
        return torch.zeros(tuple(shape), dtype=dtype, device=device)

    def step(self, x: torch.Tensor, spikes: torch.Tensor, dt: float) -> torch.Tensor:
        """One step: decay over ``dt`` first, then add ``jump`` for each spike of this step."""
        return x * self.decay(dt) + self.jump * spikes
