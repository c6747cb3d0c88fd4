"""What every task shares: a :class:`Split` of samples, a :class:`Task` of its splits, batching.

A task has a train and a test split, and may have a validation split (carved from the training
samples by :meth:`Task.with_validation`) for what must not see the test set: architecture search,
meta-learning, early stopping.

Storage is batch first, ``inputs`` of shape ``(samples, T, n_inputs)`` (float32 or float64: spikes,
spike counts per step or analog input); the network side of the library is time first, so
:meth:`Task.batches` hands out ``(T, B, n_inputs)``. Spike data too large to hold densely (long
sequences, many samples) is stored as a sparse COO tensor of the same shape, holding only the
spikes; :meth:`Task.batches` always returns dense batches.

Targets: classification, ``(samples,)`` int64 labels in ``0 … n_outputs − 1``; regression,
``(samples, T, n_outputs)`` of the inputs' dtype, one target per step (time first in a batch, like
the inputs).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from neuroplastic.validation import require_count, require_positive

__all__ = ["Split", "Task", "KINDS", "event_steps", "event_tensor"]

KINDS = ("classification", "regression")


@dataclass(frozen=True, eq=False)  # compared by identity: tensors have no single truth value
class Split:
    """Samples of one split: ``inputs (samples, T, n_inputs)`` float32 or float64, dense or sparse
    COO, and their ``targets`` (see the module docstring)."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self):
        inputs, targets = self.inputs, self.targets
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise ValueError("Split inputs must be a tensor of shape (samples, T, n_inputs)")
        if inputs.layout not in (torch.strided, torch.sparse_coo):
            raise ValueError(f"Split inputs must be dense or sparse COO, got layout {inputs.layout}")
        if inputs.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"Split inputs must be float32 or float64, got {inputs.dtype}")
        if not isinstance(targets, torch.Tensor) or targets.dim() == 0:
            raise ValueError("Split targets must be a tensor with one entry per sample")
        if targets.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"Split has {inputs.shape[0]} input samples but {targets.shape[0]} targets"
            )
        if inputs.shape[0] == 0:
            raise ValueError("Split has no samples")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, index: torch.Tensor) -> "Split":
        """The samples at ``index`` (a 1-D int64 tensor)."""
        return Split(self.inputs.index_select(0, index), self.targets.index_select(0, index))

    @property
    def steps(self) -> int:
        """Number of time steps ``T`` per sample."""
        return self.inputs.shape[1]


