"""What a network is trained to do: a loss, its derivative with respect to the readout, and a score.

An :class:`Objective` answers every question a trainer or a learning method asks of a task's loss, so
none of them compares task kinds:

- ``loss(readout, targets, segment)``: the loss of the steps ``[start, stop)`` of a sequence, weighted
  so that the segments of a sequence sum to its whole loss (what BPTT and truncated BPTT minimize);
- ``error(readout, targets, steps, t)``: ``∂E/∂y`` of that loss for the readout of step ``t`` (or of
  every step): the error online rules turn into learning signals, exact per step;
- ``step_weights(steps, batch, t)``: the weight of each step in a loss of per-step terms (the
  classification window), ``None`` where there is none (a reward needs one);
- ``evaluate(readout, targets)``: a batch's metrics, means over its samples; the first is the one
  a run reports (``test_accuracy``, ``test_nmse``).

:class:`Classification` is e-prop's cross-entropy of the readout at every step of the last
``loss_steps`` steps, decided by the arg-max of the readout averaged over them; :class:`Regression`
the mean squared error over every step. :class:`LossFunction` makes any differentiable
``loss(readout, targets)`` of the whole sequence an objective; its error comes from autograd, so it
serves BPTT and the whole-sequence mode of online rules, not per-step updates.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from neuroplastic.rules.base import Segment
from neuroplastic.training.losses import (mse, normalized_mse, readout_cross_entropies, readout_cross_entropy,
                                          window_logits)

__all__ = ["Objective", "Classification", "Regression", "LossFunction", "objective_for"]


class Objective:
    """Abstract objective; see the module docstring."""

    def loss(self, readout, targets, segment: Segment) -> torch.Tensor:
        raise NotImplementedError

    def error(self, readout, targets, steps: int, t: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def step_weights(self, steps: int, batch: int, t: int | None = None, dtype=torch.float32, device=None):
        return None

    def step_loss(self, y, targets, steps: int, t: int) -> torch.Tensor | float:
        """Step ``t``'s share of the loss, for a readout ``y`` ``(B, C)`` of that step (a tensor on
        ``y``'s device, or 0.0 outside the loss window: summed without reading it back to the host)."""
        raise NotImplementedError

    def evaluate(self, readout, targets) -> dict[str, float]:
        raise NotImplementedError


class Classification(Objective):
    """Cross-entropy of the readout over the last ``loss_steps`` steps (``None``: all)."""

    def __init__(self, loss_steps: int | None = None):
        self.loss_steps = loss_steps

    def _first(self, steps: int) -> int:
        return steps - (self.loss_steps or steps)

    def loss(self, readout, targets, segment):
        first = self._first(segment.steps)
        lo = max(segment.start, first)
        if lo >= segment.stop:
            return readout.sum() * 0.0
        inside = segment.stop - lo
        return readout_cross_entropy(readout, targets, inside) * inside / (segment.steps - first)

    def error(self, readout, targets, steps, t=None):
        probabilities = torch.softmax(readout, -1)  # minus the one-hot of the targets:
        error = probabilities.scatter_add(-1, targets.expand(readout.shape[:-1]).unsqueeze(-1),
                                          probabilities.new_full((1,), -1.0).expand(*readout.shape[:-1], 1))
        return error * self.step_weights(steps, readout.shape[-2], t, readout.dtype, device=readout.device)

    def step_weights(self, steps, batch, t=None, dtype=torch.float32, device=None):
        """``1/(W·B)`` in the window of the last ``W = loss_steps`` steps, 0 before (``(T, 1, 1)`` for
        every step if ``t`` is None), on ``device``."""
        window = self.loss_steps or steps
        if t is not None:
            return torch.full((), float(t >= steps - window) / (window * batch), dtype=dtype, device=device)
        inside = torch.arange(steps, device=device) >= steps - window
        return (inside.to(dtype) / (window * batch))[:, None, None]

    def step_loss(self, y, targets, steps, t):
        if t < self._first(steps):
            return 0.0
        return readout_cross_entropy(y[None], targets).detach() / (self.loss_steps or steps)

    def decide(self, readout) -> torch.Tensor:
        """Each sample's class: the arg-max of its readout averaged over the window ``(B,)``."""
        return window_logits(readout, self.loss_steps).argmax(-1)

    def evaluate(self, readout, targets):
        """Accuracy and the loss, the latter elementwise (:func:`readout_cross_entropies`, a population of
        one): ``cross_entropy``'s ``log_softmax`` runs one row of a few classes at a time, 1 ms of a digits
        test batch against a kernel of 0.8."""
        predicted = self.decide(readout)
        return {"accuracy": (predicted == targets).to(torch.float64).mean().item(),
                "loss": readout_cross_entropies(readout[None], targets, self.loss_steps)[0].item()}


class Regression(Objective):
    """Mean squared error of the readout against a target at every step."""

    def loss(self, readout, targets, segment):
        length = segment.stop - segment.start
        return mse(readout, targets[segment.start:segment.stop]) * length / segment.steps

    def error(self, readout, targets, steps, t=None):
        target = targets if t is None else targets[t]
        return 2.0 * (readout - target) / (steps * readout.shape[-2] * readout.shape[-1])

    def step_loss(self, y, targets, steps, t):
        return mse(y, targets[t]).detach() / steps

    def evaluate(self, readout, targets):
        return {"nmse": normalized_mse(readout, targets).item(), "loss": mse(readout, targets).item()}


class LossFunction(Objective):
    """``loss(readout, targets)`` of whole sequences as an objective; ``metrics(readout, targets)``
    (a dict, default ``{"loss": …}``) for evaluation."""

    def __init__(self, loss: Callable, metrics: Callable | None = None):
        if not callable(loss):
            raise ValueError(f"a loss must be callable (readout, targets) -> scalar tensor, got {loss!r}")
        self.function, self.metrics = loss, metrics

    def loss(self, readout, targets, segment):
        if segment.start != 0 or segment.stop != segment.steps:
            raise ValueError("a loss function of whole sequences cannot weigh segments (truncated BPTT, "
                             "online updates): give an Objective with loss(readout, targets, segment)")
        return self.function(readout, targets)

    def error(self, readout, targets, steps, t=None):
        if t is not None:
            raise ValueError("a loss function of whole sequences has no per-step error: run the method in "
                             "its whole-sequence mode, or give an Objective with error(readout, targets, steps, t)")
        with torch.enable_grad():
            y = readout.detach().requires_grad_()
            (grad,) = torch.autograd.grad(self.function(y, targets), y)
        return grad

    def step_loss(self, y, targets, steps, t):
        return 0.0

    def evaluate(self, readout, targets):
        if self.metrics is not None:
            return dict(self.metrics(readout, targets))
        return {"loss": float(self.function(readout, targets))}


def objective_for(task) -> Objective:
    """The default objective of a :class:`~neuroplastic.tasks.Task`: by its kind."""
    return Classification(task.loss_steps) if task.kind == "classification" else Regression()
