"""What the commands' work shares: building a model from arguments, noise, plot paths, JSON output (their
arguments are in :mod:`neuroplastic.cli.arguments`)."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

from neuroplastic.devices import parse_device
from neuroplastic.neurons import MODELS
from neuroplastic.validation import (
    lookup,
    require_count,
    require_finite,
    require_non_negative,
    require_positive,
)

PLOT_SUFFIXES = (".png", ".pdf", ".svg")
# neuron, fi: the most time steps (--duration / --dt) one command simulates. Each step is a turn of the
# Python time loop and keeps ~2 KB of records, so 10**6 steps already take about a minute and 2 GB; more
# would run for many minutes or exhaust the memory.
MAX_STEPS = 10**6


class UsageError(ValueError):
    """A problem with what the user asked for; reported as one line and exit code 2."""


def device(args) -> torch.device:
    """The ``--device`` asked for, refused (exit 2) where this machine lacks it."""
    return parse_device(args.device)


def build_model(args):
    cls = lookup("model", args.model, MODELS)
    model = cls() if args.preset is None else _preset(cls, args.model, args.preset)
    changes = dict(_parse_param(text, model) for text in args.param)
    if args.noise:
        require_non_negative("--noise", args.noise)
        if "sigma" not in {f.name for f in dataclasses.fields(model)}:
            noisy = sorted(n for n, c in MODELS.items() if "sigma" in {f.name for f in dataclasses.fields(c)})
            raise UsageError(f"model {args.model!r} has no noise term; models with one: {', '.join(noisy)}")
        changes["sigma"] = args.noise
    return model.replace(**changes) if changes else model


def _preset(cls, name, preset):
    if not hasattr(cls, "preset"):
        raise UsageError(f"model {name!r} has no presets")
    return cls.preset(preset)


def _parse_param(text, model):
    name, sep, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(model)}
    if not sep:
        raise UsageError(f"--param expects NAME=VALUE, got {text!r}")
    if name not in fields or not isinstance(getattr(model, name), (int, float)):
        numeric = sorted(n for n in fields if isinstance(getattr(model, n), (int, float)))
        raise UsageError(f"unknown parameter {name!r} for {type(model).__name__}; choose from {', '.join(numeric)}")
    try:
        return name, require_finite(name, float(value))
    except ValueError:
        raise UsageError(f"parameter {name} must be a finite number, got {value!r}") from None


def time_step(args, model) -> float:
    return require_positive("--dt", model.default_dt if args.dt is None else args.dt)


def capped_duration(args, dt: float) -> float:
    """``--duration`` (ms), with a clear error unless it is positive, finite and at most ``MAX_STEPS``
    steps of ``dt``."""
    duration = require_positive("--duration", args.duration)
    steps = duration / dt  # inf where it overflows
    if not steps <= MAX_STEPS:
        raise UsageError(f"--duration / --dt is too many steps: {duration:g} ms / {dt:g} ms = {steps:.3g}, more than "
                         f"the {MAX_STEPS} a run simulates; give a shorter --duration or a larger --dt")
    return duration


def noise_seed(args) -> int:
    """``--seed``, a non-negative integer (as every command's seed)."""
    return require_count("--seed", args.seed, minimum=0)


def plot_path(text):
    if text is None:
        return None
    path = Path(text)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise UsageError(f"--plot must end in {', '.join(PLOT_SUFFIXES)}, got {text!r}")
    return path


def noise_generator(model, seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed) if getattr(model, "sigma", 0.0) > 0 else None


def emit(summary: dict, as_json: bool, lines: list[str]) -> None:
    """The command's report on stdout: one JSON line, or ``lines``; from process 0 only under torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank():
        return
    if as_json:
        print(json.dumps(summary, allow_nan=False))
    else:
        print("\n".join(lines))


def finite_floats(values):
    return [round(float(v), 6) if math.isfinite(v) else None for v in values]


def parse_option(text: str, flag: str):
    """``NAME=VALUE`` given to ``flag``, VALUE an int, a float, ``none``, ``true``, ``false`` or a word."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise UsageError(f"{flag} expects NAME=VALUE, got {text!r}")
    words = {"none": None, "true": True, "false": False}
    if value.lower() in words:
        return name, words[value.lower()]
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value
