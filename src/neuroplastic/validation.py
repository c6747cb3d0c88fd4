"""Checks that turn bad parameters and inputs into one clear error naming the problem.

A parameter may be a number or a tensor (per-neuron values, learnable ``nn.Parameter`` s): the checks
look at every element of a tensor, through the wrappers of any running ``torch.func`` transform
(:func:`neuroplastic.transforms.concrete`), so they are safe inside ``vmap`` and ``grad``. Numbers
come back as ``float``, tensors unchanged.
"""
from __future__ import annotations

import numbers

import torch

from neuroplastic.transforms import concrete

__all__ = [
    "require_finite",
    "require_positive",
    "require_non_negative",
    "require_count",
    "require_finite_tensor",
    "lookup",
]


def _checked(name: str, value, holds, requirement: str):
    """``value`` (a number as ``float``, a tensor unchanged) if ``holds`` of its values (a detached
    tensor) is true everywhere, else a clear error saying it must be ``requirement``."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
        values = concrete(value).detach()
        if not bool(holds(values).all()):
            shown = values[~holds(values)].flatten()[0].item()
            raise ValueError(f"{name} must be {requirement}, got a tensor of shape {tuple(values.shape)} "
                             f"holding {shown!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number or a tensor, got {value!r}")
    if not bool(holds(torch.tensor(float(value), dtype=torch.float64))):
        raise ValueError(f"{name} must be {requirement}, got {value!r}")
    return float(value)


def require_finite(name: str, value):
    return _checked(name, value, torch.isfinite, "finite")


def require_positive(name: str, value):
    return _checked(name, value, lambda x: torch.isfinite(x) & (x > 0), "finite and positive")


def require_non_negative(name: str, value):
    return _checked(name, value, lambda x: torch.isfinite(x) & (x >= 0), "finite and non-negative")


def require_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, with a clear error unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def require_finite_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` unchanged, or a clear error if any element (of any ``vmap`` ped sample) is NaN or
    infinite."""
    if not bool(torch.isfinite(concrete(tensor)).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def lookup(kind: str, name: str, registry: dict):
    """``registry[name]``, or a clear error naming the ``kind`` and the choices."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {kind} {name!r}; choose from {', '.join(registry)}") from None
