"""Measurements on simulated neurons: spike times, f-I curves, steady-state rates."""
from __future__ import annotations

import numpy as np
import torch

from neuroplastic.coding import GaussianKernel, count_rate, kernel_rate
from neuroplastic.neurons.base import check_dt
from neuroplastic.sim import SpikeRaster, run
from neuroplastic.validation import require_positive

__all__ = ["step_current", "spike_times", "steady_state_rate", "fi_curve", "reliability"]


def step_current(amplitudes, duration: float, dt: float, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A constant current per neuron for ``duration`` ms: shape ``(T, len(amplitudes))`` (no copy), on
    ``device`` (default the CPU)."""
    dt = check_dt(dt)
    require_positive("duration", duration)
    amplitudes = torch.as_tensor(amplitudes, dtype=dtype, device=device or "cpu").reshape(-1)
    steps = int(round(duration / dt))
    if steps < 1:
        raise ValueError(f"duration {duration} ms is shorter than one step of {dt} ms")
    return amplitudes.expand(steps, amplitudes.numel())


def spike_times(raster: torch.Tensor, dt: float) -> list[np.ndarray]:
    """Spike times (ms) of each neuron of a ``(T, N)`` raster; a step ``t`` is time ``(t + 1)·dt``."""
    raster = raster.reshape(raster.shape[0], -1).cpu().numpy()
    return [(np.flatnonzero(raster[:, i]) + 1) * dt for i in range(raster.shape[1])]


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
    smoothed = kernel_rate(raster.double(), dt, GaussianKernel(sigma_ms)).reshape(raster.shape[0], -1)
    norms = smoothed.norm(dim=0)
    smoothed = smoothed[:, norms > 0] / norms[norms > 0]
    trials = smoothed.shape[1]
    if trials < 2:
        raise ValueError("reliability needs at least two trials with spikes")
    similarity = smoothed.T @ smoothed
    return ((similarity.sum() - trials) / (trials * (trials - 1))).item()
