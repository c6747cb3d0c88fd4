"""SuperSpike (Zenke & Ganguli 2018, "SuperSpike: supervised learning in multilayer spiking neural
networks", Neural Comput. 30:1514–1541): a voltage-based three-factor rule for spike-train targets.

For output neuron ``i`` with membrane potential ``U_i``, surrogate derivative ``σ'(U_i)`` and
presynaptic spike trains ``S_j``::

    e_i    = α ∗ (S*_i − S_i)                    error: the van Rossum-filtered target minus output
    λ_ij   = α ∗ (σ'(U_i) · (ε ∗ S_j))           eligibility trace
    dw_ij/dt = r_ij e_i λ_ij

``ε`` and ``α`` are causal double-exponential kernels (:class:`DoubleExponential`, rise 5 ms and
decay 10 ms in the paper); ``r_ij`` is a per-synapse learning rate (:class:`RMSScale`).

**As a gradient.** On the grid ``t = 0 … T−1`` (step ``t`` ends at ``(t+1)·dt``) the rule returns
``−dt Σ_t e_t λ_t`` (summed over the batch), the gradient estimate of the discretized van Rossum loss
(:func:`van_rossum_loss`) ``L = (dt/2) Σ_t Σ_{b,i} (α ∗ (S_i − S*_i))_t²``; an optimizer step with
rate ``r`` is then the paper's ``Δw = r Σ_t e λ dt``. The identity: ``dL/dw_ij =
dt Σ_t (α∗(S−S*))_t (α ∗ dS_i/dw_ij)_t`` and, with the surrogate, ``dS_i/dw_ij = σ'(U_i) dU_i/dw_ij``.
If ``U_i = Σ_j w_ij (ε∗S_j) + (reset terms, gradient detached)``, then ``dU_i/dw_ij = ε∗S_j`` and
the rule *is* the gradient. This holds exactly (tested in float64 against autograd) when

- ``ε`` is the neuron's own postsynaptic potential: :class:`DoubleExponential` ``(τ_r, τ_d)`` is the
  PSP of ``CurrentLIF(tau_s=τ_r, tau_m=τ_d, resistance=1)`` to a unit current jump, read at the end
  of each step; the reset is by subtraction with its gradient detached and there is no refractory
  hold (a held or multiplicatively reset ``U`` no longer depends on ``w`` through ``ε∗S`` alone);
- the loss filters with the **same** ``α`` as the error ``e`` and the outer filter of ``λ`` — the
  double exponential sampled on the same grid, the current step included — and weighs the squared
  difference by ``dt/2``. The single-exponential ``training.losses.van_rossum_distance`` is another
  kernel: with it the rule is not its gradient (tested).

Two modes with one meaning (tested equal): ``update`` keeps ``ε∗S_j`` per presynaptic neuron and
``λ_ij`` per synapse (two exponential traces each, memory constant in T); ``sequence_update`` moves
``α`` onto the error, ``Σ_t e_t (α∗u)_t = Σ_t (ᾱ⋆e)_t u_t`` with the anti-causal filter ``ᾱ⋆``, so
the whole sequence is one matrix product ``Σ_t ((ᾱ⋆e)_t σ'(U_t))ᵀ (ε∗S)_t``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.rules.combinators import Transform
from neuroplastic.rules.eprop import reverse_filter, split_columns
from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.validation import require_finite, require_positive

__all__ = ["DoubleExponential", "RMSScale", "SuperSpike", "van_rossum_error", "van_rossum_loss"]


@dataclass(frozen=True)
class DoubleExponential:
    """The causal kernel ``k(t) = τ_r/(τ_d − τ_r) · (e^{−t/τ_d} − e^{−t/τ_r})`` (ms, ``0 < τ_r < τ_d``),
    sampled at ``t = (n+1)·dt`` for the input of ``n`` steps before: the membrane response of
    ``τ_d dU/dt = −U + I``, ``τ_r dI/dt = −I`` to a unit jump of ``I`` (area ``τ_r``). As traces,
    ``p^τ_t = e^{−dt/τ}(p^τ_{t−1} + x_t)`` and ``(k ∗ x)_t = τ_r/(τ_d − τ_r) · (p^{τ_d}_t − p^{τ_r}_t)``."""

    tau_rise: float = 5.0
    tau_decay: float = 10.0

    def __post_init__(self):
        require_positive("tau_rise", self.tau_rise)
        require_positive("tau_decay", self.tau_decay)
        if not self.tau_rise < self.tau_decay:
            raise ValueError(f"a double exponential needs tau_rise < tau_decay, got {self.tau_rise} and "
                             f"{self.tau_decay}")

    @property
    def gain(self) -> float:
        return self.tau_rise / (self.tau_decay - self.tau_rise)

    def decays(self, dt: float) -> tuple[float, float]:
        dt = require_positive("dt", dt)
        return math.exp(-dt / self.tau_decay), math.exp(-dt / self.tau_rise)

    def weights(self, steps: int, dt: float) -> torch.Tensor:
        """``k_n``, ``n = 0 … steps−1`` (float64)."""
        slow, fast = self.decays(dt)
        n = torch.arange(1, steps + 1, dtype=torch.float64)
        return self.gain * (slow**n - fast**n)

    def step(self, traces, x: torch.Tensor, dt: float):
        """One step of the two traces (``None``: at rest); returns ``((k ∗ x)_t, traces)``."""
        slow, fast = self.decays(dt)
        if traces is None:
            traces = (torch.zeros_like(x), torch.zeros_like(x))
        p_slow, p_fast = slow * (traces[0] + x), fast * (traces[1] + x)
        return self.gain * (p_slow - p_fast), (p_slow, p_fast)

    def filter(self, x: torch.Tensor, dt: float) -> torch.Tensor:
        """``k ∗ x`` over the first (time) dimension, from rest."""
        slow, fast = self.decays(dt)
        return self.gain * (slow * leaky_integrate(x, slow) - fast * leaky_integrate(x, fast))

    def reverse(self, x: torch.Tensor, dt: float) -> torch.Tensor:
        """The anti-causal ``y_t = Σ_{t' ≥ t} k_{t'−t} x_{t'}`` (the adjoint of :meth:`filter`)."""
        slow, fast = self.decays(dt)
        return self.gain * (slow * reverse_filter(x, slow) - fast * reverse_filter(x, fast))


def van_rossum_error(spikes: torch.Tensor, target: torch.Tensor, alpha: DoubleExponential,
                     dt: float) -> torch.Tensor:
    """SuperSpike's learning signal ``e = α ∗ (S* − S)`` of time-first spike trains ``(T, B, n)``."""
    if spikes.shape != target.shape:
        raise ValueError(f"spikes {tuple(spikes.shape)} and target {tuple(target.shape)} differ in shape")
    return alpha.filter(target - spikes, dt)


def van_rossum_loss(spikes: torch.Tensor, target: torch.Tensor, alpha: DoubleExponential,
                    dt: float) -> torch.Tensor:
    """``L = (dt/2) Σ_t Σ_{b,i} (α ∗ (S − S*))_t²``, the loss whose gradient SuperSpike is."""
    return 0.5 * dt * (van_rossum_error(spikes, target, alpha, dt) ** 2).sum()


def _check(info, learning_signal) -> None:
    if info.psi is None:
        raise ValueError("SuperSpike needs the surrogate derivative σ'(U) (StepInfo.psi)")
    if learning_signal.shape != info.psi.shape:
        raise ValueError(f"learning_signal {tuple(learning_signal.shape)} does not match the "
                         f"postsynaptic shape {tuple(info.psi.shape)}")
    if info.pre.shape[:-1] != info.psi.shape[:-1]:
        raise ValueError(f"pre {tuple(info.pre.shape)} and psi {tuple(info.psi.shape)} differ in their "
                         "leading (time, batch) dimensions")


@dataclass(frozen=True)
class SuperSpike(Rule):
    """SuperSpike eligibility × error (signal ``learning_signal`` = ``e``, ``(B, n_post)`` per step).

    ``params`` are the layer's weight matrices in the order of the columns of ``info.pre``
    (presynaptic spikes ``S_j``); ``info.psi`` is ``σ'(U_i)``. Returns gradient estimates."""

    epsilon: DoubleExponential = field(default_factory=DoubleExponential)
    alpha: DoubleExponential = field(default_factory=DoubleExponential)

    def update(self, info, state, params, *, learning_signal, **signals):
        _check(info, learning_signal)
        psp_traces, lam_traces = (None, None) if state is None else state
        psp, psp_traces = self.epsilon.step(psp_traces, info.pre, info.dt)
        lam, lam_traces = self.alpha.step(lam_traces, info.psi.unsqueeze(-1) * psp.unsqueeze(-2), info.dt)
        grad = -info.dt * torch.einsum("bi,bij->ij", learning_signal, lam)
        return split_columns(grad, params), (psp_traces, lam_traces)

    def sequence_update(self, info, state, params, *, learning_signal, **signals):
        """The sum of ``update`` over a whole sequence from rest (tensors ``(T, B, …)``)."""
        _check(info, learning_signal)
        psp = self.epsilon.filter(info.pre, info.dt)
        post = self.alpha.reverse(learning_signal, info.dt) * info.psi
        grad = -info.dt * torch.einsum("tbi,tbj->ij", post, psp)
        return split_columns(grad, params), state


@dataclass(frozen=True)
class RMSScale(Transform):
    """SuperSpike's per-synapse learning rate ``r_ij = r0/√(v_ij + eps)``, with ``v_ij`` a running
    mean of the squared updates it sees, ``v ← decay·v + (1 − decay)·u²`` (RMSprop, Tieleman & Hinton
    2012; Zenke & Ganguli 2018 scale each synapse's rate by an estimate of its recent squared
    gradient). Maps ``u ↦ r0 · u / √(v + eps)``; state ``v`` per parameter, zero at first."""

    r0: float = 1e-3
    decay: float = 0.99
    eps: float = 1e-8

    def __post_init__(self):
        require_positive("RMSScale r0", self.r0)
        require_positive("RMSScale eps", self.eps)
        if not 0.0 <= require_finite("RMSScale decay", self.decay) < 1.0:
            raise ValueError(f"RMSScale decay must lie in [0, 1), got {self.decay}")

    def update(self, info, state, params, *, updates=None, **signals):
        if updates is None:
            return None, state
        if state is None:
            state = tuple(torch.zeros_like(u) for u in updates)
        state = tuple(self.decay * v + (1.0 - self.decay) * u**2 for v, u in zip(state, updates))
        return tuple(self.r0 * u / torch.sqrt(v + self.eps) for u, v in zip(updates, state)), state
