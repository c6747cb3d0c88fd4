"""Checks that turn bad parameters and inputs into one clear error naming the problem."""
from __future__ import annotations

import math
import numbers

import torch

__all__ = [
    "require_finite",
    "require_positive",
    "require_non_negative",
    "require_count",
    "require_finite_tensor",
    "lookup",
]


def require_finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def require_positive(name: str, value) -> float:
    value = require_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return value


def require_non_negative(name: str, value) -> float:
    value = require_finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value!r}")
    return value


def require_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, with a clear error unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def require_finite_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def lookup(kind: str, name: str, registry: dict):
    """``registry[name]``, or a clear error naming the ``kind`` and the choices."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None
