"""Data-parallel training on ``torch.distributed``: one model, each process a shard of every batch.

Launched by ``torchrun`` (``torchrun --nproc_per_node=2 -m neuroplastic train ...``), every process
builds the same network and optimizer from the same seed and draws the same shuffled batches; process
``r`` of ``W`` trains on the ``r``-th of ``W`` contiguous slices of each batch (``torch.tensor_split``),
so an epoch sees the same samples whatever ``W`` is.

Updates are reduced where they are applied, the same for every method: a step pre-hook on the
optimizer (:meth:`DataParallel.attach`) replaces each process's gradient estimates ``g_r`` — the
gradients of BPTT, the eligibility-trace products of e-prop, DECOLLE, OSTL, ETL, RTRL, EqProp's
contrast — by ``Σ_r (n_r / B) g_r``, one ``all_reduce`` over one flat buffer, before the optimizer
moves. For a loss that is a mean over the batch (every objective's) this is the whole batch's update,
so ``W`` processes with ``B / W`` samples each take the steps one process takes with ``B``. Not
``DistributedDataParallel``: its hooks fire on ``backward()``, which the online rules never call and
BPTT's ``torch.autograd.grad`` bypasses. Exact (tested to 1e-10 in float64: BPTT, e-prop,
DECOLLE, OSTL, RTRL) where a method's update is a batch mean; per shard, and so not the one-process
run's, are the firing-rate regularizer (a square of the batch's mean rate), reward sampling (one draw
per sample from one generator), ETL (it quantizes errors scaled by the shard's size, and its
threshold follows the shard's trigger rate), dropout masks (each process its own stream), the
``clip`` and ``gate`` transforms of a gradient rule (they see the shard's gradient; a step that a
``gate`` or ``every`` skips on some processes only is decided together, :meth:`DataParallel.agree`)
and PAT's calibration. Every process starts from process 0's network. A checkpoint holds every
process's running state (ETL's threshold, a reward baseline: :meth:`DataParallel.gather`), and a run
resumed with as many processes continues each process's own (:meth:`DataParallel.own_state`).
Evaluation is not sharded: every process evaluates the whole split and gets the same numbers; only
process 0 writes files.
"""
from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist

__all__ = ["DataParallel", "end_process_group"]


