"""Measurements on simulated neurons: spike times, f-I curves, steady-state rates."""
from __future__ import annotations

import numpy as np
import torch

from neuroplastic.coding import GaussianKernel, count_rate, kernel_rate
from neuroplastic.neurons.base import check_dt
from neuroplastic.sim import SpikeRaster, run
from neuroplastic.validation import require_finite_tensor, require_positive

__all__ = ["step_current", "spike_times", "steady_state_rate", "fi_curve", "reliability"]


def step_current(amplitudes, duration: float, dt: float, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A constant current per neuron for ``duration`` ms: shape ``(T, len(amplitudes))`` (no copy), on
    ``device`` (default the CPU)."""
    dt = check_dt(dt)
    duration = require_positive("duration", duration)
    try:
        amplitudes = torch.as_tensor(amplitudes, dtype=dtype, device=device or "cpu").reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"amplitudes must be numbers, got {amplitudes!r}") from None
    require_finite_tensor("amplitudes", amplitudes)
    steps = duration / dt
    if not steps < 2**63:
        raise ValueError(f"duration {duration} ms is too many steps of {dt} ms")
    steps = int(round(steps))
    if steps < 1:
        raise ValueError(f"duration {duration} ms is shorter than one step of {dt} ms")
    return amplitudes.expand(steps, amplitudes.numel())


def spike_times(raster: torch.Tensor, dt: float) -> list[np.ndarray]:
    """Spike times (ms) of each neuron of a ``(T, N)`` raster; a step ``t`` is time ``(t + 1)·dt``."""
    dt = check_dt(dt)
    raster = _raster(raster)
    raster = raster.reshape(raster.shape[0], raster.shape[1:].numel()).cpu().numpy()
    return [(np.flatnonzero(raster[:, i]) + 1) * dt for i in range(raster.shape[1])]


def _raster(raster) -> torch.Tensor:
    if not isinstance(raster, torch.Tensor) or raster.dim() < 1:
        raise ValueError(f"raster must be a tensor of shape (T, …) with time first, got {raster!r}")
    return raster


def steady_state_rate(raster: torch.Tensor, dt: float) -> torch.Tensor:
    """Rate (Hz) of each neuron in the second half of the run: spikes there / its length."""
    return count_rate(raster.double(), dt, start=(raster.shape[0] // 2) * dt)


def fi_curve(model, currents, duration: float, dt: float, *, generator=None, device=None) -> torch.Tensor:
    """Steady-state rate (Hz) of ``model`` under each constant current, all simulated at once on
    ``device`` (default the CPU; a noise ``generator`` must be on the same device)."""
    inputs = model.drive(step_current(currents, duration, dt, device=device))
    result = run(model, inputs, dt, probes=[SpikeRaster()], noise=generator, keep_spikes=False)
    return steady_state_rate(result["spikes"], dt)


def reliability(raster: torch.Tensor, dt: float, sigma_ms: float = 3.0) -> float:
    """Spike-timing reliability across trials (Schreiber et al. 2003, Neurocomputing 52:925).

    ``raster`` is ``(T, trials)``. Each trial's spike train is smoothed with a Gaussian of width
    ``sigma_ms``; the result is the mean cosine similarity over all pairs of trials: 1 for identical
    spike times, near 0 for independent ones. Trials without spikes are left out.
    """
    raster = _raster(raster)
    smoothed = kernel_rate(raster.double(), dt, GaussianKernel(sigma_ms))
    smoothed = smoothed.reshape(raster.shape[0], raster.shape[1:].numel())
    norms = smoothed.norm(dim=0)
    smoothed = smoothed[:, norms > 0] / norms[norms > 0]
    trials = smoothed.shape[1]
    if trials < 2:
        raise ValueError("reliability needs at least two trials with spikes")
    similarity = smoothed.T @ smoothed
    return ((similarity.sum() - trials) / (trials * (trials - 1))).item()
