"""The one time loop.

``run`` advances any neuron model (anything with ``init_state`` and a pure
``step(state, input, dt, noise) -> (spikes, state)``) over a sequence of inputs, batched over every
leading dimension at once (neurons, trials, currents), and lets probes watch each step. Noise for
models with a noise term is drawn here, from a ``torch.Generator``, or taken frozen from a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.neurons.base import check_dt
from neuroplastic.validation import require_finite_tensor

__all__ = ["run", "RunResult"]


@dataclass
class RunResult:
    """The final state, the output spikes ``(T, *shape)`` (or None) and each probe's result."""

    state: object
    spikes: torch.Tensor
    probes: dict

    def __getitem__(self, name):
        return self.probes[name]


def run(
    model, inputs: torch.Tensor, dt: float, *, state=None, probes=(), noise=None, keep_spikes=True
) -> RunResult:
    """Simulate ``model`` over ``inputs`` of shape ``(T, *shape)``.

    ``state`` defaults to ``model.init_state(shape)``. ``noise`` is ``None`` (no noise), a
    ``torch.Generator`` (fresh standard normals each step) or a tensor ``(T, *shape)`` of frozen
    standard normals. Gradients flow through the whole run unless the inputs carry none. Long
    analysis runs pass ``keep_spikes=False`` and read spikes through probes instead.
    """
    dt = check_dt(dt)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1:
        raise ValueError("inputs must be a tensor of shape (T, *shape) with time first")
    require_finite_tensor("inputs", inputs)
    shape = model.state_shape(inputs.shape[1:])
    if state is None:
        state = model.init_state(shape, dtype=inputs.dtype, device=inputs.device)
    if isinstance(noise, torch.Tensor) and tuple(noise.shape) != (inputs.shape[0], *shape):
        raise ValueError(f"frozen noise has shape {tuple(noise.shape)}, expected {(inputs.shape[0], *shape)}")
    outputs = []
    for t, current in enumerate(inputs.unbind(0)):  # one unbind, not a graph node per index
        spikes, state = model.step(state, current, dt, noise=_noise_at(noise, t, shape, inputs))
        if keep_spikes:
            outputs.append(spikes)
        for probe in probes:
            probe.observe(spikes, state)
    spikes = torch.stack(outputs) if keep_spikes else None
    return RunResult(state, spikes, {probe.name: probe.result() for probe in probes})


def _noise_at(noise, t, shape, like):
    if noise is None:
        return None
    if isinstance(noise, torch.Generator):
        return torch.randn(shape, generator=noise, dtype=like.dtype, device=like.device)
    return noise[t]
