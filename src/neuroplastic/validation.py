"""Checks that turn bad parameters and inputs into one clear error naming the problem.

A parameter may be a number or a tensor (per-neuron values, learnable ``nn.Parameter`` s): the checks
look at every element of a tensor, through the wrappers of any running ``torch.func`` transform
(:func:`neuroplastic.transforms.concrete`), so they are safe inside ``vmap`` and ``grad``. Numbers
come back as ``float``, tensors unchanged.
"""
from __future__ import annotations

import cmath
import inspect
import math
import numbers

import torch

from neuroplastic.transforms import concrete

__all__ = [
    "all_finite",
    "require_finite",
    "require_positive",
    "require_non_negative",
    "require_count",
    "require_finite_tensor",
    "lookup",
    "build_named",
]


_INT64 = (-(2**63), 2**63 - 1)  # the Python integers torch turns into numbers; larger ones overflow inside it


def _checked(name: str, value, sign: str | None = None):
    """``value`` (a number as ``float``, a tensor unchanged) if it is finite everywhere and, for ``sign``
    ``"positive"`` or ``"non-negative"``, so; else a clear error saying what it must be."""
    requirement = "finite" if sign is None else f"finite and {sign}"
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
        values = concrete(value).detach()
        holds = torch.isfinite(values)
        if sign is not None:
            holds &= values > 0 if sign == "positive" else values >= 0
        if not bool(holds.all()):
            raise ValueError(f"{name} must be {requirement}, got a tensor of shape {tuple(values.shape)} "
                             f"holding {values[~holds].flatten()[0].item()!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number or a tensor, got {value!r}")
    if isinstance(value, numbers.Integral) and not _INT64[0] <= value <= _INT64[1]:  # torch cannot take it
        raise ValueError(f"{name} must be {requirement}, got the integer {value!r}, beyond 64 bits (give a float)")
    number = float(value)
    if not math.isfinite(number) or (sign == "positive" and number <= 0) or (sign == "non-negative" and number < 0):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return number


def require_finite(name: str, value):
    return _checked(name, value)


def require_positive(name: str, value):
    return _checked(name, value, "positive")


def require_non_negative(name: str, value):
    return _checked(name, value, "non-negative")


def require_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, with a clear error unless it is an integer ``>= minimum`` (and below 2**63, as
    torch's sizes are)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value > _INT64[1]:
        raise ValueError(f"{name} must be an integer below 2**63, got {value!r}")
    return int(value)


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether no element of ``tensor`` (of any ``vmap`` ped sample) is NaN or infinite. Read off the sum
    first — one pass and no tensor of its size (``isfinite(x).all()`` makes four: on a 23M-element
    input, freshly mapped pages cost ~100 ms) — since a NaN or infinity leaves the sum NaN or
    infinite; element by element only where the sum is not finite (that, or finite values overflowing).
    The sum is judged as a Python number: ``torch.isfinite`` of one value is four more operations (a
    third of the evaluation pass's own time around its kernel on digits)."""
    values = concrete(tensor)
    if not (values.is_floating_point() or values.is_complex()) or cmath.isfinite(values.sum().item()):
        return True
    return bool(torch.isfinite(values).all())


def require_finite_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` unchanged, or a clear error if any element (of any ``vmap`` ped sample) is NaN or
    infinite."""
    if not all_finite(tensor):
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def lookup(kind: str, name: str, registry: dict):
    """``registry[name]``, or a clear error naming the ``kind`` and the choices."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None


def build_named(kind: str, name: str, registry: dict, seed: int, options: dict):
    """``registry[name](**options)``, with ``seed`` where the factory takes one: a clear error for an
    unknown name, an option the factory lacks, or a negative seed."""
    factory = lookup(kind, name, registry)
    parameters = inspect.signature(factory).parameters
    accepted = [p for p in parameters if p != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{kind} {name!r} has no option {', '.join(map(repr, unknown))}; options: "
                         f"{', '.join(accepted)}")
    if "seed" in parameters:
        options = {**options, "seed": require_count("seed", seed, minimum=0)}
    return factory(**options)
