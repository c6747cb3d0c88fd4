"""Rate-based Hebbian plasticity: Hebb's rule and Oja's rule (Hebb 1949; Oja 1982, "Simplified neuron
model as a principal component analyzer", J. Math. Biol. 15:267; Dayan & Abbott 2001, ch. 8.2).

With presynaptic activity ``x`` (``info.pre``, ``(B, n_pre)``) and postsynaptic activity ``y``
(``info.post``, ``(B, n_post)``; for a linear neuron ``y = W x``), summed over the batch::

    Hebb:          ΔW_ij = η y_i x_j
    Oja:           ΔW_ij = η y_i (x_j − y_i W_ij)
    decaying Hebb: ΔW_ij = η (y_i x_j − W_ij)     (Miconi et al. 2018's plastic traces)

For a linear neuron and zero-mean inputs of covariance ``C``, Hebb's rule on average grows ``W``
along ``C`` (``⟨ΔW⟩ = η W C``) without bound; Oja's decay term keeps ``‖W_i‖ → 1`` and each row
converges to the principal eigenvector of ``C`` (up to sign). Both rules also act on spike trains or
traces, whatever ``info`` carries.
"""
from __future__ import annotations

from dataclasses import dataclass

from neuroplastic.rules.base import Rule
from neuroplastic.rules.stdp import check_step
from neuroplastic.validation import require_finite, require_non_negative

__all__ = ["Hebb", "Oja", "DecayingHebb"]


@dataclass(frozen=True)
class Hebb(Rule):
    """``ΔW = η yᵀ x`` (the product of post- and presynaptic activity)."""

    eta: float = 1e-3

    def __post_init__(self):
        require_finite("Hebb eta", self.eta)

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "Hebb")
        return (self.eta * (info.post.to(weight.dtype).T @ info.pre.to(weight.dtype)),), state


@dataclass(frozen=True)
class Oja(Rule):
    """``ΔW_ij = η Σ_b y_bi (x_bj − y_bi W_ij)``."""

    eta: float = 1e-3

    def __post_init__(self):
        require_finite("Oja eta", self.eta)

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "Oja")
        x, y = info.pre.to(weight.dtype), info.post.to(weight.dtype)
        return (self.eta * (y.T @ x - (y * y).sum(0)[:, None] * weight),), state


@dataclass(frozen=True)
class DecayingHebb(Rule):
    """``ΔW = η (yᵀ x − W)``, i.e. ``W ← (1 − η) W + η yᵀ x``: Hebb's product with a decay (Miconi et al.
    2018, eq. 2). A constant ``x = y`` gives ``W(n) = (1 − (1 − η)ⁿ) xᵀ x`` from ``W(0) = 0``."""

    eta: float = 0.01

    def __post_init__(self):
        require_non_negative("DecayingHebb eta", self.eta)

    def update(self, info, state, params, **signals):
        weight = check_step(info, params, "DecayingHebb")
        (product,), state = Hebb(self.eta).update(info, state, params)
        return (product - self.eta * weight,), state
