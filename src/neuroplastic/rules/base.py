"""The rule interface: how weights change (after optax's gradient transformations).

A rule is a small object with two methods::

    rule_state = rule.init(params)
    updates, rule_state = rule.update(info, rule_state, params, **signals)

``params`` is a tuple of tensors and ``updates`` a tuple of the same shapes, or ``None`` when the
rule has nothing to apply this time (``every``, ``gate``). ``info`` says what the time loop has just
done; ``signals`` carry whatever a rule may use (a loss, a reward, a learning signal) and a rule
ignores the ones it does not need.

Two kinds of updates, as in optax: a **gradient rule** (BPTT, e-prop, DECOLLE, …) returns an
estimate of ``∂loss/∂θ``, which :func:`apply_updates` hands to any ``torch.optim`` optimizer as its
gradients (so optimizers and schedulers work unchanged), or which ``scale(−η)`` turns into a change;
a **plasticity rule** (STDP, Hebb, …) returns the change ``Δθ`` itself, which :func:`apply_changes`
adds. Transformations (:mod:`neuroplastic.rules.combinators`) act on either.

Online rules see one step at a time: ``info`` is a :class:`StepInfo` of the population whose
weights they change (presynaptic activity, postsynaptic spikes, voltage, surrogate derivative), so a
rule never reaches into a neuron's internals.

Gradient rules see time in segments: ``segment_steps`` is the length of the pieces the loop cuts a
sequence into (``None``: the whole sequence at once) and ``info`` is a :class:`Segment`. The
network's state crosses segment borders detached, so a rule's update depends on one segment alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = ["Rule", "Segment", "StepInfo", "apply_changes", "apply_updates", "count_changes", "segments"]


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, stop)`` of a sequence of ``steps`` steps have just run."""

    start: int
    stop: int
    steps: int

    @property
    def last(self) -> bool:
        return self.stop == self.steps


class StepInfo(NamedTuple):
    """One step ``t`` (0-based, of ``steps``) of one population, as the time loop hands it to a rule.

    ``pre`` is the presynaptic activity that reached the population's weights at this step
    ``(B, n_pre)`` — for synapses with state of their own (delays, filters) the activity arriving at
    the synapses, not the one the presynaptic neurons emitted (the synapse protocol's ``presynaptic``,
    :mod:`neuroplastic.synapses.protocol`); ``post`` the spikes the population emitted ``(B, n_post)``; ``voltage`` the membrane potential and ``psi`` the surrogate
    derivative ``∂z/∂v`` (``None`` when the population has none); ``neuron`` the population's model,
    whose ``hidden_jacobian`` tells eligibility traces how fast to decay.

    A whole-sequence rule (``sequence_update``) receives the same record with time-first tensors
    ``(T, B, n)`` and ``t = 0``.
    """

    t: int
    steps: int
    dt: float
    pre: torch.Tensor
    post: torch.Tensor
    voltage: torch.Tensor | None = None
    psi: torch.Tensor | None = None
    neuron: object = None

    @property
    def last(self) -> bool:
        return self.t == self.steps - 1


class Rule:
    """Abstract rule. ``segment_steps``: see the module docstring."""

    segment_steps: int | None = None

    def init(self, params):
        return None

    def update(self, info, state, params, **signals):
        raise NotImplementedError


def segments(steps: int, segment_steps: int | None):
    """The :class:`Segment` s that cut ``steps`` steps into pieces of ``segment_steps``."""
    size = steps if segment_steps is None else segment_steps
    return [Segment(start, min(start + size, steps), steps) for start in range(0, steps, size)]


def apply_updates(optimizer: torch.optim.Optimizer, params, updates) -> torch.Tensor | int:
    """Give the gradient estimates ``updates`` to ``optimizer`` as the gradients of ``params`` and take
    one step (nothing when ``updates`` is ``None``). Returns how many weights the step changed — with
    momentum, more than the nonzero entries of ``updates`` — as a tensor on the parameters' device
    (reading it is left to the caller, once per batch rather than once per update)."""
    if updates is None:
        return 0
    before = [param.detach().clone() for param in params]
    for param, update in zip(params, updates):
        param.grad = update
    optimizer.step()
    return sum((param.detach() != old).sum() for param, old in zip(params, before))


@torch.no_grad()
def apply_changes(params, changes) -> None:
    """Add the changes ``Δθ`` of a plasticity rule to ``params`` in place (nothing for ``None``). A change
    holding NaN or infinity is a clear error, raised before any parameter is changed: one sum of all the
    changes, read once (NaN and infinity reach it; finite changes whose sum overflows are looked at closer)."""
    if changes is None:
        return
    pairs = [(param, torch.as_tensor(change, device=param.device)) for param, change in zip(params, changes)]
    if not pairs:
        return
    total = pairs[0][1].sum()
    for _, change in pairs[1:]:
        total = total + change.sum().to(total.device)
    if not bool(torch.isfinite(total)):
        for index, (_, change) in enumerate(pairs):
            if not bool(torch.isfinite(change).all()):
                raise ValueError(f"non-finite change to parameter {index}: the plasticity rule's change holds NaN "
                                 f"or infinity (nothing was applied)")
    for param, change in pairs:
        param.add_(change)


def count_changes(updates) -> int:
    """How many weights ``updates`` changes: its nonzero entries (0 for ``None``)."""
    if updates is None:
        return 0
    return sum(int(torch.count_nonzero(u)) for u in updates)
