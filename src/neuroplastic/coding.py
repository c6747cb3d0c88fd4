"""Spike coding: turning numbers into spike trains and spike trains back into firing rates.

Units: time in ms, ``dt`` explicit, rates in Hz; spike tensors are time first, ``(T, …)``, with step
``t`` covering the interval ``(t·dt, (t+1)·dt]``.

Encoders
    :func:`poisson_encode` (rate code: an independent Bernoulli draw per step, the discrete-time
    Poisson process) and :func:`latency_encode` (time-to-first-spike code: one spike, earlier for
    larger values).

Rate estimators (Dayan & Abbott, *Theoretical Neuroscience*, 2001, ch. 1.2; Gerstner et al.,
*Neuronal Dynamics*, 2014, ch. 7.2)
    the spike count over a window divided by its length (:func:`count_rate`), the same per time bin
    (:func:`binned_rate`), and the window-function estimate ``r(t) = Σ_f K(t − t_f)`` with a kernel
    ``K`` of unit area (:func:`kernel_rate`), computed as one convolution over time.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from neuroplastic.validation import (
    all_finite,
    require_count,
    require_finite,
    require_finite_tensor,
    require_positive,
)

__all__ = [
    "poisson_encode",
    "latency_encode",
    "count_rate",
    "binned_rate",
    "kernel_rate",
    "Kernel",
    "GaussianKernel",
    "RectangularKernel",
    "CausalExponentialKernel",
    "whole_steps",
]


def _float_tensor(name: str, values) -> torch.Tensor:
    if not isinstance(values, torch.Tensor):  # a tensor stays where it is
        try:
            values = torch.as_tensor(values)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be numbers (a tensor, an array or a list), got {values!r}") from None
    if values.is_complex():
        raise ValueError(f"{name} must be real, got a {values.dtype} tensor")
    if not values.is_floating_point():
        values = values.to(torch.get_default_dtype())
    if torch.isnan(values).any():
        raise ValueError(f"{name} contains NaN")
    return values


def whole_steps(name: str, ms: float, dt: float) -> int:
    """``ms / dt`` as a whole number of steps; a clear error unless ``ms`` is a multiple of dt."""
    ratio = require_finite(name, ms) / require_positive("dt", dt)
    if not math.isfinite(ratio):
        raise ValueError(f"{name} = {ms} ms is too many steps of dt = {dt} ms")
    steps = round(ratio)
    if abs(ratio - steps) > 1e-6 * max(1.0, steps) or (steps == 0 and ms != 0):
        raise ValueError(f"{name} = {ms} ms is not a multiple of dt = {dt} ms")
    return steps


# ---------------------------------------------------------------------------------------- encoders


def poisson_encode(rates_hz, steps: int, dt: float, generator: torch.Generator | None = None):
    """Poisson spike trains ``(steps, *rates.shape)``: spike with probability ``p = rate·dt/1000``.

    Each step is an independent Bernoulli trial, so the interspike intervals are geometric (the
    discrete form of the exponential), with mean ``dt/p`` and coefficient of variation ``√(1 − p)``.
    """
    dt = require_positive("dt", dt)
    steps = require_count("steps", steps)
    rates = _float_tensor("rates_hz", rates_hz)
    if (rates < 0).any():
        raise ValueError(f"rates_hz must be non-negative, got minimum {rates.min().item()} Hz")
    p = rates * (dt / 1000.0)
    if (p > 1).any():
        raise ValueError(
            f"rate·dt/1000 must be <= 1 (at most one spike per step): {rates.max().item()} Hz with "
            f"dt = {dt} ms gives {p.max().item()}; use a smaller dt"
        )
    draws = torch.rand((steps, *rates.shape), generator=generator, dtype=rates.dtype,
                       device=rates.device)
    return (draws < p).to(rates.dtype)


def latency_encode(values, steps: int, *, threshold: float = 0.0):
    """Latency code ``(steps, *values.shape)``: each value ``x ∈ [0, 1]`` spikes once, at step
    ``t = round((1 − x)(steps − 1))`` (1 at step 0, 0 at the last step, ties to even); values below
    ``threshold`` never spike."""
    steps = require_count("steps", steps)
    values = _float_tensor("values", values)
    if ((values < 0) | (values > 1)).any():
        raise ValueError(
            f"values must lie in [0, 1], got range [{values.min().item()}, {values.max().item()}]"
        )
    if (isinstance(threshold, bool) or not isinstance(threshold, numbers.Real)
            or not 0 <= threshold <= 1):
        raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
    times = torch.round((1.0 - values) * (steps - 1)).long()
    grid = torch.arange(steps, device=values.device).reshape(steps, *([1] * values.dim()))
    return ((grid == times) & (values >= threshold)).to(values.dtype)


# ----------------------------------------------------------------------------------- rate estimates


def _spike_tensor(spikes) -> torch.Tensor:
    if not isinstance(spikes, torch.Tensor) or spikes.dim() < 1:
        raise ValueError("spikes must be a tensor of shape (T, …) with time first")
    spikes = _float_tensor("spikes", spikes)
    require_finite_tensor("spikes", spikes)
    if (spikes < 0).any():
        raise ValueError("spikes must be non-negative (spike indicators or counts per step)")
    return spikes


def count_rate(spikes, dt: float, start: float | None = None, stop: float | None = None):
    """Spike count from ``start`` to ``stop`` (ms, multiples of ``dt``; default the whole
    recording), i.e. over steps ``start/dt … stop/dt − 1``, divided by the window's length: one rate
    in Hz per neuron, shape ``spikes.shape[1:]``."""
    dt = require_positive("dt", dt)
    spikes = _spike_tensor(spikes)
    first = 0 if start is None else whole_steps("start", start, dt)
    last = spikes.shape[0] if stop is None else whole_steps("stop", stop, dt)
    if not 0 <= first < last <= spikes.shape[0]:
        raise ValueError(
            f"window [{first * dt}, {last * dt}) ms must be non-empty and inside the recording "
            f"[0, {spikes.shape[0] * dt}) ms"
        )
    return _rates(spikes[first:last].sum(0) / ((last - first) * dt / 1000.0), dt)


def binned_rate(spikes, dt: float, bin_ms: float):
    """Rate (Hz) in consecutive bins of ``bin_ms`` (a multiple of ``dt``): shape ``(bins, …)`` with
    ``bins = ⌊T dt / bin_ms⌋``; a last, incomplete bin is dropped."""
    dt = require_positive("dt", dt)
    bin_ms = require_positive("bin_ms", bin_ms)
    spikes = _spike_tensor(spikes)
    if bin_ms < dt:
        raise ValueError(f"bin_ms = {bin_ms} ms is smaller than one step dt = {dt} ms")
    width = whole_steps("bin_ms", bin_ms, dt)
    bins = spikes.shape[0] // width
    if bins == 0:
        raise ValueError(
            f"the recording ({spikes.shape[0] * dt} ms) is shorter than one bin ({bin_ms} ms)"
        )
    counts = spikes[: bins * width].reshape(bins, width, *spikes.shape[1:]).sum(1)
    return _rates(counts / (width * dt / 1000.0), dt)


def _rates(rates: torch.Tensor, dt: float) -> torch.Tensor:
    """``rates``, or a clear error where a tiny ``dt`` (or huge counts) made them overflow (or 0/0)."""
    if not all_finite(rates):
        raise ValueError(f"the rates (spikes per second) overflow: dt = {dt} ms is too small or the counts too large")
    return rates


MAX_KERNEL_STEPS = 10**7  # a kernel sampled on more steps than this is refused (its lags alone: 80 MB)


class Kernel:
    """A window function ``K(τ)`` (1/ms) sampled on the ``dt`` grid. Subclasses give
    ``support(dt) -> (first, last)`` in steps and ``profile(lags_ms)`` up to a constant factor."""

    def support(self, dt: float) -> tuple[int, int]:
        raise NotImplementedError

    def profile(self, lags: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, dt: float, *, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Lags (ms) and values (1/ms), normalized to unit area on the grid: ``Σ K(k·dt) dt = 1``.
        """
        dt = require_positive("dt", dt)
        first, last = self.support(dt)
        lags = torch.arange(first, last + 1, dtype=dtype) * dt
        values = self.profile(lags)
        return lags, values / (values.sum() * dt)


