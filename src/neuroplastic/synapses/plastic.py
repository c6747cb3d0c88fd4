"""Plastic recurrent synapses: differentiable plasticity (Miconi, Clune & Stanley 2018, "Differentiable
plasticity: training plastic neural networks with backpropagation", ICML; written from the paper's
equations, not from its code).

Each connection ``i → j`` has a fixed weight ``w_ij`` and a plastic one, ``α_ij Hebb_ij``, whose
Hebbian trace changes *within* an episode while ``w``, ``α`` and the plasticity rule's coefficients
(``η``) are learned *across* episodes by backpropagation through whole episodes::

    I_j(n)     = Σ_i (w_ij + α_ij Hebb_ij(n)) x_i(n−1)
    Hebb_ij(n) = Hebb_ij(n−1) + ΔHebb_ij(x(n−1), x(n−1))

For recurrent synapses the pre- and the postsynaptic activity of the update are both the previous
step's activity ``x(n−1)``, the synapse's own input, so the synapse keeps its trace from its input
alone (the paper pairs ``x_i(n−2)`` with ``x_j(n−1)``; both put the latest co-activity into ``Hebb(n)``).
``ΔHebb`` is any plasticity rule of :mod:`neuroplastic.rules` (its equation kept there, once), applied
to ``Hebb`` as the weight, per sample of the batch (``torch.func.vmap``):

- :class:`DecayingHebb` (the paper's rule, the default): ``Hebb ← (1 − η) Hebb + η x_i x_j``;
- :class:`~neuroplastic.rules.Hebb`: ``Hebb ← Hebb + η x_i x_j``;
- :class:`~neuroplastic.rules.Oja` (the paper's Oja variant): ``Hebb ← Hebb + η x_j (x_i − x_j Hebb)``;
- :class:`~neuroplastic.rules.PairSTDP`: the pair-STDP change with its own pre/post traces.

The rule's real coefficients (``eta``; ``a_plus``, ``a_minus`` — not the time constants ``tau_*``,
which enter through ``math.exp``) become ``nn.Parameter`` s of the synapse, trained by gradient;
``learn`` names them explicitly. ``α`` is one scalar (a number or a 0-d tensor) or one value per
synapse (an ``(n, n)`` tensor). Spiking layers: with a :class:`~neuroplastic.synapses.Trace`
(``trace``) the Hebbian rule reads the exponential traces of the spikes instead of the spikes
themselves. Self-connections are masked out of ``w`` and ``α Hebb`` alike (as in
:class:`~neuroplastic.synapses.Recurrent`): with ``α = 0`` the synapse *is* ``Recurrent``, bit for bit.

The state ``(Hebb (B, n, n), trace (B, n) or (), rule state)`` lives in the layer's state (the synapse
protocol, :mod:`~neuroplastic.synapses.protocol`); ``sequence`` is ``T`` steps.
"""
from __future__ import annotations

import dataclasses
import numbers

import torch
from torch import nn
from torch.func import vmap

from neuroplastic.rules.base import Rule, StepInfo
from neuroplastic.rules.hebbian import DecayingHebb
from neuroplastic.synapses.dense import Recurrent
from neuroplastic.synapses.traces import Trace
from neuroplastic.validation import (
    require_count,
    require_finite_tensor,
    require_non_negative,
    require_positive,
)

__all__ = ["PlasticRecurrent"]


def _empty(state) -> bool:
    return isinstance(state, tuple) and len(state) == 0


def learnable_coefficients(rule: Rule) -> tuple[str, ...]:
    """The fields of ``rule`` that are real numbers, except the time constants ``tau_*``."""
    return tuple(f.name for f in dataclasses.fields(rule)
                 if not f.name.startswith("tau") and isinstance(getattr(rule, f.name), (numbers.Real, torch.Tensor))
                 and not isinstance(getattr(rule, f.name), bool))


