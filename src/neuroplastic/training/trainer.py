"""The training loop: a task, a network, a rule and a ``torch.optim`` optimizer.

Each batch runs through the network one segment at a time (the rule's ``segment_steps``; the whole
sequence for BPTT), the segment's loss goes to the rule as a signal, the rule's updates go to the
optimizer, and the state crosses into the next segment detached. Evaluation runs whole sequences
without gradients.
"""
from __future__ import annotations

import resource
from dataclasses import dataclass

import torch

from neuroplastic.networks import NetworkState, SpikingNetwork
from neuroplastic.rules import Rule, apply_updates, segments
from neuroplastic.tasks import Task
from neuroplastic.training.losses import (
    mse,
    normalized_mse,
    rate_regularization,
    readout_cross_entropy,
    window_logits,
)

__all__ = ["Trainer", "OnlineTrainer", "peak_memory_mb"]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synaptic_operations(network: SpikingNetwork, inputs, spikes) -> int:
    """Spikes times fan-out, summed over layers: the synaptic events of a forward pass (inputs
    ``(T, B, n_in)``, one spike tensor ``(T, B, n)`` per layer)."""
    total, pre = 0, inputs
    for layer, z in zip(network.layers, spikes):
        total += int(pre.sum()) * layer.size
        if layer.recurrent is not None:
            total += int(z[:-1].sum()) * layer.size
        pre = z
    return total + int(pre.sum()) * network.readout.size


def _detach(state):
    """The network state (nested tuples and NamedTuples of tensors) without its gradient history."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    parts = [_detach(part) for part in state]
    return type(state)(*parts) if hasattr(state, "_fields") else tuple(parts)


@dataclass
class Trainer:
    task: Task
    network: SpikingNetwork
    rule: Rule
    optimizer: torch.optim.Optimizer
    batch_size: int = 32
    rate_target_hz: float = 10.0
    rate_weight: float = 0.0

    def __post_init__(self):
        self.params = tuple(p for p in self.network.parameters() if p.requires_grad)
        self.rule_state = self.rule.init(self.params)
        self.updates_applied = 0  # weights each optimizer step changed, summed
        self.synops = 0  # synaptic operations of the training forward passes

    def segment_loss(self, output, targets, segment) -> torch.Tensor:
        """The task loss of steps ``[start, stop)``, weighted so that the segments sum to the loss
        of the whole sequence, plus the rate regularizer of the segment."""
        task, steps = self.task, segment.steps
        if task.kind == "classification":
            first = steps - (task.loss_steps or steps)
            lo = max(segment.start, first)
            if lo >= segment.stop:
                loss = output.readout.sum() * 0.0
            else:
                inside = segment.stop - lo
                loss = readout_cross_entropy(output.readout, targets, inside) * inside / (steps - first)
        else:
            length = segment.stop - segment.start
            loss = mse(output.readout, targets[segment.start : segment.stop]) * length / steps
        if self.rate_weight:
            loss = loss + self.rate_weight * rate_regularization(
                output.spikes, target_hz=self.rate_target_hz, dt=self.task.dt)
        return loss

    def train_batch(self, inputs, targets) -> float:
        state: NetworkState = self.network.init_state(inputs.shape[1:2], dtype=inputs.dtype)
        total = 0.0
        for segment in segments(inputs.shape[0], self.rule.segment_steps):
            output = self.network(inputs[segment.start : segment.stop], state)
            loss = self.segment_loss(output, targets, segment)
            updates, self.rule_state = self.rule.update(segment, self.rule_state, self.params, loss=loss)
            self.updates_applied += apply_updates(self.optimizer, self.params, updates)
            self.synops += synaptic_operations(self.network, inputs[segment.start : segment.stop], output.spikes)
            state = _detach(output.state)
            total += loss.item()
        return total

    def train_epoch(self, generator: torch.Generator, progress=None) -> float:
        self.network.train()
        losses = []
        for inputs, targets in self.task.batches("train", self.batch_size, shuffle=True, generator=generator):
            losses.append(self.train_batch(inputs, targets))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{losses[-1]:.4f}")
        return sum(losses) / len(losses)

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict:
        """``accuracy`` (classification) or ``nmse`` (regression), ``loss`` and ``spikes_per_sample``."""
        self.network.eval()
        correct = samples = spikes = 0
        loss_sum = error_sum = 0.0
        for inputs, targets in self.task.batches(split, 256, shuffle=False):
            output = self.network(inputs)
            batch = inputs.shape[1]
            samples += batch
            spikes += sum(z.sum().item() for z in output.spikes)
            if self.task.kind == "classification":
                predicted = window_logits(output.readout, self.task.loss_steps).argmax(-1)
                correct += (predicted == targets).sum().item()
                loss_sum += readout_cross_entropy(output.readout, targets, self.task.loss_steps).item() * batch
            else:
                loss_sum += mse(output.readout, targets).item() * batch
                error_sum += normalized_mse(output.readout, targets).item() * batch
        metrics = {"loss": loss_sum / samples, "spikes_per_sample": spikes / samples}
        if self.task.kind == "classification":
            metrics["accuracy"] = correct / samples
        else:
            metrics["nmse"] = error_sum / samples
        return metrics


@dataclass
class OnlineTrainer(Trainer):
    """The trainer of an online method (``rule``: an :class:`OnlineMethod` or :class:`RTRLMethod`):
    each batch through the method's learner in the method's mode."""

    generator: torch.Generator | None = None

    def __post_init__(self):
        self.learner = self.rule.learner(self.network, generator=self.generator, rate_weight=self.rate_weight,
                                         rate_target_hz=self.rate_target_hz)
        self.params = self.learner.params

    @property
    def updates_applied(self) -> int:
        return self.learner.updates_applied

    @property
    def synops(self) -> int:
        return self.learner.synops

    def train_batch(self, inputs, targets) -> float:
        if self.rule.mode == "online":
            return self.learner.online(self.task, inputs, targets, self.optimizer, apply_every=self.rule.apply_every)
        return self.learner.sequence(self.task, inputs, targets, self.optimizer)
