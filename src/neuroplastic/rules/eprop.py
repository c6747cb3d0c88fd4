"""e-prop (Bellec et al. 2020, "A solution to the learning dilemma for recurrent networks of spiking
neurons", Nat. Commun. 11:3625) and OSTL (Bohnstingl et al. 2022, "Online spatio-temporal learning in
deep neural networks", IEEE TNNLS): gradients as eligibility traces times learning signals.

For a population with hidden state ``h = (v, a)`` per neuron (LIF: ``β = 0``) and presynaptic
activity ``x_t`` (inputs, and the population's own spikes ``z_{t−1}`` for recurrent synapses)::

    ε_t = J_t ε_{t−1} + (x_t, 0)             J_t = ∂h_t/∂h_{t−1}   (neuron.hidden_jacobian(ψ_{t−1}))
    e_t = ψ_t (ε^v_t − β ε^a_t)               eligibility trace of synapse i ← j
    ∇W_ij ≈ Σ_t L_t,i F_κ(e)_t,ij             F_κ(e)_t = κ F_κ(e)_{t−1} + e_t

``L`` is the learning signal (:mod:`neuroplastic.rules.signals`), ``F_κ`` the filter of a leaky
readout with decay ``κ`` (``readout_decay``; 0: none). e-prop drops the reset from ``J``
(``∂v_t/∂v_{t−1} = α``); OSTL keeps it (``reset_path=True``), which makes it exact BPTT for one
layer, the reset's gradient included. For LIF without the reset path the trace factorizes,
``e_t = ψ_t ⊗ ε_t`` with ``ε_t = α ε_{t−1} + x_t`` (one trace per presynaptic neuron).

Two modes with one meaning:

- ``update`` (online): one step; memory constant in sequence length — ``F_κ(e)`` is kept per synapse.
  Where the trace factorizes and is not filtered (``κ = 0``), ``factors`` gives a step's ``(L ψ, x)``
  instead, and an online learner sums the steps chunk by chunk in the order of the sequence mode
  (:class:`TracedSum`): no per-synapse tensor, no operation per step.
- ``sequence_update``: the whole sequence at once. Reordering the sums gives
  ``Σ_t L_t F_κ(e)_t = Σ_t (L̃_t ψ_t) · ε_t`` with the anti-causal filter ``L̃_t = Σ_{t'≥t} κ^{t'−t} L_t'``,
  and the adjoint of the trace recursion, ``λ_t = c_t + J_{t+1}ᵀ λ_{t+1}`` with
  ``c_t = L̃_t ψ_t (1, −β)``, turns it into one matrix product ``Σ_t λ^v_t x_tᵀ``: per-neuron
  recursions only, never a per-synapse tensor per step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.fused import workspace
from neuroplastic.fused.event_linear import weight_gradient
from neuroplastic.rules.base import Rule
from neuroplastic.sim.filters import reverse_leaky_integrate, runs_native
from neuroplastic.validation import require_finite

__all__ = ["EProp", "ReadoutGradient", "TracedSum", "reverse_filter", "split_columns"]


def reverse_filter(x: torch.Tensor, decay: float) -> torch.Tensor:
    """The anti-causal filter ``y_t = x_t + decay · y_{t+1}`` over the first (time) dimension."""
    return x if decay == 0 else reverse_leaky_integrate(x, decay)


def split_columns(grad: torch.Tensor, params) -> tuple[torch.Tensor, ...]:
    """Cut a gradient over concatenated presynaptic activity into one block per parameter."""
    widths = [p.shape[-1] for p in params]
    if sum(widths) != grad.shape[-1]:
        raise ValueError(f"presynaptic activity has {grad.shape[-1]} entries, the parameters "
                         f"{widths} columns")
    return tuple(g.contiguous() for g in grad.split(widths, dim=-1))


class TracedSum:
    """``Σ_t leftᵀ_t ε_t`` over the steps an online learner adds (a rule's ``factors``), where
    ``ε_t = leak · ε_{t−1} + pre_t`` is the trace of presynaptic activity ``pre_t`` from rest (``leak = 0``:
    the activity itself), with a last column of ones where ``bias`` (a bias's input). A step is two
    references kept, no operation. Every ``rows`` sample-steps the chunk's sum is taken in the order of
    the sequence mode, ``Σ_s λ_sᵀ pre_s + (leak λ_{t0})ᵀ ε_{t0−1}`` with ``λ_s = left_s + leak λ_{s+1}``
    within the chunk ``t0…t1``: spike by spike where ``pre`` is spikes (:func:`weight_gradient`), plus
    one ``(B, n)ᵀ (B, n_pre)`` product for the trace carried in, whose value at the chunk's end is carried
    on. Memory constant in T; equal to the step-by-step sum up to rounding."""

    def __init__(self, leak: float = 0.0, *, bias: bool = False, rows: int = 512):
        self.leak, self.bias, self.rows = leak, bias, rows
        self.lefts, self.pres, self.trace, self.total = [], [], None, None

    def add(self, left: torch.Tensor, pre: torch.Tensor) -> None:
        """One step's factors (tensors that no one changes afterwards)."""
        self.lefts.append(left)
        self.pres.append(pre)
        if len(self.lefts) * left.shape[0] >= self.rows:
            self._flush()

    def take(self) -> torch.Tensor:
        """The sum of everything added since the last ``take`` (and start again; the trace carries on)."""
        self._flush()
        total, self.total = self.total, None
        return total

    def _flush(self) -> None:
        if not self.lefts:
            return
        lefts, pres = torch.stack(self.lefts), torch.stack(self.pres)
        self.lefts, self.pres = [], []
        if self.bias:
            pres = torch.cat([pres, pres.new_ones((*pres.shape[:-1], 1))], -1)
        adjoint = reverse_filter(lefts, self.leak)
        total = weight_gradient(adjoint, pres)
        if self.leak:
            if self.trace is not None:
                total.addmm_(adjoint[0].T, self.trace, alpha=self.leak)
            steps = len(pres)  # ε_{t1} = leak^K ε_{t0−1} + Σ_s leak^{t1−s} pre_s, one weighted sum
            powers = self.leak ** torch.arange(steps - 1, -1, -1, dtype=pres.dtype, device=pres.device)
            carried = torch.tensordot(powers, pres, 1)
            self.trace = carried if self.trace is None else carried.add_(self.trace, alpha=self.leak ** steps)
        self.total = total if self.total is None else self.total.add_(total)


def _factorized_gradient(signal, psi, pre, kappa, alpha):
    """``Σ_t λ_tᵀ pre_t`` (spike by spike where ``pre`` is sparse) of the factorized trace's adjoint
    ``λ_t = α λ_{t+1} + ψ_t L̃_t``, ``L̃_t = κ L̃_{t+1} + L_t`` (``L̃``: :func:`reverse_filter` of the
    signal). Where no graph is built, ``λ`` comes from one C++ pass (``fused/leaky_filter.cpp``: the
    same operations in the same order as the two filters and the product) into a buffer of the
    workspace that the next batch reuses (its pages already mapped)."""
    graph = torch.is_grad_enabled() and any(t.requires_grad for t in (signal, psi, pre))
    if graph or psi.shape != signal.shape or not runs_native(signal, psi):
        return weight_gradient(reverse_filter(reverse_filter(signal, kappa) * psi, alpha), pre)
    lease = workspace.Lease(signal.shape, signal)  # given back when this returns: nothing else holds λ
    torch.ops.neuroplastic_fused.factorized_adjoint(signal.contiguous(), psi.contiguous(), float(kappa), float(alpha),
                                                    lease.buffer)
    return weight_gradient(lease.buffer, pre)


def _leak(neuron, dt):
    """``∂v_t/∂v_{t−1}`` without the reset path: the same for every ``ψ`` (a float, or a tensor of one
    per neuron)."""
    return neuron.hidden_jacobian(0.0, dt, reset_path=False)[0]


@dataclass(frozen=True)
class EProp(Rule):
    """Eligibility traces × learning signal (signal ``learning_signal``, ``(B, n)`` per step).

    ``params`` are the population's input weight matrices in the order of the columns of
    ``info.pre`` (e.g. ``(W_in, W_rec)`` for ``pre = [x_t, z_{t−1}]``). Returns gradient estimates.
    """

    readout_decay: float = 0.0
    reset_path: bool = False

    def __post_init__(self):
        if not 0.0 <= require_finite("readout_decay", self.readout_decay) < 1.0:
            raise ValueError(f"readout_decay must lie in [0, 1), got {self.readout_decay}")

    def _factorized(self, neuron, dt) -> bool:
        """No adaptation, no reset path, and one leak for all neurons (not one ``τ_m`` per neuron)."""
        if self.reset_path or isinstance(neuron.beta, torch.Tensor) or neuron.beta != 0:
            return False
        return isinstance(_leak(neuron, dt), float)

    def factors(self, info, state, params, *, learning_signal, **signals):
        """This step's gradient as ``(left, pre, state)``, where the trace factorizes and is not filtered
        (``readout_decay = 0``): ``gradient = leftᵀ ε`` with ``left = L ψ`` ``(B, n)`` and the presynaptic
        trace ``ε`` of ``pre`` ``(B, n_pre)``, which the sum of :meth:`factor_sum` keeps: no per-synapse
        tensor at all. ``None`` otherwise (use ``update``). An online learner sums many steps' factors at
        once (:meth:`split` cuts the sum)."""
        if self.readout_decay != 0 or not self._factorized(info.neuron, info.dt):
            return None
        return learning_signal * info.psi, info.pre, state

    def factor_sum(self, info) -> TracedSum:
        """What sums :meth:`factors` over the steps: the trace of ``pre`` with the neurons' leak."""
        return TracedSum(_leak(info.neuron, info.dt))

    def split(self, gradient, params) -> tuple:
        """The sum of :meth:`factors` as one gradient per parameter."""
        return split_columns(gradient, params)

    def update(self, info, state, params, *, learning_signal, **signals):
        pre, psi, neuron = info.pre, info.psi, info.neuron
        if state is None:
            per_synapse = (*psi.shape, pre.shape[-1])
            trace_shape = pre.shape if self._factorized(neuron, info.dt) else per_synapse
            state = (pre.new_zeros(trace_shape), pre.new_zeros(trace_shape), None, torch.zeros_like(psi))
        ev, ea, filtered, psi_prev = state
        if self._factorized(neuron, info.dt):
            ev = _leak(neuron, info.dt) * ev + pre
            if self.readout_decay == 0:  # no per-synapse tensor: (L ψ)ᵀ ε
                return self.split((learning_signal * psi).T @ ev, params), (ev, ea, None, psi)
            e = psi.unsqueeze(-1) * ev.unsqueeze(-2)
        else:
            jvv, jva, jav, jaa = (j.unsqueeze(-1) for j in
                                  neuron.hidden_jacobian(psi_prev, info.dt, reset_path=self.reset_path))
            ev, ea = jvv * ev + jva * ea + pre.unsqueeze(-2), jav * ev + jaa * ea
            e = psi.unsqueeze(-1) * (ev - neuron.beta * ea)
        filtered = e if self.readout_decay == 0 or filtered is None else self.readout_decay * filtered + e
        grad = torch.einsum("bi,bij->ij", learning_signal, filtered)
        return split_columns(grad, params), (ev, ea, filtered, psi)

    def sequence_update(self, info, state, params, *, learning_signal, **signals):
        """The sum of ``update`` over a whole sequence that starts from rest (tensors ``(T, B, …)``)."""
        pre, psi, neuron = info.pre, info.psi, info.neuron
        if self._factorized(neuron, info.dt):
            grad = _factorized_gradient(learning_signal, psi, pre, self.readout_decay, _leak(neuron, info.dt))
        else:
            adjoint = self._adjoint(reverse_filter(learning_signal, self.readout_decay) * psi, psi, neuron, info.dt)
            grad = weight_gradient(adjoint, pre)  # Σ_t adjoint_tᵀ pre_t, spike by spike where pre is sparse
        return split_columns(grad, params), state

    def _adjoint(self, g, psi, neuron, dt):
        """``λ^v_t`` of ``λ_t = c_t + J_{t+1}ᵀ λ_{t+1}``, ``c_t = g_t (1, −β)``, ``λ_T = 0``."""
        lam_v, lam_a = g[-1], -neuron.beta * g[-1]
        out = torch.empty_like(g)
        out[-1] = lam_v
        for t in range(g.shape[0] - 2, -1, -1):
            jvv, jva, jav, jaa = neuron.hidden_jacobian(psi[t], dt, reset_path=self.reset_path)
            lam_v, lam_a = g[t] + jvv * lam_v + jav * lam_a, -neuron.beta * g[t] + jva * lam_v + jaa * lam_a
            out[t] = lam_v
        return out


@dataclass(frozen=True)
class ReadoutGradient(Rule):
    """The exact gradient of a leaky readout ``y_t = κ y_{t−1} + W z_t + b`` (``params = (W, b)``)
    from the error ``∂E/∂y_t`` (signal ``learning_signal``) and the readout's input ``info.pre``."""

    readout_decay: float = 0.0

    def factors(self, info, state, params, *, learning_signal, **signals):
        """This step's gradient as ``(error, input, state)``: ``gradient = errorᵀ ε`` with ``ε`` the
        readout's filter of its input and of a last column of ones (the bias's), which the sum of
        :meth:`factor_sum` keeps."""
        return learning_signal, info.pre, state

    def factor_sum(self, info) -> TracedSum:
        """What sums :meth:`factors` over the steps: the input traced with the readout's leak, and a bias."""
        return TracedSum(self.readout_decay, bias=True)

    def split(self, gradient, params) -> tuple:
        """The sum of :meth:`factors` as ``(∇W, ∇b)``."""
        return gradient[:, :-1].contiguous(), gradient[:, -1].contiguous()

    def update(self, info, state, params, *, learning_signal, **signals):
        pre = info.pre
        trace, bias_trace = (torch.zeros_like(pre), 0.0) if state is None else state
        trace = self.readout_decay * trace + pre
        bias_trace = self.readout_decay * bias_trace + 1.0
        return (learning_signal.T @ trace, learning_signal.sum(0) * bias_trace), (trace, bias_trace)

    def sequence_update(self, info, state, params, *, learning_signal, **signals):
        filtered = reverse_filter(learning_signal, self.readout_decay)
        return (weight_gradient(filtered, info.pre), filtered.sum((0, 1))), state
