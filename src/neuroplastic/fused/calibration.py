"""Measurements that choose between kernels, taken once per machine and kept.

A choice by timing (:func:`~neuroplastic.fused.recurrent.pseudo_density`: where the backward's
masked product beats the dense one) changes which additions are done in which order, so two runs
of one seed that measured differently would not give the same bits. Each measurement is therefore
stored beside the compiled library (``<library>.calibration.json``, so a rebuilt kernel measures
anew), under the machine (CPU model and the instruction set PyTorch uses) and the measurement's key;
every later process on that machine reads it instead of timing again. Processes that measure the
same key at the same moment may each use their own value once; the file keeps one of them. The file
is rewritten atomically; an unreadable one is measured over.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from neuroplastic.fused import extension

__all__ = ["remembered", "machine"]

_lock = threading.Lock()


def machine() -> str:
    """This CPU as a calibration's key: its model name and the vector instructions PyTorch picked."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} / {torch.backends.cpu.get_cpu_capability()}"


def remembered(key: str, measure: Callable[[], float]) -> float:
    """The value kept for ``key`` on this machine, else ``measure()``, kept for the next process."""
    library = extension.library()
    if library is None:
        return measure()
    path = library.with_name(library.name + ".calibration.json")
    with _lock:
        stored = _read(path)
        entry = f"{machine()} | {key}"
        if entry in stored:
            return float(stored[entry])
        value = float(measure())
        stored = _read(path)  # another process may have written meanwhile: keep its entries
        stored.setdefault(entry, value)
        _write(path, stored)
        return float(stored[entry])


def _read(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _write(path: Path, stored: dict) -> None:
    try:
        handle, temporary = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(handle, "w") as file:
            json.dump(stored, file, indent=1, sort_keys=True)
        os.replace(temporary, path)
    except OSError:  # a read-only cache: the value holds for this process only
        pass
