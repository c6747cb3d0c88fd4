"""Measurements that choose between kernels, taken once per machine and kept.

A choice by timing (:func:`~neuroplastic.fused.recurrent.pseudo_density`: where the backward's
masked product beats the dense one) changes which additions are done in which order, so two runs
of one seed that measured differently would not give the same bits. Each measurement is therefore
stored beside the compiled library (``<library>.calibration.json``, so a rebuilt kernel measures
anew; ``NEUROPLASTIC_CALIBRATION`` names another file), under the machine (CPU model, family and
model numbers, data caches, the instruction set PyTorch uses and the one the kernels run),
:data:`VERSION` and the measurement's key; every later process on that machine reads it instead of
timing again.
``NEUROPLASTIC_CALIBRATION=off`` measures in every process and keeps nothing (the behaviour before),
``NEUROPLASTIC_RECALIBRATE=1`` measures again and replaces what is kept (say, after a measurement taken
on a busy machine). Processes hold a lock on the file
(``fcntl``, where there is one) from reading to writing, so each key is measured once; the file is
replaced atomically, and an unreadable one, or an entry that is not a finite number, is measured over.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from neuroplastic.fused import extension

__all__ = ["remembered", "machine", "cpu_info", "generation", "caches", "VERSION"]

VERSION = 1  # of the measurements: a change to how they are taken makes every kept one stale
ENV, REFRESH = "NEUROPLASTIC_CALIBRATION", "NEUROPLASTIC_RECALIBRATE"
_lock = threading.Lock()


def cpu_info() -> dict[str, str]:
    """The fields of ``/proc/cpuinfo`` (``model name``, ``flags``, …), each as its first processor gives
    it; empty where there is no such file."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def generation(fields: dict[str, str]) -> str:
    """The CPU's family and model numbers from :func:`cpu_info`'s ``fields`` ("family 25 model 17"; "?"
    where one is missing): a virtual machine may name two generations of one vendor alike, "AMD EPYC"."""
    return f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"


def caches() -> dict[str, str]:
    """The first processor's data caches by level (``{"L1d": "32K", "L2": "1024K", "L3": "32768K"}``,
    from ``/sys/devices/system/cpu``); empty where they cannot be read."""
    found = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        if kind != "Instruction":
            found[f"L{level}{'d' if kind == 'Data' else ''}"] = size
    return found


def machine() -> str:
    """This CPU as a calibration's key: its model name, family and model numbers, data caches (a
    virtual machine may name two generations of one vendor alike, "AMD EPYC"), the vector instructions
    PyTorch picked and those the kernels run (``NEUROPLASTIC_ISA`` can hold them to another set)."""
    fields = cpu_info()
    model = fields.get("model name") or platform.processor() or platform.machine()
    cache = "".join(f"; {level} {size}" for level, size in caches().items())
    return (f"{model} ({generation(fields)}{cache}) / {torch.backends.cpu.get_cpu_capability()} / "
            f"kernels {extension.instruction_set()}")


def remembered(key: str, measure: Callable[[], float]) -> float:
    """The value kept for ``key`` on this machine, else ``measure()``, kept for the next process."""
    path = _file()
    if path is None:
        return float(measure())
    entry = f"v{VERSION} | {machine()} | {key}"
    with _lock, _file_lock(path):
        stored = _read(path)
        if _usable(stored.get(entry)) and os.environ.get(REFRESH, "") in ("", "0"):
            return float(stored[entry])
        stored[entry] = float(measure())
        _write(path, stored)
        return stored[entry]


def _file() -> Path | None:
    chosen = os.environ.get(ENV, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    library = extension.library()
    return None if library is None else library.with_name(library.name + ".calibration.json")


def _usable(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock on ``<path>.lock`` between processes, where ``fcntl`` exists and the folder is
    writable; else none (each process then keeps what it measured last)."""
    try:
        import fcntl

        handle = open(path.with_name(path.name + ".lock"), "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}


def _write(path: Path, stored: dict) -> None:
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(handle, "w") as file:
            json.dump(stored, file, indent=1, sort_keys=True)
        os.chmod(temporary, 0o644)  # readable by whoever shares the build cache, as the library is
        os.replace(temporary, path)
    except OSError:  # a read-only cache: the value holds for this process only
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
