"""Where computation runs: naming a device, random draws made where the model is, and how the host's
memory is handed out.

A model's device is that of its parameters; every tensor a training step makes is made there (tested
with the ``meta`` device in ``tests/test_devices.py``). Draws made once (weights, feedback matrices)
come from CPU generators, so a seed gives the same network on every device; draws made at every
step (noise, a reward's actions, a chip's mismatch) come from a generator on the model's device,
seeded from the CPU one (:func:`generator_on`), so nothing crosses between devices per step.
"""
from __future__ import annotations

import ctypes
import os
import platform
import re

import torch

__all__ = ["parse_device", "generator_on", "generator_for", "keep_freed_memory", "DEVICE_HELP", "HEAP_ENV"]

HEAP_ENV = "NEUROPLASTIC_HEAP"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)

DEVICE_HELP = "cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(cpu|mps|cuda)(?::(\d+))?$")


def parse_device(text) -> torch.device:
    """The device named by ``text`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``; a ``torch.device`` passes
    through the same checks), refusing one this machine does not have with one line that says so."""
    name = str(text).strip().lower() if text is not None else "cpu"
    match = _PATTERN.match(name)
    if match is None:
        raise ValueError(f"unknown device {text!r}: choose {DEVICE_HELP}")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ValueError(f"device {name!r} asked for, but this machine has {count} CUDA device(s): "
                             f"cuda:0 … cuda:{count - 1}")
    elif kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' asked for, but Apple's Metal (MPS) is not available on this machine")
    elif kind == "cpu" and index not in (None, "0"):
        raise ValueError(f"unknown device {text!r}: the CPU has no index other than 0")
    return torch.device(name)


def generator_on(device, parent: torch.Generator | None) -> torch.Generator:
    """A generator on ``device`` seeded by one draw from ``parent`` (a CPU generator; ``None``: torch's
    global one). The same parent state gives the same seed on every device."""
    seed = int(torch.randint(2**62, (1,), generator=parent, device="cpu"))
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


def generator_for(device, generator: torch.Generator) -> torch.Generator:
    """``generator`` itself where it already lives on ``device`` (a CPU run draws exactly what it drew
    before), else a generator on ``device`` seeded from it (:func:`generator_on`)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda": the current one
        device = torch.device("cuda", torch.cuda.current_device())
    if generator.device.type == device.type and (device.index is None or generator.device.index == device.index):
        return generator
    return generator_on(device, generator)


def keep_freed_memory() -> bool:
    """Has glibc's allocator serve large blocks from its heap and keep the memory freed there, for the
    rest of the process (``mallopt``: no ``mmap`` for large blocks, no trimming); True where it did.

    glibc maps every block of 32 MB and more afresh and unmaps it when it is freed. A recurrent layer's
    tensors over a long sequence are that large — cue's currents, spikes and pseudo-derivatives, (T, B,
    N) each, 58 MB for a training batch — so every pass writes them into new pages, one page fault per
    4 KiB: cue's training forward over its test split 743 → 208 ms, one epoch of ``neuroplastic train``
    6.9 → 3.7–4.2 s (BENCHMARKS.md). The process then keeps its peak memory instead of handing it
    back. It governs glibc's main heap, which serves the thread that runs Python; large blocks that
    other threads allocate (their heaps hold 64 MB at most) are still mapped afresh. The command line
    calls this before a command runs; ``NEUROPLASTIC_HEAP=release`` keeps glibc's way. Elsewhere than
    glibc it does nothing."""
    setting = os.environ.get(HEAP_ENV, "keep").strip().lower()
    if setting not in ("keep", "release"):
        raise ValueError(f"{HEAP_ENV} must be keep or release, got {os.environ[HEAP_ENV]!r}")
    if setting == "release" or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