@dataclass(frozen=True, eq=False)
class Task:
    """A learning problem: train and test splits and how to read them.

    ``dt`` is the duration of one step in ms. For classification the loss and the decision use the
    last ``loss_steps`` steps of each sample (``None``: all steps), e.g. the 150 ms recall window of
    the e-prop cue task. ``validation`` is an optional third split.
    """

    name: str
    train: Split
    test: Split
    n_inputs: int
    n_outputs: int
    dt: float
    kind: Literal["classification", "regression"]
    loss_steps: int | None = None
    validation: Split | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        require_count("n_inputs", self.n_inputs)
        require_count("n_outputs", self.n_outputs)
        require_positive("dt", self.dt)
        steps = self.train.steps
        if self.loss_steps is not None and require_count("loss_steps", self.loss_steps) > steps:
            raise ValueError(f"loss_steps = {self.loss_steps} exceeds the {steps} steps of a sample")
        dtype = self.train.inputs.dtype
        for name, split in self.splits.items():
            if split.inputs.dtype != dtype:
                raise ValueError(f"{self.name} {name} inputs are {split.inputs.dtype}, the train inputs {dtype}")
            if split.inputs.shape[1:] != (steps, self.n_inputs):
                raise ValueError(
                    f"{self.name} {name} inputs have shape {tuple(split.inputs.shape)}; expected "
                    f"(samples, {steps}, {self.n_inputs})"
                )
            self._check_targets(name, split)

    def _check_targets(self, name: str, split: Split) -> None:
        targets = split.targets
        if self.kind == "classification":
            if targets.dtype != torch.int64 or targets.dim() != 1:
                raise ValueError(f"{self.name} {name} labels must be an int64 vector (samples,)")
            if targets.min() < 0 or targets.max() >= self.n_outputs:
                raise ValueError(
                    f"{self.name} {name} labels must lie in 0 … {self.n_outputs - 1}, got range "
                    f"[{targets.min().item()}, {targets.max().item()}]"
                )
        elif (targets.dtype != split.inputs.dtype
              or targets.shape != (len(split), split.steps, self.n_outputs)):
            raise ValueError(
                f"{self.name} {name} regression targets must be {split.inputs.dtype} (as the inputs) of shape "
                f"({len(split)}, {split.steps}, {self.n_outputs}), got {targets.dtype} "
                f"{tuple(targets.shape)}"
            )

    # Data of one's own (neuroplastic.tasks.own, imported when called: it builds on this module)
    @classmethod
    def from_arrays(cls, x_train, y_train, x_test, y_test, *, layout: str, dt: float = 1.0,
                    n_classes: int | None = None, name: str = "own") -> "Task":
        """A classification task from arrays or tensors, ``layout`` ``"samples-first"`` or
        ``"time-first"``: :func:`neuroplastic.tasks.own.from_arrays`."""
        from neuroplastic.tasks.own import from_arrays
        return from_arrays(x_train, y_train, x_test, y_test, layout=layout, dt=dt, n_classes=n_classes, name=name)

    @classmethod
    def from_file(cls, path, *, name: str | None = None) -> "Task":
        """The task in an ``.npz`` file (``x_train``, ``y_train``, ``x_test``, ``y_test``, optional
        ``dt``; or events): :func:`neuroplastic.tasks.own.from_file`."""
        from neuroplastic.tasks.own import from_file
        return from_file(path, name=name)

    @classmethod
    def from_datasets(cls, train, test, *, dt: float = 1.0, steps: int | None = None, channels: int | None = None,
                      n_classes: int | None = None, name: str = "own") -> "Task":
        """A classification task from two datasets of ``(frames or events, label)`` — Tonic's with
        ``ToFrame`` among them: :func:`neuroplastic.tasks.own.from_datasets`."""
        from neuroplastic.tasks.own import from_datasets
        return from_datasets(train, test, dt=dt, steps=steps, channels=channels, n_classes=n_classes, name=name)

    @property
    def splits(self) -> dict[str, Split]:
        """The task's splits by name: ``train``, ``validation`` where it has one, ``test``."""
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: split for name, split in named.items() if split is not None}

    @property
    def dtype(self) -> torch.dtype:
        return self.train.inputs.dtype

    def to(self, dtype: torch.dtype) -> "Task":
        """This task with its inputs (and regression targets) in ``dtype`` (float32 or float64)."""
        def converted(split):
            targets = split.targets if self.kind == "classification" else split.targets.to(dtype)
            return Split(split.inputs.to(dtype), targets)
        return dataclasses.replace(self, **{name: converted(split) for name, split in self.splits.items()})

    def with_validation(self, fraction: float = 0.1, *, seed: int = 0) -> "Task":
        """This task with ``fraction`` of its training samples (drawn with ``seed``) moved to a
        validation split."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"the validation fraction must lie in (0, 1), got {fraction!r}")
        held = round(fraction * len(self.train))
        if not 0 < held < len(self.train):
            raise ValueError(f"a validation fraction of {fraction} of {len(self.train)} samples leaves a split empty")
        order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed), device="cpu")
        return dataclasses.replace(self, train=self.train.subset(order[held:].sort().values),
                                   validation=self.train.subset(order[:held].sort().values))

    def batches(self, split: str | Split, batch_size: int, *, shuffle: bool,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches ``(inputs, targets)`` with ``inputs`` dense and time first,
        ``(T, B, n_inputs)``; labels ``(B,)`` or regression targets ``(T, B, n_outputs)``.

        ``split`` is ``"train"``, ``"validation"``, ``"test"`` or a :class:`Split`. Every sample appears
        once; the last batch holds the remainder. ``shuffle`` draws a fresh order from ``generator``.
        """
        if isinstance(split, str):
            if split not in self.splits:
                raise ValueError(f"{self.name} has the splits {', '.join(self.splits)}, not {split!r}")
            split = self.splits[split]
        elif not isinstance(split, Split):
            raise ValueError(f"split must be a split's name or a Split, got {type(split).__name__}")
        batch_size = require_count("batch_size", batch_size)
        n = len(split)
        order = torch.randperm(n, generator=generator, device="cpu") if shuffle else torch.arange(n, device="cpu")
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            inputs = split.inputs.index_select(0, index)
            if inputs.is_sparse and inputs.sparse_dim() < 2:  # sparse over the samples alone
                inputs = inputs.to_dense()
            # stored events are laid out time first as they are made dense (a cue batch 107–140 → 55 ms,
            # without a copy after)
            inputs = inputs.transpose(0, 1)
            inputs = inputs.to_dense() if inputs.is_sparse else inputs.contiguous()
            targets = split.targets.index_select(0, index)
            if self.kind == "regression":
                targets = targets.transpose(0, 1).contiguous()
            yield inputs, targets


def event_steps(times: np.ndarray, dt: float) -> np.ndarray:
    """The step of each event at ``times`` (in the unit of ``dt``) under the library's time convention,
    step ``k`` covering ``(k·dt, (k+1)·dt]``: ``max(⌈t/dt⌉ − 1, 0)``, an event at 0 in the first step."""
    return np.maximum(np.ceil(times / dt) - 1, 0).astype(np.int64)


def event_tensor(sample: torch.Tensor, step: torch.Tensor, unit: torch.Tensor,
                 shape: tuple[int, int, int]) -> torch.Tensor:
    """Sparse COO float32 tensor of ``shape`` (samples, T, n_inputs) holding the number of events
    at each ``(sample, step, unit)``; events repeated in one bin add up."""
    index = torch.stack([sample.long(), step.long(), unit.long()])
    values = torch.ones(index.shape[1], dtype=torch.float32)
    return torch.sparse_coo_tensor(index, values, shape, check_invariants=True).coalesce()
