"""Few-shot meta-datasets and their N-way K-shot episodes.

A :class:`MetaDataset` holds its samples grouped by class, one store per meta-split
(``"train"``, ``"validation"``, ``"test"``) of shape ``(classes, samples_per_class, T, n_inputs)``;
the classes of the three splits are disjoint (the split is by class, not by sample), so a learner
meta-trained on the ``train`` classes is tested on classes it has never seen.

:meth:`MetaDataset.episodes` draws a batch of independent N-way K-shot episodes (Vinyals et al.
2016, "Matching networks for one shot learning"; the setting of Stewart & Neftci 2022,
"Meta-learning spiking neural networks with surrogate gradient descent", Neuromorph. Comput. Eng.
2:044002): each picks ``ways`` distinct classes of the split, relabels them ``0 … ways − 1`` in a
random order, and draws ``shots + queries`` distinct samples per class, the first ``shots`` for the
support set and the rest for the query set. Within an episode the data are time first,
``(T, samples, n_inputs)``, as the library's networks take them; the episode index leads, so
``torch.func.vmap`` maps an inner loop over the episodes.

``neuroplastic.tasks.load_meta_dataset(name, seed=…, **options)`` builds a registered meta-dataset:
``double-digits`` (no download, :func:`~neuroplastic.tasks.double_digits.double_digits`) and
``double-nmnist`` (local N-MNIST files, :func:`~neuroplastic.tasks.double_digits.double_nmnist`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch

from neuroplastic.validation import lookup, require_count, require_positive

__all__ = ["MetaDataset", "Episodes", "EpisodeIndex", "META_SPLITS"]

META_SPLITS = ("train", "validation", "test")
_STORED_DTYPES = (torch.float32, torch.float64, torch.uint8, torch.bool)


class EpisodeIndex(NamedTuple):
    """Which samples a batch of episodes holds: ``classes (count, ways)``, the split's class index
    behind each episode label (label ``i`` of episode ``e`` is class ``classes[e, i]``), and
    ``samples (count, ways, shots + queries)``, the sample index within its class, support first."""

    classes: torch.Tensor
    samples: torch.Tensor


class Episodes(NamedTuple):
    """A batch of ``count`` N-way K-shot episodes (``Q`` queries per class), class by class:

    - ``support_inputs (count, T, ways·K, n_inputs)``, ``support_targets (count, ways·K)`` int64,
    - ``query_inputs (count, T, ways·Q, n_inputs)``, ``query_targets (count, ways·Q)`` int64,

    labels in ``0 … ways − 1``; samples ``i·K … (i+1)·K − 1`` of the support set have label ``i``."""

    support_inputs: torch.Tensor
    support_targets: torch.Tensor
    query_inputs: torch.Tensor
    query_targets: torch.Tensor


@dataclass(frozen=True, eq=False)  # compared by identity: tensors have no single truth value
class MetaDataset:
    """Samples grouped by class for few-shot learning (see the module docstring).

    ``inputs[split]``: ``(classes, samples_per_class, T, n_inputs)`` float32, float64, uint8 or bool,
    dense or sparse COO, for each split in ``"train"``, ``"validation"``, ``"test"`` (all three, or
    any of them); ``class_ids[split]``: ``(classes,)`` int64, the dataset-wide identity of each
    class (default: consecutive numbers across the splits), which must not repeat across splits.
    ``dt`` is the duration of one step in ms. Episodes come back float32 (float64 if stored so).
    """

    name: str
    inputs: dict[str, torch.Tensor]
    dt: float
    class_ids: dict[str, torch.Tensor] | None = None
    _flat: dict[str, torch.Tensor] = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        require_positive("dt", self.dt)
        if not isinstance(self.inputs, dict) or not self.inputs:
            raise ValueError("MetaDataset inputs must be a non-empty dict {split: tensor}")
        unknown = sorted(set(self.inputs) - set(META_SPLITS))
        if unknown:
            raise ValueError(f"unknown meta-split {unknown[0]!r}; choose from {', '.join(META_SPLITS)}")
        shape = None
        for split, store in self.inputs.items():
            if not isinstance(store, torch.Tensor) or store.dim() != 4:
                raise ValueError(f"{self.name} {split} inputs must be a tensor of shape "
                                 "(classes, samples_per_class, T, n_inputs)")
            if store.dtype not in _STORED_DTYPES or store.layout not in (torch.strided, torch.sparse_coo):
                raise ValueError(f"{self.name} {split} inputs must be dense or sparse COO float32, float64, "
                                 f"uint8 or bool, got {store.dtype} ({store.layout})")
            if min(store.shape) == 0:
                raise ValueError(f"{self.name} {split} inputs have an empty dimension: {tuple(store.shape)}")
            if shape is not None and store.shape[2:] != shape:
                raise ValueError(f"{self.name} {split} samples have shape {tuple(store.shape[2:])}, "
                                 f"others {tuple(shape)} (T, n_inputs)")
            shape = store.shape[2:]
        object.__setattr__(self, "class_ids", self._checked_class_ids())
        object.__setattr__(self, "_flat", {split: _flattened(store) for split, store in self.inputs.items()})

    def _checked_class_ids(self) -> dict[str, torch.Tensor]:
        if self.class_ids is None:
            counts = [store.shape[0] for store in self.inputs.values()]
            starts = torch.tensor([0, *counts]).cumsum(0).tolist()
            return {split: torch.arange(start, start + n) for split, start, n in zip(self.inputs, starts, counts)}
        if set(self.class_ids) != set(self.inputs):
            raise ValueError(f"{self.name} class_ids must name the splits {', '.join(self.inputs)}")
        for split, ids in self.class_ids.items():
            expected = self.inputs[split].shape[:1]
            if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64 or ids.shape != expected:
                raise ValueError(f"{self.name} {split} class_ids must be an int64 vector of "
                                 f"{self.inputs[split].shape[0]} entries")
        every = torch.cat(list(self.class_ids.values()))
        if every.unique().numel() != every.numel():
            raise ValueError(f"{self.name} class_ids repeat: a class belongs to one split only")
        return self.class_ids

    @property
    def steps(self) -> int:
        """Number of time steps ``T`` per sample."""
        return next(iter(self.inputs.values())).shape[2]

    @property
    def n_inputs(self) -> int:
        return next(iter(self.inputs.values())).shape[3]

    def classes(self, split: str) -> int:
        """Number of classes in ``split``."""
        return self._store(split).shape[0]

    def samples_per_class(self, split: str) -> int:
        return self._store(split).shape[1]

    def _store(self, split: str) -> torch.Tensor:
        return lookup(f"{self.name} meta-split", split, self.inputs)

    def episode_index(self, split: str, *, ways: int, shots: int, queries: int, count: int,
                      generator: torch.Generator) -> EpisodeIndex:
        """The classes and samples of ``count`` episodes (see :class:`EpisodeIndex`), drawn from
        ``generator`` alone: the same generator state gives the same episodes."""
        store = self._store(split)
        n_classes, n_samples = store.shape[:2]
        ways, shots, queries, count = (require_count(name, value) for name, value in
                                       (("ways", ways), ("shots", shots), ("queries", queries), ("count", count)))
        if ways > n_classes:
            raise ValueError(f"ways = {ways} exceeds the {n_classes} classes of the {self.name} {split} split")
        if shots + queries > n_samples:
            raise ValueError(f"shots + queries = {shots + queries} exceeds the {n_samples} samples per class "
                             f"of {self.name}")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        # random permutations by sorting uniform draws: one tensor op for every episode at once
        classes = torch.rand(count, n_classes, generator=generator).argsort(-1)[:, :ways]
        samples = torch.rand(count, ways, n_samples, generator=generator).argsort(-1)[..., :shots + queries]
        return EpisodeIndex(classes, samples)

    def episodes(self, split: str, *, ways: int, shots: int, queries: int, count: int,
                 generator: torch.Generator) -> Episodes:
        """``count`` independent ``ways``-way ``shots``-shot episodes of ``split`` with ``queries``
        query samples per class (see :class:`Episodes` for the shapes), drawn from ``generator``
        alone. A one-line ValueError names a bad split or parameter: ``ways`` above the split's
        classes, ``shots + queries`` above the samples per class, a count below 1."""
        index = self.episode_index(split, ways=ways, shots=shots, queries=queries, count=count,
                                   generator=generator)
        drawn = self._gather(split, index)  # (count, ways, shots + queries, T, n_inputs)
        labels = torch.arange(ways).expand(count, ways)

        def time_first(part):  # (count, ways, k, T, n) → (count, T, ways·k, n), class by class
            c, w, k, t, n = part.shape
            return part.permute(0, 3, 1, 2, 4).reshape(c, t, w * k, n).contiguous()  # vmap's products need it

        def targets(k):
            return labels.repeat_interleave(k, dim=1)

        return Episodes(time_first(drawn[:, :, :shots]), targets(shots),
                        time_first(drawn[:, :, shots:]), targets(queries))

    def _gather(self, split: str, index: EpisodeIndex) -> torch.Tensor:
        store = self.inputs[split]
        flat_index = index.classes.unsqueeze(-1) * store.shape[1] + index.samples
        drawn = self._flat[split].index_select(0, flat_index.flatten())
        if drawn.is_sparse:
            drawn = drawn.to_dense()
        dtype = torch.float64 if store.dtype == torch.float64 else torch.float32
        return drawn.to(dtype).reshape(*flat_index.shape, *store.shape[2:])


def _flattened(store: torch.Tensor) -> torch.Tensor:
    """``store (classes, samples, T, n)`` as ``(classes·samples, T, n)``; sparse COO stays sparse."""
    classes, samples, steps, n_inputs = store.shape
    if not store.is_sparse:
        return store.reshape(classes * samples, steps, n_inputs)
    store = store.coalesce()
    index = store.indices()
    flat = torch.cat([(index[0] * samples + index[1]).unsqueeze(0), index[2:]])
    return torch.sparse_coo_tensor(flat, store.values(), (classes * samples, steps, n_inputs),
                                   check_invariants=True).coalesce()

