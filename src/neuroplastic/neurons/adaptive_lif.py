"""LIF with any number of adaptation currents (Gerstner et al., *Neuronal Dynamics*, 2014, ch. 6.1–6.2).

    τ_m du/dt  = −(u − u_rest) − R Σ_k w_k + R I
    τ_k dw_k/dt = a_k (u − u_rest) − w_k + b_k τ_k Σ_f δ(t − t_f)

(``u`` is the state field ``v``, ``u_rest`` the parameter ``e_l``.) At a spike (``u ≥ ϑ``) the reset
(``ResetTo(u_r)``) is applied and every ``w_k`` jumps by ``b_k``; ``u`` is then held for ``t_ref`` while
the ``w_k`` keep relaxing. ``a_k`` (µS, so ``R a_k`` is dimensionless) couples ``w_k`` to the
subthreshold voltage, ``b_k`` (nA) is the spike-triggered jump, ``tau_w`` the time constants (ms). The
three tuples have one entry per adaptation current; ``a = b = tau_w = ()`` is the plain LIF.

The state field ``w`` carries the adaptation currents in a trailing dimension: its shape is
``(*shape, K)`` while ``v`` and ``refractory`` have ``shape``.

Under a constant current the subthreshold fixed point is ``w_k* = a_k (u* − u_rest)`` with

    u* − u_rest = R I / (1 + R Σ_k a_k),

and the subthreshold dynamics are linear: ``x = (u − u_rest, w_1 … w_K)`` obeys ``dx/dt = M x + c``.
The system is coupled, so it has no relaxation form (for ``K > 0``): integrate with ``RK4()`` (default)
or ``Euler()`` through ``derivatives``. The model has no noise term: ``noise`` is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neuroplastic.integrators import RK4, Integrator
from neuroplastic.neurons.base import (
    NeuronModel,
    ResetBySubtraction,
    ResetTo,
    check_dt,
    fire_and_reset,
)
from neuroplastic.spikes import FastSigmoid, Surrogate
from neuroplastic.validation import require_finite, require_positive

__all__ = ["AdaptiveLIF", "AdaptiveLIFState"]


class AdaptiveLIFState(NamedTuple):
    v: torch.Tensor  # membrane potential u (mV), shape (*shape)
    w: torch.Tensor  # adaptation currents (nA), shape (*shape, K)
    refractory: torch.Tensor  # remaining refractory time (ms), shape (*shape)


@dataclass(frozen=True)
class AdaptiveLIF(NeuronModel):
    """Multi-timescale adaptive LIF; ``a``, ``b``, ``tau_w`` are equal-length tuples (one per current)."""

    tau_m: float = 10.0
    e_l: float = -65.0
    v_th: float = -50.0
    resistance: float = 1.0
    t_ref: float = 2.0
    a: tuple = (0.0,)
    b: tuple = (1.0,)
    tau_w: tuple = (100.0,)
    reset: ResetTo | ResetBySubtraction = ResetTo(-65.0)
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=RK4)

    State = AdaptiveLIFState
    default_current = 25.0
    current_unit = "nA"  # with R in MΩ, R·I is in mV

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        for label in ("a", "b", "tau_w"):
            values = getattr(self, label)
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise ValueError(f"{name}.{label} must be a tuple of numbers, got {values!r}")
            object.__setattr__(self, label, tuple(require_finite(f"{name}.{label}", x) for x in values))
        if not len(self.a) == len(self.b) == len(self.tau_w):
            raise ValueError(
                f"{name}: a, b and tau_w need one entry per adaptation current, got lengths "
                f"{len(self.a)}, {len(self.b)}, {len(self.tau_w)}"
            )
        for tau in self.tau_w:
            require_positive(f"{name}.tau_w", tau)

    def initial_values(self):
        return {"v": self.e_l, "w": 0.0, "refractory": 0.0}

    def init_state(self, shape=(), *, dtype=torch.float32, device=None):
        """The model at rest: ``v`` and ``refractory`` of ``shape``, ``w`` of ``(*shape, K)``."""
        state = super().init_state(shape, dtype=dtype, device=device)
        return state._replace(w=torch.zeros((*tuple(shape), len(self.a)), dtype=dtype, device=device))

    def derivatives(self, y, current):
        v, w = y
        a, tau_w = v.new_tensor(self.a), v.new_tensor(self.tau_w)
        depolarization = v - self.e_l
        dv = (self.resistance * (current - w.sum(-1)) - depolarization) / self.tau_m
        dw = (a * depolarization.unsqueeze(-1) - w) / tau_w
        return dv, dw

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        v, w = self.integrator(self, (state.v, state.w), current, dt)
        spikes, v, refractory = fire_and_reset(self, state.v, v, state.refractory, dt)
        w = w + spikes.unsqueeze(-1) * w.new_tensor(self.b)
        return spikes, AdaptiveLIFState(v, w, refractory)
