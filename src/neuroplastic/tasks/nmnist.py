"""N-MNIST from local files (Orchard, Jayawant, Cohen & Thakor, "Converting static image datasets
to spiking neuromorphic datasets using saccades", Frontiers in Neuroscience 9:437, 2015). Nothing is
downloaded: point ``path`` at the unpacked ``Train/`` and ``Test/`` folders.

Layout: ``<split>/<digit>/<name>.bin``, one recording per file, the digit folder giving the label.
A file is a sequence of 40-bit events, 5 bytes each::

    byte 0: x (0–33)     byte 1: y (0–33)
    byte 2: bit 7 polarity (0 OFF, 1 ON), bits 6–0 timestamp bits 22–16
    bytes 3, 4: timestamp bits 15–0 (big-endian), in µs

An event with ``y = 240`` is not a pixel but a timestamp-overflow marker: it adds 2¹³ µs to every
later timestamp (Orchard's ``eventvision.py`` reader, as used by Tonic).

Binning: ``2 · 34 · 34 = 2312`` inputs, channel ``p · 1156 + y · 34 + x`` (OFF events first). With
the library's convention, step ``k`` covering ``(k·dt, (k+1)·dt]``, an event at ``t`` µs lands in
step ``max(⌈t/(1000 dt)⌉ − 1, 0)``; events after ``steps · dt`` are dropped and events of one
channel in one step add up. The default, 300 steps of 1 ms, covers the recording's three saccades
of about 100 ms each. Inputs are stored sparse.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from neuroplastic.tasks.base import Split, Task, event_steps, event_tensor
from neuroplastic.validation import require_count, require_positive

__all__ = ["load_nmnist", "read_nmnist_events", "nmnist_task", "SENSOR", "NMNIST_CHANNELS"]

SENSOR = 34  # pixels per side
NMNIST_CHANNELS = 2 * SENSOR * SENSOR
_OVERFLOW_Y = 240
_OVERFLOW_US = 2 ** 13


def read_nmnist_events(file) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, polarity, t_us)`` of one N-MNIST file (overflow markers applied and removed); a
    ValueError naming the file if it is empty, truncated or has events off the sensor."""
    file = Path(file)
    raw = np.fromfile(file, dtype=np.uint8).astype(np.int64)
    if raw.size == 0:
        raise ValueError(f"{file}: the file holds no events")
    if raw.size % 5:
        raise ValueError(f"{file}: {raw.size} bytes is not a whole number of 5-byte events "
                         "(truncated or not an N-MNIST file)")
    x, y, flags = raw[0::5], raw[1::5], raw[2::5]
    t_us = ((flags & 0x7F) << 16) | (raw[3::5] << 8) | raw[4::5]
    overflow = y == _OVERFLOW_Y
    t_us = t_us + _OVERFLOW_US * np.cumsum(overflow)
    pixel = ~overflow
    x, y, polarity, t_us = x[pixel], y[pixel], flags[pixel] >> 7, t_us[pixel]
    outside = (x >= SENSOR) | (y >= SENSOR)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(f"{file}: event {i} at (x, y) = ({x[i]}, {y[i]}) lies outside the "
                         f"{SENSOR}×{SENSOR} sensor (corrupt or not an N-MNIST file)")
    return x, y, polarity, t_us


def load_nmnist(folder, *, steps: int = 300, dt: float = 1.0, per_class: int | None = None) -> Split:
    """One N-MNIST split folder (``<digit>/*.bin``) as a :class:`Split` of ``(samples, steps,
    2312)`` event counts and labels, files in sorted order; ``per_class`` keeps the first files
    of each digit."""
    steps = require_count("steps", steps)
    dt = require_positive("dt", dt)
    if per_class is not None:
        per_class = require_count("per_class", per_class)
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder (expected <split>/<digit>/*.bin)")
    digits = sorted(p for p in folder.iterdir()
                    if p.is_dir() and len(p.name) == 1 and p.name.isdigit())
    if not digits:
        raise ValueError(f"{folder}: no digit folders 0 … 9 (expected <split>/<digit>/*.bin)")
    files = [(int(d.name), f) for d in digits for f in sorted(d.glob("*.bin"))[:per_class]]
    if not files:
        raise ValueError(f"{folder}: the digit folders hold no .bin files")
    samples, steps_, channels = [], [], []
    for i, (_, file) in enumerate(files):
        x, y, polarity, t_us = read_nmnist_events(file)
        step = event_steps(t_us, 1000.0 * dt)
        kept = step < steps
        samples.append(np.full(int(kept.sum()), i))
        steps_.append(step[kept])
        channels.append((polarity * SENSOR * SENSOR + y * SENSOR + x)[kept])
    inputs = event_tensor(*(torch.from_numpy(np.concatenate(c)) for c in (samples, steps_, channels)),
                          (len(files), steps, NMNIST_CHANNELS))
    return Split(inputs, torch.tensor([label for label, _ in files], dtype=torch.int64))


def nmnist_task(*, path=None, steps: int = 300, dt: float = 1.0, per_class: int | None = None) -> Task:
    """N-MNIST from the folder ``path`` holding ``Train/`` and ``Test/``."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError("the nmnist task reads local files: pass path=<folder with Train/ and "
                         f"Test/> (the data are not downloaded here); got {path!r}")
    folder = Path(path)
    train, test = (load_nmnist(folder / name, steps=steps, dt=dt, per_class=per_class)
                   for name in ("Train", "Test"))
    return Task(name="nmnist", train=train, test=test, n_inputs=NMNIST_CHANNELS, n_outputs=10,
                dt=dt, kind="classification")
