"""Pair-based spike-timing-dependent plasticity with traces (Bi & Poo 1998; Song, Miller & Abbott 2000,
"Competitive Hebbian learning through spike-timing-dependent synaptic plasticity", Nat. Neurosci.
3:919; Morrison, Diesmann & Gerstner 2008, "Phenomenological models of synaptic plasticity based on
spike timing", Biol. Cybern. 98:459).

Each presynaptic neuron ``j`` keeps a trace ``x_j`` (time constant ``τ+``) and each postsynaptic
neuron ``i`` a trace ``y_i`` (``τ−``). On a presynaptic spike the synapse is depressed by the
postsynaptic trace, on a postsynaptic spike potentiated by the presynaptic trace::

    pre spike of j:   W_ij ← W_ij − A− f−(W_ij) y_i          then x_j jumps
    post spike of i:  W_ij ← W_ij + A+ f+(W_ij) x_j          (x_j includes a pre spike of this step)

With all-to-all pairing the traces add (``x ← x + 1``); with nearest-spike pairing they are set to 1
(``x ← 1``), so a spike pairs only with the latest spike of the other side. For the additive rule an
isolated pair ``Δt = t_post − t_pre`` gives the window

    W(Δt) = A+ e^{−Δt/τ+}  (Δt ≥ 0),      W(Δt) = −A− e^{Δt/τ−}  (Δt < 0),

exactly in discrete time, since the traces decay exactly (``x ← x e^{−dt/τ}``, then the jumps).
Bi & Poo's data fit τ+ = 16.8 ms and τ− = 33.7 ms (the defaults).

Weight dependence is a value: :class:`Additive` (``f± = 1``; hard bounds come from ``bound(0, w_max)``
in a chain) or :class:`SoftBounds` (Gütig et al. 2003, J. Neurosci. 23:3697: ``f+ = (1 − w/w_max)^μ``,
``f− = (w/w_max)^μ``; ``μ = 1`` is multiplicative STDP, which keeps weights inside ``[0, w_max]``).

The rule returns changes (``apply_changes`` adds them), summed over the batch. ``info.pre`` and
``info.post`` are spikes ``(B, n_pre)`` and ``(B, n_post)``; ``params`` is ``(W,)`` with ``W`` of
shape ``(n_post, n_pre)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.validation import require_non_negative, require_positive

__all__ = ["PairSTDP", "Additive", "SoftBounds", "AllToAll", "Nearest", "decay", "check_step"]


@dataclass(frozen=True)
class Additive:
    """Weight-independent changes: ``f+ = f− = 1``."""

    def potentiation(self, w):
        return 1.0

    def depression(self, w):
        return 1.0


@dataclass(frozen=True)
class SoftBounds:
    """Soft bounds ``f+ = (1 − w/w_max)^μ``, ``f− = (w/w_max)^μ`` (μ = 1: multiplicative)."""

    w_max: float = 1.0
    mu: float = 1.0

    def __post_init__(self):
        require_positive("SoftBounds w_max", self.w_max)
        require_non_negative("SoftBounds mu", self.mu)

    def potentiation(self, w):
        return (1.0 - w / self.w_max).clamp(min=0.0) ** self.mu

    def depression(self, w):
        return (w / self.w_max).clamp(min=0.0) ** self.mu


@dataclass(frozen=True)
class AllToAll:
    """Every pre spike pairs with every post spike: traces add ``1`` per spike."""

    def step(self, trace, spikes, factor):
        return trace * factor + spikes


@dataclass(frozen=True)
class Nearest:
    """Nearest-spike pairing: a spike sets its trace to ``1`` (Morrison et al. 2008, Sec. 4.1)."""

    def step(self, trace, spikes, factor):
        return torch.where(spikes > 0, torch.ones_like(trace), trace * factor)


def decay(tau: float, dt: float) -> float:
    return math.exp(-dt / tau)


def check_step(info, params, name: str):
    """The weight of a one-parameter plasticity rule, after checking that the shapes fit ``info``."""
    if len(params) != 1:
        raise ValueError(f"{name} changes one weight matrix (n_post, n_pre), got {len(params)} parameters")
    (weight,) = params
    pre, post = info.pre, info.post
    if (pre.dim() != 2 or post.dim() != 2 or pre.shape[0] != post.shape[0]
            or weight.shape != (post.shape[-1], pre.shape[-1])):
        raise ValueError(f"{name}: weight {tuple(weight.shape)} does not fit pre {tuple(pre.shape)} and "
                         f"post {tuple(post.shape)} (need (B, n_pre), (B, n_post), W (n_post, n_pre))")
    require_positive("dt", info.dt)
    return weight


@dataclass(frozen=True)
class PairSTDP(Rule):
    """Pair-based STDP with a presynaptic and a postsynaptic trace (see the module docstring).

    ``a_plus`` and ``a_minus`` are the (non-negative) amplitudes of potentiation and depression.
    State: the traces ``(x_pre (B, n_pre), y_post (B, n_post))``, created at the first step.
    """

    tau_plus: float = 16.8
    tau_minus: float = 33.7
    a_plus: float = 0.01
    a_minus: float = 0.0105
    weight_dependence: Additive | SoftBounds = field(default_factory=Additive)
    pairing: AllToAll | Nearest = field(default_factory=AllToAll)

    def __post_init__(self):
        require_positive("PairSTDP tau_plus", self.tau_plus)
        require_positive("PairSTDP tau_minus", self.tau_minus)
        require_non_negative("PairSTDP a_plus", self.a_plus)
        require_non_negative("PairSTDP a_minus", self.a_minus)

    def window(self, delta_t):
        """The closed-form change of an isolated pair ``Δt = t_post − t_pre`` (ms), additive rule (on
        ``delta_t``'s device; numbers and arrays on the CPU)."""
        delta_t = torch.as_tensor(delta_t, dtype=torch.float64,
                                  device=delta_t.device if isinstance(delta_t, torch.Tensor) else "cpu")
        return torch.where(delta_t >= 0, self.a_plus * torch.exp(-delta_t.clamp(min=0) / self.tau_plus),
                           -self.a_minus * torch.exp(delta_t.clamp(max=0) / self.tau_minus))

    def init(self, params):
        return None

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "PairSTDP")
        pre, post = info.pre.to(weight.dtype), info.post.to(weight.dtype)
        if state is None:
            state = (torch.zeros_like(pre), torch.zeros_like(post))
        x_pre, y_post = state
        x_pre = self.pairing.step(x_pre, pre, decay(self.tau_plus, info.dt))
        y_post = y_post * decay(self.tau_minus, info.dt)  # before this step's post spikes
        change = self.a_plus * self.weight_dependence.potentiation(weight) * (post.T @ x_pre)
        change = change - self.a_minus * self.weight_dependence.depression(weight) * (y_post.T @ pre)
        y_post = self.pairing.step(y_post, post, 1.0)
        return (change,), (x_pre, y_post)
