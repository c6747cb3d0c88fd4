"""Numerical integrators, kept apart from the equations (as in Brian2).

A neuron model states its continuous dynamics over a tuple ``y`` of tensors in one of two forms:

- ``derivatives(y, current) -> dy/dt`` (any model), used by :class:`Euler` and :class:`RK4`;
- ``relaxation(y, current) -> (taus, targets)`` meaning ``dy/dt = (target − y)/τ`` with ``τ`` and
  ``target`` possibly depending on ``y``; used by :class:`Exponential`.

A model whose linear dynamics have a closed-form propagator states it as ``propagate(y, current,
dt)``, used by :class:`Exact`.

The exponential step ``y ← target + (y − target)·exp(−dt/τ)`` is exact for linear dynamics whose
input is held over the step (LIF under a step current) and is the exponential-Euler / Rush–Larsen
scheme otherwise (Rush & Larsen 1978; Hochbruck & Ostermann 2010).

White noise enters as an Euler–Maruyama increment (Kloeden & Platen 1992): for
``τ dV = (…)dt + σ √τ dW`` the step adds ``σ √(dt/τ) ξ`` with ``ξ ~ N(0, 1)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Integrator", "Euler", "RK4", "Exponential", "Exact", "noise_increment"]


class Integrator:
    """Advance ``y`` by one step ``dt`` of ``system``'s dynamics under ``current``."""

    def __call__(self, system, y: tuple, current, dt: float) -> tuple:
        raise NotImplementedError


def _axpy(y, dt, dy):
    return tuple(a + dt * b for a, b in zip(y, dy))


@dataclass(frozen=True)
class Euler(Integrator):
    """Forward Euler: ``y ← y + dt · f(y)``. First order."""

    def __call__(self, system, y, current, dt):
        return _axpy(y, dt, system.derivatives(y, current))


@dataclass(frozen=True)
class RK4(Integrator):
    """Classical fourth-order Runge–Kutta with the input held over the step."""

    def __call__(self, system, y, current, dt):
        k1 = system.derivatives(y, current)
        k2 = system.derivatives(_axpy(y, dt / 2, k1), current)
        k3 = system.derivatives(_axpy(y, dt / 2, k2), current)
        k4 = system.derivatives(_axpy(y, dt, k3), current)
        return tuple(
            a + dt / 6 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4)
        )


@dataclass(frozen=True)
class Exponential(Integrator):
    """Exact exponential step for ``dy/dt = (target − y)/τ``: ``y ← target + (y − target) e^{−dt/τ}``."""

    def __call__(self, system, y, current, dt):
        relaxation = getattr(system, "relaxation", None)
        if relaxation is None:
            raise ValueError(
                f"{type(system).__name__} has nonlinear dynamics; the exponential integrator needs a "
                "model with relaxation form (use Euler() or RK4())"
            )
        taus, targets = relaxation(y, current)
        return tuple(
            target + (value - target) * _decay(tau, dt) for value, tau, target in zip(y, taus, targets)
        )


@dataclass(frozen=True)
class Exact(Integrator):
    """Exact step of a linear system that states its own propagator ``propagate(y, current, dt)``."""

    def __call__(self, system, y, current, dt):
        propagate = getattr(system, "propagate", None)
        if propagate is None:
            raise ValueError(
                f"{type(system).__name__} states no exact propagator; use Euler(), RK4() or Exponential()"
            )
        return propagate(y, current, dt)


def _decay(tau, dt):
    if isinstance(tau, torch.Tensor):
        return torch.exp(-dt / tau)
    return math.exp(-dt / tau)


def noise_increment(sigma: float, tau: float, dt: float, noise: torch.Tensor) -> torch.Tensor:
    """Euler–Maruyama increment ``σ √(dt/τ) ξ`` of ``τ dV = … dt + σ √τ dW`` (``noise`` is ``ξ``)."""
    root = torch.sqrt(dt / tau) if isinstance(tau, torch.Tensor) else math.sqrt(dt / tau)
    return (sigma * root) * noise
