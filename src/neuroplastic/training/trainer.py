"""The training loop: a task's batches through a method's learner, and evaluation.

:class:`Trainer` knows no method: each batch goes to ``learner.train_batch`` (the protocol of
:mod:`~neuroplastic.training.problem`), on the trainer's device. Evaluation runs whole sequences
without gradients and averages ``evaluate(readout, targets)`` (the objective's, or one of the
caller's) over the samples of a split.
"""
from __future__ import annotations

import resource
from collections.abc import Callable

import torch

from neuroplastic.networks import SpikingNetwork
from neuroplastic.networks.evaluation import counted_passes
from neuroplastic.neurobench import Workload
from neuroplastic.tasks import Task

__all__ = ["Trainer", "peak_memory_mb"]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Trainer:
    """Trains ``network`` on ``task`` through ``learner`` with ``optimizer``; ``evaluate(readout,
    targets) -> dict`` of a batch's metrics (means over its samples). With ``parallel`` (a
    :class:`~neuroplastic.training.distributed.DataParallel`), this process trains on its shard of
    every batch and the optimizer's steps apply the whole batch's reduced update."""

    def __init__(self, task: Task, network: SpikingNetwork, learner, optimizer: torch.optim.Optimizer, *,
                 evaluate: Callable, batch_size: int = 32, device=None, parallel=None):
        self.task, self.network, self.learner, self.optimizer = task, network, learner, optimizer
        self.evaluate_batch, self.batch_size = evaluate, batch_size
        self.device, self.parallel = device, parallel
        self._hook = None
        if parallel is not None:
            parallel.check_batches(len(task.train), batch_size)
            self._hook = parallel.attach(optimizer)

    def close(self) -> None:
        """Detach from the optimizer (a data-parallel run's reduction), which may outlive the trainer."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    @property
    def updates_applied(self) -> int:
        """Weights the optimizer steps changed (learners count on the device; read here)."""
        return int(self.learner.updates_applied)

    @property
    def synops(self) -> int:
        """Synaptic events of the learner's forward passes (counted on the device; read here), summed
        over the processes of a data-parallel run."""
        return int(self.learner.synops) if self.parallel is None else self.parallel.total(self.learner.synops)

    def _batches(self, split, batch_size, **options):
        for inputs, targets in self.task.batches(split, batch_size, **options):
            yield inputs.to(self.device), targets.to(self.device)

    def train_epoch(self, generator: torch.Generator, progress=None) -> float:
        """One pass over the training split in a shuffled order; the mean of the batch losses."""
        self.network.train()
        losses = []
        for inputs, targets in self._batches("train", self.batch_size, shuffle=True, generator=generator):
            if self.parallel is not None:
                inputs, targets = self.parallel.shard(inputs, targets, regression=self.task.kind == "regression")
            loss = self.learner.train_batch(inputs, targets, self.optimizer)
            losses.append(loss if self.parallel is None else self.parallel.mean(loss))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{losses[-1]:.4f}")
        return sum(losses) / len(losses)

    @torch.no_grad()
    def evaluate(self, split: str = "test") -> dict:
        """The split's metrics (means over its samples), ``spikes_per_sample`` (hidden events),
        ``bits_per_sample`` (the bits they carry: :func:`~neuroplastic.training.problem.traffic`) and
        ``neurobench`` (NeuroBench's metrics: :class:`~neuroplastic.neurobench.Workload`). A network
        of one layer fed spikes on the fused path runs in one kernel that writes only its readouts
        and spike counts (:func:`~neuroplastic.networks.evaluation.counted_passes`, prepared once for
        the split), any other its forward pass."""
        self.network.eval()
        totals, samples, workload = {}, 0, Workload(self.network)
        passes = counted_passes(self.network)
        for inputs, targets in self._batches(split, 256, shuffle=False):
            counted = None if passes is None else passes(inputs)
            if counted is None:
                output = self.network(inputs)
                workload.add(inputs, output)
                readout = output.readout
            else:
                workload.add_counted(inputs, counted)
                readout = counted.readout
            batch = inputs.shape[1]
            samples += batch
            for name, value in self.evaluate_batch(readout, targets).items():
                totals[name] = totals.get(name, 0.0) + float(value) * batch
        return {**{name: total / samples for name, total in totals.items()},
                "spikes_per_sample": workload.events / samples, "bits_per_sample": workload.bits / samples,
                "neurobench": workload.metrics()}
