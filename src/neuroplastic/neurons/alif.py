"""Adaptive LIF in the discrete form of e-prop (Bellec et al. 2020, "A solution to the learning dilemma
for recurrent networks of spiking neurons", Nat. Commun. 11:3625, Methods; Bellec et al. 2018, LSNN).

    v_t = α v_{t−1} + I_t − v_th z_{t−1}          α = exp(−dt/τ_m)
    a_t = ρ a_{t−1} + z_{t−1}                      ρ = exp(−dt/τ_a)
    A_t = v_th + β a_t
    z_t = H((v_t − A_t)/v_th),  z_t = 0 in the t_ref/dt steps after a spike

With ``beta = 0`` this is the e-prop LIF. The spike's pseudo-derivative is the surrogate of the
scaled distance ``(v_t − A_t)/v_th``; with the default ``Triangle(gamma=0.3)`` it is
``ψ_t = (γ/v_th)·max(0, 1 − |(v_t − A_t)/v_th|)`` with respect to ``v_t``, as in the paper.

**Input.** The step's ``current`` is ``I_t`` itself (``W_in x_t + W_rec z_{t−1}``): it is added to
``v`` unscaled, in units of ``v_th`` per step. A constant input ``I`` drives ``v`` towards
``I/(1 − α)``.

**Reset.** The reset acts one step late, on ``α v_{t−1} + I_t`` with the previous spike ``z_{t−1}``;
the default ``ResetBySubtraction()`` subtracts ``v_th`` as above, and ``ResetBySubtraction(detach=True)``
stops its gradient (the case where e-prop equals BPTT on one layer); ``ResetTo(value)`` sets ``v`` to
``value`` instead (multiplicative reset for ``value = 0``). The state therefore keeps ``v``
before the reset and the last spike ``z``. Refractoriness only silences ``z`` (``v`` integrates on).

**No integrator.** This is already a discrete map (a per-step recurrence, tuned for its ``dt``, usually
1 ms): there is no continuous system to integrate, and ``α``, ``ρ`` are the exact decays of its leaks.
There is no noise term either: ``noise`` is ignored.

**Porting β.** Some code (e.g. the ``LightALIF`` cell of the e-prop repository) scales the input by
``(1 − α)`` and the spike increment of the adaptation by ``(1 − ρ)``, so that its ``b = (1 − ρ) a``: a
β from such code is ``β (1 − ρ)`` here (feeding its scaled input ``(1 − α) I`` as ``I_t``). The paper
form is used as is by the cue-accumulation task, with ``β = 1.7 (1 − ρ)/(1 − α)`` = 0.0174 for
τ_m = 20, τ_a = 2000, dt = 1 ms: the default. The reference ``EligALIF`` cell with ``n_refractory = n``
silences ``n − 1`` steps after a spike; here ``t_ref = n·dt`` silences ``n``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuroplastic.neurons.base import (
    NeuronModel,
    ResetBySubtraction,
    ResetTo,
    check_dt,
    exp_decay,
    refractory_mask,
    restart_refractory,
)
from neuroplastic.spikes import Surrogate, Triangle, spike
from neuroplastic.validation import require_non_negative, require_positive

__all__ = ["ALIF", "ALIFState"]


class ALIFState(NamedTuple):
    v: torch.Tensor  # membrane potential before the pending reset
    a: torch.Tensor  # threshold adaptation (spike trace)
    z: torch.Tensor  # spike of the previous step
    refractory: torch.Tensor  # remaining refractory time (ms)


@dataclass(frozen=True)
class ALIF(NeuronModel):
    """e-prop ALIF: leak ``tau_m``, adaptation ``tau_a`` (ms), threshold ``v_th``, strength ``beta``."""

    tau_m: float = 20.0
    tau_a: float = 2000.0
    v_th: float = 0.6
    beta: float = 0.0174
    t_ref: float = 5.0
    reset: ResetBySubtraction | ResetTo = ResetBySubtraction()
    surrogate: Surrogate = Triangle(gamma=0.3)

    State = ALIFState
    default_current = 0.05
    current_unit = "v_th/step"  # added to v each step
    default_dt = 1.0

    def __post_init__(self):
        super().__post_init__()
        require_positive("ALIF.v_th", self.v_th)
        require_non_negative("ALIF.beta", self.beta)

    def initial_values(self):
        return {"v": 0.0, "a": 0.0, "z": 0.0, "refractory": 0.0}

    def threshold(self, a):
        """The adaptive threshold ``A = v_th + β a``."""
        return self.v_th + self.beta * a

    def step(self, state, current, dt, noise=None):
        dt = check_dt(dt)
        v = self.reset(exp_decay(dt, self.tau_m) * state.v + current, state.z, self.v_th)
        a = exp_decay(dt, self.tau_a) * state.a + state.z
        held = refractory_mask(state.refractory, dt)
        z = spike((v - self.threshold(a)) / self.v_th, self.surrogate) * (~held)
        refractory = restart_refractory(state.refractory, z, self.t_ref, dt)
        return z, ALIFState(v, a, z, refractory)

    def crossing_potential(self, state):
        """``v_t / A_t``: the potential over the adaptive threshold it was compared with (``v`` is the
        potential before the next step's reset)."""
        return state.v / self.threshold(state.a)

    def pseudo_derivative(self, previous: ALIFState, state: ALIFState, dt: float) -> torch.Tensor:
        """``ψ_t = ∂z_t/∂v_t``: the surrogate derivative of the step ``previous → state`` (zero while
        refractory); ``∂z_t/∂a_t = −β ψ_t``."""
        held = refractory_mask(previous.refractory, check_dt(dt))
        return self.surrogate.derivative((state.v - self.threshold(state.a)) / self.v_th) / self.v_th * (~held)

    def hidden_jacobian(self, psi, dt: float, *, reset_path: bool):
        """``∂(v_{t+1}, a_{t+1})/∂(v_t, a_t)`` of each neuron given ``ψ_t``, other neurons' spikes held
        fixed — the factor by which eligibility traces decay (Bellec et al. 2020, Methods)::

            ∂v'/∂v = α − r v_th ψ     ∂v'/∂a = r v_th β ψ
            ∂a'/∂v = ψ                ∂a'/∂a = ρ − β ψ

        with ``r = 1`` when the reset's own path counts (``reset_path``: OSTL, exact BPTT of one
        layer) and ``r = 0`` as in e-prop. Returns ``(∂v'/∂v, ∂v'/∂a, ∂a'/∂v, ∂a'/∂a)``."""
        if not isinstance(self.reset, ResetBySubtraction):
            raise ValueError("eligibility traces are derived for ResetBySubtraction only, got "
                             f"{self.reset!r}")
        dt = check_dt(dt)
        alpha, rho = exp_decay(dt, self.tau_m), exp_decay(dt, self.tau_a)
        r = self.v_th if reset_path and not self.reset.detach else 0.0
        return alpha - r * psi, r * self.beta * psi, psi, rho - self.beta * psi
