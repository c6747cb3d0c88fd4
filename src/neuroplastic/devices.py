"""Where computation runs: naming a device, and random draws made where the model is.

A model's device is that of its parameters; every tensor a training step makes is made there (tested
with the ``meta`` device in ``tests/test_devices.py``). Draws made once (weights, feedback matrices)
come from CPU generators, so a seed gives the same network on every device; draws made at every
step (noise, a reward's actions, a chip's mismatch) come from a generator on the model's device,
seeded from the CPU one (:func:`generator_on`), so nothing crosses between devices per step.
"""
from __future__ import annotations

import re

import torch

__all__ = ["parse_device", "generator_on", "generator_for", "DEVICE_HELP"]

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
