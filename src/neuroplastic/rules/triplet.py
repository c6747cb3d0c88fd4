"""Triplet STDP (Pfister & Gerstner 2006, "Triplets of spikes in a model of spike timing-dependent
plasticity", J. Neurosci. 26:9673).

Two presynaptic traces ``r1`` (τ+), ``r2`` (τx) and two postsynaptic traces ``o1`` (τ−), ``o2`` (τy),
all-to-all (each jumps by 1 at a spike of its neuron, after the weight change it takes part in)::

    pre spike of j at t:   W_ij ← W_ij − o1_i(t) [A2− + A3− r2_j(t − ε)]
    post spike of i at t:  W_ij ← W_ij + r1_j(t) [A2+ + A3+ o2_i(t − ε)]

The triplet terms make potentiation grow with the pairing frequency: for pre–post pairs repeated at
frequency ρ, ``o2`` has not decayed between pairs at high ρ. The defaults are the visual-cortex
parameters of the paper's Table 4 (all-to-all, full model), as NESTML's ``stdp_triplet_synapse``
lists them: τ+ = 16.8, τ− = 33.7, τx = 101, τy = 125 ms, A2+ = 7.5e-10, A3+ = 9.3e-3, A2− = 7e-3,
A3− = 2.3e-4. With ``A3± = 0`` the rule is pair-based STDP.

Within one step, as for :class:`~neuroplastic.rules.stdp.PairSTDP`: depression uses ``o1`` before
this step's post spikes, potentiation ``r1`` after this step's pre spikes; ``r2`` and ``o2`` are read
before their own neuron's spike of the step (the ``t − ε`` of the paper).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.rules.stdp import check_step, decay
from neuroplastic.validation import require_non_negative, require_positive

__all__ = ["TripletSTDP"]


@dataclass(frozen=True)
class TripletSTDP(Rule):
    """Triplet STDP, all-to-all; state ``(r1, r2, o1, o2)`` traces, created at the first step."""

    tau_plus: float = 16.8
    tau_minus: float = 33.7
    tau_x: float = 101.0
    tau_y: float = 125.0
    a2_plus: float = 7.5e-10
    a3_plus: float = 9.3e-3
    a2_minus: float = 7e-3
    a3_minus: float = 2.3e-4

    def __post_init__(self):
        for name in ("tau_plus", "tau_minus", "tau_x", "tau_y"):
            require_positive(f"TripletSTDP {name}", getattr(self, name))
        for name in ("a2_plus", "a3_plus", "a2_minus", "a3_minus"):
            require_non_negative(f"TripletSTDP {name}", getattr(self, name))

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "TripletSTDP")
        pre, post = info.pre.to(weight.dtype), info.post.to(weight.dtype)
        if state is None:
            state = (torch.zeros_like(pre), torch.zeros_like(pre), torch.zeros_like(post), torch.zeros_like(post))
        r1, r2, o1, o2 = state
        dt = info.dt
        r1 = r1 * decay(self.tau_plus, dt) + pre
        r2 = r2 * decay(self.tau_x, dt)  # r2(t − ε)
        o1 = o1 * decay(self.tau_minus, dt)  # o1 before this step's post spikes
        o2 = o2 * decay(self.tau_y, dt)  # o2(t − ε)
        ltp = (post * (self.a2_plus + self.a3_plus * o2)).T @ r1
        ltd = o1.T @ (pre * (self.a2_minus + self.a3_minus * r2))
        return (ltp - ltd,), (r1, r2 + pre, o1 + post, o2 + post)