class DataParallel:
    """This process's place in a data-parallel run, and the reductions it needs."""

    def __init__(self, rank: int, world_size: int, device: torch.device = torch.device("cpu"), *,
                 nccl: bool = False):
        self.rank, self.world_size = rank, world_size
        self.device = device  # where this process trains
        self.backend_device = device if nccl else torch.device("cpu")  # where the reductions' numbers live
        self.weight = 1.0  # n_r / B of the batch being trained

    @classmethod
    def from_environment(cls, device: torch.device) -> "DataParallel | None":
        """The run ``torchrun`` set up in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), its
        process group started (gloo on the CPU; NCCL on CUDA, one GPU per process: ``cuda`` means
        ``cuda:LOCAL_RANK``, made the current device) unless the caller already did — and left running
        for the process's later runs; ``None`` for one process. ``device`` is then this process's."""
        started = dist.is_available() and dist.is_initialized()
        if not started and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return None
        if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        if not started:
            if not dist.is_available():
                raise ValueError("WORLD_SIZE > 1 but this PyTorch has no torch.distributed")
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        parallel = cls(dist.get_rank(), dist.get_world_size(), device, nccl=dist.get_backend() == "nccl")
        return parallel if parallel.world_size > 1 else None

    @property
    def writes(self) -> bool:
        """Whether this process writes checkpoints, figures and the summary (process 0)."""
        return self.rank == 0

    def check_batches(self, samples: int, batch_size: int) -> None:
        """Every batch must give each process at least one sample."""
        smallest = min(batch_size, samples % batch_size or batch_size)
        if smallest < self.world_size:
            raise ValueError(f"a batch of {smallest} samples cannot be shared by {self.world_size} processes: "
                             f"choose a batch size whose last batch of the {samples} training samples has at "
                             f"least {self.world_size}")

    def shard(self, inputs: torch.Tensor, targets: torch.Tensor, *, regression: bool):
        """This process's slice of a batch (inputs ``(T, B, ...)``; targets ``(B,)`` or ``(T, B, ...)``
        for regression), and its weight ``n_r / B`` remembered for the reduction."""
        batch = inputs.shape[1]
        inputs = torch.tensor_split(inputs, self.world_size, dim=1)[self.rank]
        targets = torch.tensor_split(targets, self.world_size, dim=1 if regression else 0)[self.rank]
        self.weight = inputs.shape[1] / batch
        return inputs, targets

    def attach(self, optimizer: torch.optim.Optimizer):
        """Reduce the gradients every time ``optimizer`` steps; returns the hook's handle (``remove()``)."""
        return optimizer.register_step_pre_hook(lambda opt, args, kwargs: self.reduce_gradients(opt))

    def same_start(self, module: torch.nn.Module) -> None:
        """Every process starts from process 0's parameters and buffers (a network of one's own built
        without a common seed, a calibration on one shard)."""
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)

    def reseed(self, seed: int, epoch: int) -> None:
        """Processes other than 0 draw dropout and the like from a stream of their own per epoch (their
        shards would otherwise get process 0's masks sample for sample); process 0 keeps the stream a
        checkpoint holds. Exact on resume, per process."""
        if self.rank:
            torch.manual_seed(seed * 1_000_003 + self.rank * 7919 + epoch)

    def finish(self) -> None:
        """Wait until every process is done (process 0 writing the report), so that none leaves early."""
        dist.barrier()

    def reduce_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """``g ← Σ_r (n_r / B) g_r`` for every parameter with a gradient, in one ``all_reduce``."""
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads]) * self.weight
        dist.all_reduce(flat)
        for grad, reduced in zip(grads, torch.split(flat, [g.numel() for g in grads])):
            grad.copy_(reduced.view_as(grad))

    def agree(self, updates, params):
        """The updates every process steps with, decided together: ``None`` (no step) only when no
        process has any; otherwise a process without updates (a ``gate`` that passed nothing of its
        shard's gradient) takes part with zeros, so that every process reduces and steps."""
        stepping = torch.tensor([float(updates is not None)], device=self.backend_device)
        dist.all_reduce(stepping)
        if not stepping.item():
            return None
        return tuple(torch.zeros_like(p) for p in params) if updates is None else updates

    def gather(self, state) -> list:
        """Every process's ``state`` (a learner's running state), on every process, in rank order."""
        states = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def own_state(self, states: list | None, first):
        """This process's entry of ``states`` (a checkpoint's per-process running states) when the run
        has as many processes as the one that saved them; otherwise ``first`` (process 0's)."""
        return states[self.rank] if states is not None and len(states) == self.world_size else first

    def mean(self, value: float) -> float:
        """The batch's mean of a per-shard mean (a loss), on every process."""
        total = torch.tensor([value * self.weight], dtype=torch.float64, device=self.backend_device)
        dist.all_reduce(total)
        return float(total)

    def total(self, count) -> int:
        """The sum over processes of a count (synaptic events of each shard)."""
        total = torch.tensor([int(count)], dtype=torch.int64, device=self.backend_device)
        dist.all_reduce(total)
        return int(total)


def end_process_group(*, finished: bool = True) -> None:
    """Ends this process's process group, if one is open: what a script run under ``torchrun`` calls
    when it is done (the command line does). Gloo's worker threads release the tensors of finished
    collectives when they get to it; one doing so while Python shuts down aborts the process
    ("terminate called without an active exception": 6 runs in 12 here with two processes on one core).
    ``destroy_process_group`` alone does not stop them — the group lives on in reference cycles — so
    the cycles are collected here and the group's destructor joins its threads (0 aborts in 36 runs).
    ``finished``: every process ran to here, so they first meet at a barrier; after an error, no
    barrier (the others may never come)."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()
