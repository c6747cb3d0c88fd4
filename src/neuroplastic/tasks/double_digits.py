"""Double digits: a few-shot meta-dataset of digit pairs, with no download, and its N-MNIST twin.

Stewart & Neftci (2022, "Meta-learning spiking neural networks with surrogate gradient descent",
Neuromorph. Comput. Eng. 2:044002) meta-train spiking networks on *Double N-MNIST*: two N-MNIST
digits side by side make one of 100 classes, the ordered pairs ``(a, b)``, and the classes are split
into meta-train / meta-validation / meta-test sets of 64 / 16 / 20. :func:`double_digits` builds the
same structure from scikit-learn's 8×8 digits (shipped with scikit-learn); :func:`double_nmnist`
builds it from local N-MNIST files.

Construction, all drawn from one generator seeded with ``seed``:

1. the 100 classes are permuted and cut into 64 / 16 / 20 for ``train`` / ``validation`` /
   ``test``. **The split is by class only**, as in the paper: the splits share no class, but one
   source digit image may appear in a train class ``(3, 7)`` and in a test class ``(3, 5)``;
2. for class ``(a, b)``, ``samples_per_class`` distinct pairs (an image of digit ``a``, an image of
   digit ``b``) are drawn from all such pairs without replacement, ``a`` on the left;
3. the pair is encoded as spikes (see each function). Spikes are drawn once, so every episode sees
   the same spike trains of a sample.

The class of dataset-wide identity ``10·a + b`` (in ``MetaDataset.class_ids``) is the pair
``(a, b)``: ``id // 10`` on the left, ``id % 10`` on the right.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from neuroplastic.coding import poisson_encode
from neuroplastic.tasks.base import event_steps
from neuroplastic.tasks.episodes import MetaDataset
from neuroplastic.tasks.nmnist import SENSOR, read_nmnist_events
from neuroplastic.validation import require_count, require_positive

__all__ = ["double_digits", "double_nmnist", "CLASS_SPLIT_SIZES", "DOUBLE_NMNIST_CHANNELS"]

CLASS_SPLIT_SIZES = {"train": 64, "validation": 16, "test": 20}
PAIR_CLASSES = 100
DOUBLE_NMNIST_CHANNELS = 2 * SENSOR * 2 * SENSOR  # polarity × 34 rows × 68 columns


class _Pairs(NamedTuple):
    """Class split ``{split: class ids (classes,)}``, and for class ``c = 10·a + b`` the source
    indices ``left[c], right[c] (samples_per_class,)`` of its digit-``a`` and digit-``b`` images."""

    split: dict[str, torch.Tensor]
    left: torch.Tensor
    right: torch.Tensor


def _class_split(generator: torch.Generator) -> dict[str, torch.Tensor]:
    order = torch.randperm(PAIR_CLASSES, generator=generator)
    split, start = {}, 0
    for name, size in CLASS_SPLIT_SIZES.items():
        split[name] = order[start:start + size].sort().values
        start += size
    return split


def _draw_pairs(labels: torch.Tensor, samples_per_class: int, generator: torch.Generator) -> _Pairs:
    """The class split and, per class ``(a, b)``, distinct (digit-a, digit-b) pairs of the sources
    labelled ``labels (sources,)``."""
    split = _class_split(generator)
    members = [torch.nonzero(labels == digit).flatten() for digit in range(10)]
    fewest = min(len(m) for m in members)
    if fewest == 0:
        raise ValueError(f"the source images hold no digit {[len(m) for m in members].index(0)}")
    if samples_per_class > fewest * fewest:
        raise ValueError(f"samples_per_class = {samples_per_class} exceeds the {fewest}² distinct pairs "
                         f"of the rarest digit's {fewest} images")
    left = torch.empty(PAIR_CLASSES, samples_per_class, dtype=torch.int64)
    right = torch.empty_like(left)
    for pair_class in range(PAIR_CLASSES):
        a, b = divmod(pair_class, 10)
        n_right = len(members[b])
        pair = torch.randperm(len(members[a]) * n_right, generator=generator)[:samples_per_class]
        left[pair_class] = members[a][pair // n_right]
        right[pair_class] = members[b][pair % n_right]
    return _Pairs(split, left, right)


def _double_digit_pixels(generator: torch.Generator, samples_per_class: int) -> tuple[torch.Tensor, _Pairs]:
    """``pixels (100, samples_per_class, 128)`` in ``[0, 1]``, each an 8×16 image (row-major) with
    the left digit in columns 0–7, and the pairs behind them (indices into ``load_digits()``)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32)  # (1797, 8, 8)
    pairs = _draw_pairs(torch.tensor(digits.target, dtype=torch.int64), samples_per_class, generator)
    pixels = torch.cat([images[pairs.left], images[pairs.right]], dim=-1)  # (100, S, 8, 16)
    return pixels.flatten(-2), pairs


