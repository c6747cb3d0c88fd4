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

__all__ = ["EProp", "FactoredSum", "ReadoutGradient", "reverse_filter", "split_columns"]


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


class FactoredSum:
    """``Σ_t leftᵀ_t right_t`` over the steps an online learner adds (a rule's :meth:`EProp.factors`),
    as one matrix product per ``rows`` sample-steps: the factors of up to ``rows // B`` steps wait in a
    buffer, so a step costs two small copies instead of a ``(n, n_pre)`` product and sum of its own
    (memory constant in T). The same sum in another order: equal to the step-by-step one up to
    rounding."""

    def __init__(self, rows: int = 512):
        self.rows, self.buffers, self.filled, self.total = rows, None, 0, None

    def add(self, left: torch.Tensor, right: torch.Tensor) -> None:
        if self.buffers is None:
            steps = max(1, self.rows // left.shape[0])
            self.buffers = (left.new_empty((steps, *left.shape)), right.new_empty((steps, *right.shape)))
        lefts, rights = self.buffers
        lefts[self.filled].copy_(left)
        rights[self.filled].copy_(right)
        self.filled += 1
        if self.filled == len(lefts):
            self._flush()

    def take(self) -> torch.Tensor:
        """The sum of everything added since the last ``take`` (and start again)."""
        self._flush()
        total, self.total = self.total, None
        return total

    def _flush(self) -> None:
        if self.filled:
            lefts, rights = (b[:self.filled].flatten(0, 1) for b in self.buffers)
            self.total = lefts.T @ rights if self.total is None else self.total.addmm_(lefts.T, rights)
            self.filled = 0


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
        """This step's gradient as ``(left, right, state)`` with ``gradient = leftᵀ right`` (``left``
        ``(B, n)``, ``right`` ``(B, n_pre)``), where the trace factorizes and is not filtered
        (``readout_decay = 0``): no per-synapse tensor at all. ``None`` otherwise (use ``update``).
        An online learner sums many steps' factors in one product (:meth:`split` cuts it)."""
        if self.readout_decay != 0 or not self._factorized(info.neuron, info.dt):
            return None
        ev = info.pre.new_zeros(info.pre.shape) if state is None else state[0]
        ev = _leak(info.neuron, info.dt) * ev + info.pre
        return learning_signal * info.psi, ev, (ev, None, None, info.psi)

    def split(self, gradient, params) -> tuple:
        """``Σ leftᵀ right`` of :meth:`factors` as one gradient per parameter."""
        return split_columns(gradient, params)

    def update(self, info, state, params, *, learning_signal, **signals):
        factored = self.factors(info, state, params, learning_signal=learning_signal)
        if factored is not None:
            left, right, state = factored
            return self.split(left.T @ right, params), state
        pre, psi, neuron = info.pre, info.psi, info.neuron
        if state is None:
            per_synapse = (*psi.shape, pre.shape[-1])
            trace_shape = pre.shape if self._factorized(neuron, info.dt) else per_synapse
            state = (pre.new_zeros(trace_shape), pre.new_zeros(trace_shape), None, torch.zeros_like(psi))
        ev, ea, filtered, psi_prev = state
        if self._factorized(neuron, info.dt):
            ev = _leak(neuron, info.dt) * ev + pre
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
        """This step's gradient as ``(left, right, state)``, ``gradient = leftᵀ right``: the error and
        the filtered input with a last column for the bias (its filtered 1)."""
        pre = info.pre
        trace, bias_trace = (torch.zeros_like(pre), 0.0) if state is None else state
        trace = self.readout_decay * trace + pre
        bias_trace = self.readout_decay * bias_trace + 1.0
        right = torch.cat([trace, pre.new_full((*pre.shape[:-1], 1), bias_trace)], -1)
        return learning_signal, right, (trace, bias_trace)

    def split(self, gradient, params) -> tuple:
        """``Σ leftᵀ right`` of :meth:`factors` as ``(∇W, ∇b)``."""
        return gradient[:, :-1].contiguous(), gradient[:, -1].contiguous()

    def update(self, info, state, params, *, learning_signal, **signals):
        left, right, state = self.factors(info, state, params, learning_signal=learning_signal)
        return self.split(left.T @ right, params), state

    def sequence_update(self, info, state, params, *, learning_signal, **signals):
        filtered = reverse_filter(learning_signal, self.readout_decay)
        return (weight_gradient(filtered, info.pre), filtered.sum((0, 1))), state
