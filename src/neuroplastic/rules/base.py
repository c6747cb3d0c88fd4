"""The rule interface: how weights change (after optax's gradient transformations).

A rule is a small object with two methods::

    rule_state = rule.init(params)
    updates, rule_state = rule.update(info, rule_state, params, **signals)

``params`` is a tuple of tensors, ``updates`` a tuple of the same shapes — a descent direction, to
be applied by an optimizer (:func:`apply_updates` hands them to any ``torch.optim`` optimizer as its
gradients, so optimizers and schedulers work unchanged). ``info`` says what the time loop has just
done; ``signals`` carry whatever a rule may use (a loss, a reward, a learning signal) and a rule
ignores the ones it does not need.

Gradient rules see time in segments: ``segment_steps`` is the length of the pieces the loop cuts a
sequence into (``None``: the whole sequence at once) and ``info`` is a :class:`Segment`. The
network's state crosses segment borders detached, so a rule's update depends on one segment alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Rule", "Segment", "apply_updates", "segments"]


@dataclass(frozen=True)
class Segment:
    """Steps ``[start, stop)`` of a sequence of ``steps`` steps have just run."""

    start: int
    stop: int
    steps: int

    @property
    def last(self) -> bool:
        return self.stop == self.steps


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


def apply_updates(optimizer: torch.optim.Optimizer, params, updates) -> None:
    """Give ``updates`` to ``optimizer`` as the gradients of ``params`` and take one step."""
    for param, update in zip(params, updates):
        param.grad = update
    optimizer.step()