class PlasticRecurrent(nn.Module):
    """Recurrent synapses among ``n`` neurons with fixed weights ``w`` (a :class:`Recurrent`, drawn as it
    draws them) and plastic weights ``α ⊙ Hebb`` (see the module docstring).

    ``rule``: the plasticity of ``Hebb`` (default :class:`DecayingHebb`); ``learn``: its coefficients to
    train (default: all but the time constants); ``alpha``: a number (one shared α) or a tensor of shape
    ``()`` or ``(n, n)``; ``trace``: filter the input through this trace before the Hebbian rule (spikes);
    ``dt``: ms per step (the rule's and the trace's).
    """

    def __init__(self, n: int, *, rule: Rule | None = None, alpha=0.0, learn: tuple[str, ...] | None = None,
                 trace: Trace | None = None, dt: float = 1.0, scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n = require_count("PlasticRecurrent n", n, minimum=2)
        self.fixed = Recurrent(self.n, scale=scale, generator=generator)
        self.rule = DecayingHebb() if rule is None else rule
        if not isinstance(self.rule, Rule) or not dataclasses.is_dataclass(self.rule):
            raise ValueError(f"PlasticRecurrent rule must be a plasticity rule (DecayingHebb, Hebb, Oja, PairSTDP), "
                             f"got {rule!r}")
        learn = learnable_coefficients(self.rule) if learn is None else tuple(learn)
        unknown = sorted(set(learn) - set(learnable_coefficients(self.rule)))
        if unknown:
            raise ValueError(f"PlasticRecurrent learn: {unknown} are not real coefficients of {type(self.rule).__name__} "
                             f"(choose from {learnable_coefficients(self.rule)})")
        self.coefficients = nn.ParameterDict({
            name: nn.Parameter(torch.as_tensor(require_non_negative(f"PlasticRecurrent {name}", getattr(self.rule, name)),
                                               dtype=torch.float32).detach().clone())
            for name in learn})
        self.alpha = nn.Parameter(self._checked_alpha(alpha))
        if trace is not None and not isinstance(trace, Trace):
            raise ValueError(f"PlasticRecurrent trace must be a neuroplastic.synapses.Trace or None, got {trace!r}")
        self.trace = trace
        self.dt = require_positive("PlasticRecurrent dt", dt)

    def _checked_alpha(self, alpha) -> torch.Tensor:
        if isinstance(alpha, torch.Tensor):
            if alpha.shape not in ((), (self.n, self.n)):
                raise ValueError(f"PlasticRecurrent alpha must have shape () or ({self.n}, {self.n}), "
                                 f"got {tuple(alpha.shape)}")
            return require_finite_tensor("PlasticRecurrent alpha", alpha.detach().clone().float())
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise ValueError(f"PlasticRecurrent alpha must be a number or a tensor, got {alpha!r}")
        return require_finite_tensor("PlasticRecurrent alpha", torch.tensor(float(alpha)))

    @property
    def weight(self) -> torch.Tensor:
        """The fixed weights ``w`` (self-connections masked)."""
        return self.fixed.weight

    def plastic_rule(self) -> Rule:
        """The rule with its learnable coefficients in place (checked: finite, non-negative)."""
        for name, value in self.coefficients.items():
            require_non_negative(f"PlasticRecurrent {name}", value)
        return dataclasses.replace(self.rule, **dict(self.coefficients.items()))

    def plastic_current(self, hebb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``Σ_i α_ij Hebb_ij x_i`` over ``i ≠ j`` ``(B, n)``: the whole product, less the self-connections
        (``diagonal``, no ``(n, n)`` mask per step)."""
        plastic = self.alpha * hebb
        return (plastic @ x[..., None])[..., 0] - plastic.diagonal(dim1=-2, dim2=-1) * x

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> tuple:
        """``Hebb = 0``, the trace at rest (``()`` without one), the rule's own state."""
        require_finite_tensor("PlasticRecurrent alpha", self.alpha)
        self.plastic_rule()
        hebb = torch.zeros(batch, self.n, self.n, dtype=dtype, device=device)
        trace = () if self.trace is None else self.trace.init((batch, self.n), dtype=dtype, device=device)
        rule_state = self.rule.init((hebb,))
        return (hebb, trace, () if rule_state is None else rule_state)

    def updated(self, state: tuple, x: torch.Tensor, rule: Rule | None = None) -> tuple:
        """The state after the input ``x`` ``(B, n)``: the trace steps, then the rule changes ``Hebb``."""
        hebb, trace, rule_state = state
        if x.dim() != 2 or x.shape[-1] != self.n:
            raise ValueError(f"PlasticRecurrent input must have shape (B, {self.n}), got {tuple(x.shape)}")
        if hebb.shape[0] != x.shape[0]:
            raise ValueError(f"PlasticRecurrent state holds {hebb.shape[0]} samples, the input {x.shape[0]}")
        activity = x if self.trace is None else self.trace.step(trace, x, self.dt)
        rule = self.plastic_rule() if rule is None else rule
        dt = self.dt

        def one_sample(weight, pre, rule_state):  # a rule's "no state yet" (None) is kept as () here
            info = StepInfo(0, 1, dt, pre[None], pre[None])
            (change,), rule_state = rule.update(info, None if _empty(rule_state) else rule_state, (weight,))
            return weight + change, () if rule_state is None else rule_state

        batched = vmap(one_sample, in_dims=(0, 0, None if _empty(rule_state) else 0))
        hebb, rule_state = batched(hebb, activity, rule_state)
        return (hebb, () if self.trace is None else activity, rule_state)

    def step(self, state: tuple, x: torch.Tensor, rule: Rule | None = None) -> tuple[torch.Tensor, tuple]:
        """``I = x (w + α Hebb(n))ᵀ`` with ``Hebb(n)`` already holding ``x``'s co-activity."""
        state = self.updated(state, x, rule)
        return self.fixed(x) + self.plastic_current(state[0], x), state

    def sequence(self, state: tuple, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        """``T`` steps of ``x`` ``(T, B, n)`` (the plastic weights change at every step)."""
        rule = self.plastic_rule()
        currents = []
        for x_t in x.unbind(0):
            current, state = self.step(state, x_t, rule)
            currents.append(current)
        return torch.stack(currents), state

    def presynaptic(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        return x

    def extra_repr(self) -> str:
        alpha = "per synapse" if self.alpha.dim() else "shared"
        return f"n={self.n}, rule={type(self.rule).__name__}, alpha={alpha}, learn={tuple(self.coefficients)}"