def _kernel_steps(kernel: Kernel, steps: float, dt: float) -> int:
    """``⌊steps⌋``, or a clear error naming the kernel where it spans more than ``MAX_KERNEL_STEPS``."""
    if not steps <= MAX_KERNEL_STEPS:
        raise ValueError(f"{kernel!r} spans more than {MAX_KERNEL_STEPS} steps of dt = {dt} ms; use a larger dt "
                         "or a narrower kernel")
    return math.floor(steps)


@dataclass(frozen=True)
class GaussianKernel(Kernel):
    """``K(τ) ∝ exp(−τ²/2σ²)``, cut at ``±truncate·σ`` (as scipy.ndimage.gaussian_filter)."""

    sigma_ms: float
    truncate: float = 4.0

    def __post_init__(self):
        require_positive("GaussianKernel sigma_ms", self.sigma_ms)
        require_positive("GaussianKernel truncate", self.truncate)

    def support(self, dt):
        half = _kernel_steps(self, self.truncate * self.sigma_ms / dt, dt)
        return -half, half

    def profile(self, lags):
        return torch.exp(-0.5 * (lags / self.sigma_ms) ** 2)


@dataclass(frozen=True)
class RectangularKernel(Kernel):
    """``K(τ) = 1/width`` on a centred window of ``width`` (a multiple of dt): ``n = width/dt``
    steps, lags ``−⌊n/2⌋ … n − 1 − ⌊n/2⌋``."""

    width_ms: float

    def __post_init__(self):
        require_positive("RectangularKernel width_ms", self.width_ms)

    def support(self, dt):
        if self.width_ms < dt:
            raise ValueError(
                f"RectangularKernel width {self.width_ms} ms is smaller than dt = {dt} ms"
            )
        n = _kernel_steps(self, whole_steps("RectangularKernel width_ms", self.width_ms, dt), dt)
        return -(n // 2), n - 1 - n // 2

    def profile(self, lags):
        return torch.ones_like(lags)


@dataclass(frozen=True)
class CausalExponentialKernel(Kernel):
    """``K(τ) = e^{−τ/τ_k}/τ_k`` for ``τ ≥ 0`` (only past spikes count), cut at ``truncate·τ_k``.
    On the grid this is the exponential trace ``x ← x e^{−dt/τ_k} + s`` scaled to unit area."""

    tau_ms: float
    truncate: float = 10.0

    def __post_init__(self):
        require_positive("CausalExponentialKernel tau_ms", self.tau_ms)
        require_positive("CausalExponentialKernel truncate", self.truncate)

    def support(self, dt):
        return 0, _kernel_steps(self, self.truncate * self.tau_ms / dt, dt)

    def profile(self, lags):
        return torch.exp(-lags / self.tau_ms)


def kernel_rate(spikes, dt: float, kernel: Kernel):
    """The rate estimate ``r(t) = Σ_f K(t − t_f)`` (Hz) on the grid of ``spikes``, shape ``(T, …)``.

    One ``conv1d`` over time for all neurons. Spikes before and after the recording count as absent,
    so within the kernel's reach of either end the estimate is biased low.
    """
    dt = require_positive("dt", dt)
    spikes = _spike_tensor(spikes)
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a neuroplastic.coding.Kernel (GaussianKernel, …), got {kernel!r}")
    first, last = kernel.support(dt)
    _, values = kernel.sample(dt, dtype=spikes.dtype)
    steps, shape = spikes.shape[0], spikes.shape[1:]
    if steps == 0:
        return spikes.clone()  # no time, no rates
    rows = spikes.reshape(steps, shape.numel()).T.unsqueeze(1)  # (neurons, 1, T)
    # conv1d correlates; flipping the kernel makes r_t = Σ_k K_k s_{t−k} for k = first … last.
    padded = torch.nn.functional.pad(rows, (last, -first))
    weights = (values.flip(0) * 1000.0).reshape(1, 1, -1).to(spikes.device)
    rates = torch.nn.functional.conv1d(padded, weights)
    return _rates(rates.squeeze(1).T.reshape(steps, *shape), dt)
