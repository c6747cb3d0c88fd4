"""Spiking Heidelberg Digits from local files (Cramer, Stradmann, Schemmel & Zenke, "The Heidelberg
spiking data sets for the systematic evaluation of spiking neural networks", IEEE Transactions on
Neural Networks and Learning Systems 33(7), 2022, online 2020; arXiv 1910.07407). Nothing is
downloaded: point ``path`` at the unpacked files.

HDF5 layout of ``shd_train.h5`` / ``shd_test.h5``: ``spikes/times`` (variable-length float32, one
array per sample, seconds), ``spikes/units`` (variable-length uint16, the matching input channel),
``labels`` (uint16); 700 input channels (a cochlea model's hair cells), 20 classes (the digits
0–9 spoken in English and in German).

Binning follows the library's time convention, step ``k`` covering ``(k·dt, (k+1)·dt]``: a spike at
``t`` ms lands in step ``max(⌈t/dt⌉ − 1, 0)``; spikes after ``steps · dt`` are dropped, and spikes of
one channel in one step add up (inputs are spike counts). The default, 100 steps of 14 ms, covers
the first 1.4 s, as in the SHD tutorial of Zenke's spytorch. ``channels`` < 700 sums neighbouring
channels into that many (a divisor of 700: 140 sums groups of 5, as Hammouamri et al. 2023 do).
Inputs are stored sparse.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from neuroplastic.tasks.base import Split, Task, event_steps, event_tensor
from neuroplastic.validation import require_count, require_positive

__all__ = ["load_shd", "shd_task", "SHD_CHANNELS", "SHD_CLASSES", "SHD_FILES"]

SHD_CHANNELS = 700
SHD_CLASSES = 20
SHD_FILES = ("shd_train.h5", "shd_test.h5")


def load_shd(path, *, steps: int = 100, dt: float = 14.0, channels: int = SHD_CHANNELS) -> Split:
    """One SHD file as a :class:`Split` of ``(samples, steps, channels)`` spike counts and labels; a
    ValueError naming the file if it is missing, unreadable, truncated or inconsistent."""
    import h5py

    steps = require_count("steps", steps)
    dt = require_positive("dt", dt)
    group = _group_size(channels)
    path = Path(path)
    try:
        with h5py.File(path, "r") as file:
            times, units, labels = (file[key][()] for key in ("spikes/times", "spikes/units", "labels"))
    except KeyError as error:
        raise ValueError(f"{path}: not an SHD file, it lacks a dataset ({error}); expected "
                         "spikes/times, spikes/units and labels") from None
    except OSError as error:  # missing, not HDF5, truncated or corrupt
        raise ValueError(f"{path}: cannot read the HDF5 file ({error})") from None
    if not len(times) == len(units) == len(labels) > 0:
        raise ValueError(f"{path}: {len(times)} spike-time arrays, {len(units)} unit arrays and "
                         f"{len(labels)} labels; expected one of each per sample")
    counts = np.array([len(t) for t in times])
    if not np.array_equal(counts, [len(u) for u in units]):
        sample = int(np.flatnonzero(counts != [len(u) for u in units])[0])
        raise ValueError(f"{path}: sample {sample} has {counts[sample]} spike times but "
                         f"{len(units[sample])} units")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.min() < 0 or labels.max() >= SHD_CLASSES:
        raise ValueError(f"{path}: labels must lie in 0 … {SHD_CLASSES - 1}, got range "
                         f"[{labels.min()}, {labels.max()}]")
    ms = np.concatenate([np.asarray(t, dtype=np.float64) for t in times]) * 1000.0
    unit = np.concatenate([np.asarray(u, dtype=np.int64) for u in units])
    if not np.isfinite(ms).all() or (ms < 0).any():
        raise ValueError(f"{path}: spike times must be finite and non-negative")
    if unit.size and unit.max() >= SHD_CHANNELS:
        raise ValueError(f"{path}: unit {unit.max()} outside the {SHD_CHANNELS} input channels")
    sample = np.repeat(np.arange(len(labels)), counts)
    step = event_steps(ms, dt)
    kept = step < steps
    inputs = event_tensor(*(torch.from_numpy(a[kept]) for a in (sample, step, unit // group)),
                          (len(labels), steps, channels))
    return Split(inputs, torch.from_numpy(labels))


def _group_size(channels) -> int:
    channels = require_count("channels", channels)
    if SHD_CHANNELS % channels:
        raise ValueError(f"channels must divide the {SHD_CHANNELS} SHD channels (e.g. 700, 350, 140), got {channels}")
    return SHD_CHANNELS // channels


def shd_task(*, path=None, steps: int = 100, dt: float = 14.0, channels: int = SHD_CHANNELS) -> Task:
    """SHD from the folder ``path`` holding ``shd_train.h5`` and ``shd_test.h5``."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError("the shd task reads local files: pass path=<folder with shd_train.h5 and "
                         f"shd_test.h5> (the data are not downloaded here); got {path!r}")
    folder = Path(path)
    _group_size(channels)  # before reading anything
    train, test = (load_shd(folder / name, steps=steps, dt=dt, channels=channels) for name in SHD_FILES)
    return Task(name="shd", train=train, test=test, n_inputs=channels, n_outputs=SHD_CLASSES,
                dt=dt, kind="classification")