def double_digits(*, seed: int = 0, steps: int = 20, dt: float = 1.0, max_rate_hz: float = 500.0,
                  samples_per_class: int = 20) -> MetaDataset:
    """Double digits: 100 classes of scikit-learn digit pairs as Poisson spikes (module docstring).

    A sample is an 8×16 image, the digit-``a`` image left of the digit-``b`` image, pixel counts
    0 … 16 scaled to ``x ∈ [0, 1]``: 128 inputs, input ``16·row + column``, the left digit in
    columns 0–7. Each pixel spikes in each of ``steps`` steps of ``dt`` ms with probability
    ``x · max_rate_hz · dt / 1000`` (:func:`neuroplastic.coding.poisson_encode`).

    Stores ``(classes, samples_per_class, steps, 128)`` uint8 per split, classes 64 / 16 / 20 for
    ``train`` / ``validation`` / ``test``; episodes come back float32.
    """
    steps = require_count("steps", steps)
    dt = require_positive("dt", dt)
    max_rate_hz = require_positive("max_rate_hz", max_rate_hz)
    samples_per_class = require_count("samples_per_class", samples_per_class, minimum=2)
    generator = torch.Generator().manual_seed(require_count("seed", seed, minimum=0))
    pixels, pairs = _double_digit_pixels(generator, samples_per_class)
    spikes = poisson_encode(pixels * max_rate_hz, steps, dt, generator)  # (steps, 100, S, 128)
    spikes = spikes.to(torch.uint8).permute(1, 2, 0, 3).contiguous()
    return MetaDataset(name="double-digits", dt=dt,
                       inputs={name: spikes[ids] for name, ids in pairs.split.items()},
                       class_ids=dict(pairs.split))


def double_nmnist(*, path=None, seed: int = 0, steps: int = 300, dt: float = 1.0,
                  samples_per_class: int = 20, per_digit: int | None = None) -> MetaDataset:
    """Double N-MNIST from the N-MNIST folder ``path`` (``<digit>/*.bin``, e.g. N-MNIST's ``Train/``;
    the format and the binning of :mod:`neuroplastic.tasks.nmnist`), as in Stewart & Neftci 2022.

    A sample overlays two recordings in time on a 34 × 68 sensor, the digit-``a`` recording as is and
    the digit-``b`` recording with its x coordinates shifted by 34: ``2 · 34 · 68 = 4624`` inputs,
    channel ``p · 2312 + y · 68 + x`` (OFF events first); an event at ``t`` µs lands in step
    ``max(⌈t/(1000 dt)⌉ − 1, 0)``, later than ``steps`` steps it is dropped, events of one channel in
    one step add up. ``per_digit`` keeps the first files (sorted) of each digit; only the files of
    the drawn pairs are read. Stores ``(classes, samples_per_class, steps, 4624)`` sparse COO float32.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError("double-nmnist reads local files: pass path=<N-MNIST folder with <digit>/*.bin> "
                         f"(the data are not downloaded here); got {path!r}")
    steps = require_count("steps", steps)
    dt = require_positive("dt", dt)
    samples_per_class = require_count("samples_per_class", samples_per_class, minimum=2)
    if per_digit is not None:
        per_digit = require_count("per_digit", per_digit)
    files = _digit_files(Path(path), per_digit)
    labels = torch.tensor([digit for digit, _ in files], dtype=torch.int64)
    generator = torch.Generator().manual_seed(require_count("seed", seed, minimum=0))
    pairs = _draw_pairs(labels, samples_per_class, generator)
    events = {}  # source index → (x, y, polarity, t_us), read once

    def read(source: int):
        if source not in events:
            events[source] = read_nmnist_events(files[source][1])
        return events[source]

    index = []
    for (pair_class, sample), left, right in zip(np.ndindex(*pairs.left.shape), pairs.left.flatten().tolist(),
                                                 pairs.right.flatten().tolist()):
        for source, shift in ((left, 0), (right, SENSOR)):
            x, y, polarity, t_us = read(source)
            step = event_steps(t_us, 1000.0 * dt)
            kept = step < steps
            channel = polarity * (2 * SENSOR * SENSOR) + y * (2 * SENSOR) + x + shift
            index.append(np.stack([np.full(int(kept.sum()), pair_class), np.full(int(kept.sum()), sample),
                                   step[kept], channel[kept]]))
    index = torch.from_numpy(np.concatenate(index, axis=1))
    shape = (PAIR_CLASSES, samples_per_class, steps, DOUBLE_NMNIST_CHANNELS)
    spikes = torch.sparse_coo_tensor(index, torch.ones(index.shape[1]), shape, check_invariants=True).coalesce()
    return MetaDataset(name="double-nmnist", dt=dt,
                       inputs={name: spikes.index_select(0, ids) for name, ids in pairs.split.items()},
                       class_ids=dict(pairs.split))


def _digit_files(folder: Path, per_digit: int | None) -> list[tuple[int, Path]]:
    """``(digit, file)`` of every ``<digit>/*.bin`` (sorted, the first ``per_digit`` of each)."""
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (expected <digit>/*.bin)")
    files = [(digit, file) for digit in range(10)
             for file in sorted((folder / str(digit)).glob("*.bin"))[:per_digit]]
    missing = sorted(set(range(10)) - {digit for digit, _ in files})
    if missing:
        raise ValueError(f"{folder}: no .bin files of digit {missing[0]} (double-nmnist needs all ten "
                         "in <digit>/*.bin)")
    return files
