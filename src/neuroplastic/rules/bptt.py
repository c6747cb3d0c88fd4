"""Backpropagation through time (Werbos 1990) and its truncated form (Williams & Peng 1990).

BPTT is the exact gradient of the loss of a whole sequence through the unrolled network: the
reference every online rule approximates. Truncated BPTT cuts the sequence into segments of
``steps`` steps, carries the state across the cut without its gradient, and updates after each
segment from that segment's loss: memory is bounded by the segment, and dependencies longer than it
are not learned.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.validation import require_count

__all__ = ["BPTT", "TruncatedBPTT"]


def loss_gradients(loss: torch.Tensor, params) -> tuple[torch.Tensor, ...]:
    """``∂loss/∂θ`` for every parameter (zeros for those the loss does not reach)."""
    if not loss.requires_grad:
        return tuple(torch.zeros_like(p) for p in params)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads))


@dataclass(frozen=True)
class BPTT(Rule):
    """Exact gradients of the whole sequence's loss (signal ``loss``)."""

    segment_steps = None

    def update(self, info, state, params, *, loss, **signals):
        return loss_gradients(loss, params), state


@dataclass(frozen=True)
class TruncatedBPTT(Rule):
    """Gradients of each ``steps``-long segment's loss, the state carried across detached."""

    steps: int = 50

    def __post_init__(self):
        require_count("TruncatedBPTT steps", self.steps)

    @property
    def segment_steps(self) -> int:
        return self.steps

    def update(self, info, state, params, *, loss, **signals):
        return loss_gradients(loss, params), state
