"""Hodgkin–Huxley model of the squid giant axon (Hodgkin & Huxley 1952, "A quantitative description of
membrane current and its application to conduction and excitation in nerve", J. Physiol. 117:500–544),
in the modern convention with rest at −65 mV (6.3 °C).

    C dV/dt = −g_Na m³h (V − E_Na) − g_K n⁴ (V − E_K) − g_L (V − E_L) + I
    dx/dt  = α_x(V) (1 − x) − β_x(V) x            for x in m, h, n

    α_n = 0.01 (V + 55) / (1 − e^{−(V+55)/10})     β_n = 0.125 e^{−(V+65)/80}
    α_m = 0.1 (V + 40) / (1 − e^{−(V+40)/10})      β_m = 4 e^{−(V+65)/18}
    α_h = 0.07 e^{−(V+65)/20}                      β_h = 1 / (1 + e^{−(V+35)/10})

with C = 1 µF/cm², g_Na = 120, g_K = 36, g_L = 0.3 mS/cm², E_Na = 50, E_K = −77, E_L = −54.387 mV and
``I`` in µA/cm². α_n and α_m have removable singularities at V = −55 and −40 mV (limits 0.1 and 1.0);
they are evaluated as ``x / (1 − e^{−x})`` with its limit 1 at ``x = 0``.

Every equation relaxes towards a voltage-dependent target: ``x_∞ = α/(α+β)`` with ``τ_x = 1/(α+β)``,
and ``V_∞ = (Σ g E + I)/g_total`` with ``τ_V = C/g_total``, so the exponential integrator gives the
Rush–Larsen scheme. The default integrator is RK4 (dt ≤ 0.025 ms). The model has no reset: a spike is
reported when ``V`` crosses ``v_th`` (0 mV) upwards within a step. The model has no noise term:
``noise`` is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from neuroplastic.integrators import RK4, Integrator
from neuroplastic.neurons.base import NeuronModel, check_dt
from neuroplastic.spikes import FastSigmoid, Surrogate, spike
from neuroplastic.validation import require_non_negative, require_positive

__all__ = [
    "HodgkinHuxley",
    "HodgkinHuxleyState",
    "alpha_n",
    "beta_n",
    "alpha_m",
    "beta_m",
    "alpha_h",
    "beta_h",
]


def _x_over_one_minus_exp(x: torch.Tensor) -> torch.Tensor:
    """``x / (1 − e^{−x})``, finite and smooth through its removable singularity at ``x = 0``: ``expm1``
    keeps it accurate for small ``|x|`` and below 1e-6 its Taylor form ``1 + x/2`` takes over (the
    inner ``where`` keeps gradients free of 0/0)."""
    near_zero = x.abs() < 1e-6
    safe = torch.where(near_zero, torch.ones_like(x), x)
    return torch.where(near_zero, 1.0 + 0.5 * x, safe / -torch.expm1(-safe))


def alpha_n(v):
    return 0.1 * _x_over_one_minus_exp((v + 55.0) * 0.1)


def beta_n(v):
    return 0.125 * torch.exp((v + 65.0) * (-1 / 80))


def alpha_m(v):
    return _x_over_one_minus_exp((v + 40.0) * 0.1)


def beta_m(v):
    return 4.0 * torch.exp((v + 65.0) * (-1 / 18))


def alpha_h(v):
    return 0.07 * torch.exp((v + 65.0) * (-1 / 20))


def beta_h(v):
    return torch.sigmoid((v + 35.0) * 0.1)


def _rates(v):
    """``(α, β)`` of the gates m, h, n at ``v``."""
    return (alpha_m(v), beta_m(v)), (alpha_h(v), beta_h(v)), (alpha_n(v), beta_n(v))


class HodgkinHuxleyState(NamedTuple):
    v: torch.Tensor  # membrane potential (mV)
    m: torch.Tensor  # sodium activation
    h: torch.Tensor  # sodium inactivation
    n: torch.Tensor  # potassium activation


@dataclass(frozen=True)
class HodgkinHuxley(NeuronModel):
    """Hodgkin–Huxley neuron. Conductances in mS/cm², potentials in mV, ``c_m`` in µF/cm².

    The state starts at ``v_init`` with every gate at its steady state there (−65 mV is rest).
    """

    c_m: float = 1.0
    g_na: float = 120.0
    g_k: float = 36.0
    g_l: float = 0.3
    e_na: float = 50.0
    e_k: float = -77.0
    e_l: float = -54.387
    v_th: float = 0.0
    v_init: float = -65.0
    surrogate: Surrogate = FastSigmoid()
    integrator: Integrator = field(default_factory=RK4)

    State = HodgkinHuxleyState
    default_current = 10.0
    default_dt = 0.025
    current_unit = "µA/cm²"

    def __post_init__(self):
        super().__post_init__()
        require_positive("HodgkinHuxley.c_m", self.c_m)
        for name in ("g_na", "g_k", "g_l"):
            require_non_negative(f"HodgkinHuxley.{name}", getattr(self, name))
        require_positive("HodgkinHuxley total conductance", self.g_na + self.g_k + self.g_l)

    def initial_values(self):
        where = self.v_init.device if isinstance(self.v_init, torch.Tensor) else "cpu"  # (init_state moves it)
        rates = _rates(torch.as_tensor(self.v_init, dtype=torch.float64, device=where))
        steady = {name: a / (a + b) for name, (a, b) in zip("mhn", rates)}
        if not all(bool(torch.isfinite(x).all()) for x in steady.values()):
            raise ValueError(f"HodgkinHuxley.v_init = {self.v_init!r} mV is beyond the range where the gates' rates "
                             "are finite")
        return {"v": self.v_init, **steady}

    def relaxation(self, y, current):
        v, m, h, n = y
        g_na, g_k = self._conductances(m, h, n)
        g_total = g_na + g_k + self.g_l
        v_inf = (g_na * self.e_na + g_k * self.e_k + self.g_l * self.e_l + current) / g_total
        taus, targets = [self.c_m / g_total], [v_inf]
        for alpha, beta in _rates(v):
            taus.append(1.0 / (alpha + beta))
            targets.append(alpha / (alpha + beta))
        return tuple(taus), tuple(targets)

    def derivatives(self, y, current):
        v, m, h, n = y
        g_na, g_k = self._conductances(m, h, n)
        ionic = g_na * (v - self.e_na) + g_k * (v - self.e_k) + self.g_l * (v - self.e_l)
        gates = tuple(alpha * (1.0 - x) - beta * x for x, (alpha, beta) in zip((m, h, n), _rates(v)))
        return ((current - ionic) / self.c_m, *gates)

    def _conductances(self, m, h, n):
        return self.g_na * m**3 * h, self.g_k * n**4

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        v, m, h, n = self.integrator(self, (state.v, state.m, state.h, state.n), current, dt)
        rising = (state.v < self.v_th).to(v.dtype)
        spikes = spike(v - self.v_th, self.surrogate) * rising
        return spikes, HodgkinHuxleyState(v, m, h, n)
