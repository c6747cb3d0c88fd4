"""Measurements on simulated neurons: spike times, f-I curves, steady-state rates."""
from __future__ import annotations

import numpy as np
import torch

from neuroplastic.neurons.base import check_dt
from neuroplastic.sim import SpikeRaster, run
from neuroplastic.validation import require_positive

__all__ = ["step_current", "spike_times", "steady_state_rate", "fi_curve"]


def step_current(amplitudes, duration: float, dt: float, *, dtype=torch.float64) -> torch.Tensor:
    """A constant current per neuron for ``duration`` ms: shape ``(T, len(amplitudes))`` (no copy)."""
    dt = check_dt(dt)
    require_positive("duration", duration)
    amplitudes = torch.as_tensor(amplitudes, dtype=dtype).reshape(-1)
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
    steps = raster.shape[0]
    second_half = raster[steps // 2 :]
    return second_half.sum(0).double() / ((steps - steps // 2) * dt / 1000.0)


def fi_curve(model, currents, duration: float, dt: float, *, generator=None) -> torch.Tensor:
    """Steady-state rate (Hz) of ``model`` under each constant current, all simulated at once."""
    inputs = model.drive(step_current(currents, duration, dt))
    result = run(model, inputs, dt, probes=[SpikeRaster()], noise=generator, keep_spikes=False)
    return steady_state_rate(result["spikes"], dt)
