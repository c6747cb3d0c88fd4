"""Three-factor rules: an eligibility trace per synapse times a third factor (Izhikevich 2007, "Solving
the distal reward problem through linkage of STDP and dopamine signaling", Cereb. Cortex 17:2443;
Frémaux & Gerstner 2016, "Neuromodulated spike-timing-dependent plasticity, and theory of three-factor
learning rules", Front. Neural Circuits 9:85; Gerstner et al. 2018, Front. Neural Circuits 12:53).

Any plasticity rule (pair STDP, triplet STDP, Hebb) proposes changes ``Δ_t`` each step; instead of
being applied they are held in an eligibility trace that decays with ``τ_c``, and the weight follows
the trace times a modulator ``M``::

    c ← c e^{−dt/τ_c} + Δ_t              (τ_c ċ = −c + STDP(pre, post))
    ΔW = η M(t) c dt                     (Ẇ = η M c)

The modulator comes from the signal ``reward=`` (a number, or a tensor broadcast against the post
population ``(n_post, 1)``), through one of three small objects:

- :class:`Reward` — ``M = r − b`` with a fixed baseline ``b``;
- :class:`RewardPrediction` — ``M = r − r̄``, the reward-prediction error against a running mean
  ``r̄`` (``τ_r ṙ̄ = −r̄ + r``) updated after use (Frémaux & Gerstner's R-STDP with a critic);
- :class:`Dopamine` — ``M = d`` with ``τ_d ḋ = −d + Σ r δ(t − t_r)``: each reward is a dopamine
  release ``d ← d + r`` (Izhikevich 2007: ``d`` decays by 0.995 per ms, ``τ_d ≈ 200`` ms), plus an
  optional tonic level ``baseline`` (his 0.002).

Without the signal the reward is 0 (nothing released, nothing to predict). ``modulated Hebb`` is
``ThreeFactor(Hebb(...), ...)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.rules.stdp import PairSTDP, decay
from neuroplastic.validation import require_finite, require_finite_tensor, require_positive

__all__ = ["ThreeFactor", "Reward", "RewardPrediction", "Dopamine"]


def _reward(value, like):
    reward = torch.as_tensor(0.0 if value is None else value, dtype=like.dtype, device=like.device)
    require_finite_tensor("reward", reward)
    return reward[:, None] if reward.dim() == 1 else reward


@dataclass(frozen=True)
class Reward:
    """``M = reward − baseline``."""

    baseline: float = 0.0

    def __post_init__(self):
        require_finite("Reward baseline", self.baseline)

    def init(self):
        return None

    def step(self, state, reward, dt):
        return reward - self.baseline, state


@dataclass(frozen=True)
class RewardPrediction:
    """``M = reward − r̄``; then ``r̄ ← r̄ + (1 − e^{−dt/τ_r})(reward − r̄)``."""

    tau: float = 1000.0

    def __post_init__(self):
        require_positive("RewardPrediction tau", self.tau)

    def init(self):
        return torch.tensor(0.0)

    def step(self, state, reward, dt):
        error = reward - state
        return error, state + (1.0 - decay(self.tau, dt)) * error


@dataclass(frozen=True)
class Dopamine:
    """``d ← d e^{−dt/τ_d} + reward``; ``M = d + baseline``."""

    tau: float = 200.0
    baseline: float = 0.0

    def __post_init__(self):
        require_positive("Dopamine tau", self.tau)
        require_finite("Dopamine baseline", self.baseline)

    def init(self):
        return torch.tensor(0.0)

    def step(self, state, reward, dt):
        level = state * decay(self.tau, dt) + reward
        return level + self.baseline, level


@dataclass(frozen=True)
class ThreeFactor(Rule):
    """Eligibility trace of ``source``'s changes, applied as ``η M c dt`` (see the module docstring).

    State: ``(source state, c, modulator state)``; the trace ``c`` has the weight's shape and is
    created at the first step.
    """

    source: Rule = field(default_factory=PairSTDP)
    modulator: Reward | RewardPrediction | Dopamine = field(default_factory=Dopamine)
    tau_c: float = 1000.0
    eta: float = 1.0

    def __post_init__(self):
        if not isinstance(self.source, Rule):
            raise ValueError(f"ThreeFactor source must be a rule, got {self.source!r}")
        require_positive("ThreeFactor tau_c", self.tau_c)
        require_finite("ThreeFactor eta", self.eta)

    def init(self, params):
        return (self.source.init(params), None, self.modulator.init())

    def update(self, info, state, params, *, reward=None, **signals):
        inner, trace, level = state
        changes, inner = self.source.update(info, inner, params, reward=reward, **signals)
        if trace is None:
            trace = tuple(torch.zeros_like(p) for p in params)
        factor = decay(self.tau_c, info.dt)
        if changes is not None:
            trace = tuple(c * factor + d for c, d in zip(trace, changes))
        else:
            trace = tuple(c * factor for c in trace)
        m, level = self.modulator.step(level, _reward(reward, params[0]), info.dt)
        return tuple(self.eta * info.dt * m * c for c in trace), (inner, trace, level)

    def eligibility(self, state):
        """The eligibility traces in ``state`` (``None`` before the first step)."""
        return state[1]
