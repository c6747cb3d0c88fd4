"""The one time loop.

``run`` advances any model (anything with ``init_state`` and a pure
``step(state, input, dt, noise) -> (output, state)``: a neuron model, whose output is its spikes, or a
spiking network, whose output is its readout) over a sequence of inputs, batched over every leading
dimension at once (neurons, trials, currents), and lets probes watch each step. Noise for models
with a noise term is drawn here, from a ``torch.Generator``, or taken frozen from a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._pytree import tree_map

from neuroplastic.neurons.base import check_dt
from neuroplastic.validation import require_finite_tensor

__all__ = ["run", "RunResult", "noise_at", "detached"]


@dataclass
class RunResult:
    """The final state, the model's output at every step ``(T, *shape)`` (or None) and each probe's
    result. ``output_name`` says what the output is: ``"spikes"`` for a neuron model (``.spikes``),
    ``"readout"`` for a network (``.readout``)."""

    state: object
    outputs: torch.Tensor | None
    probes: dict
    output_name: str = "spikes"

    def __getitem__(self, name):
        return self.probes[name]

    @property
    def spikes(self) -> torch.Tensor | None:
        return self._output("spikes")

    @property
    def readout(self) -> torch.Tensor | None:
        return self._output("readout")

    def _output(self, name):
        if name != self.output_name:
            raise AttributeError(f"this run's outputs are the model's {self.output_name}, not {name}: "
                                 f"read .{self.output_name} (or .outputs)")
        return self.outputs


def run(
    model, inputs: torch.Tensor, dt: float, *, state=None, probes=(), noise=None, keep_spikes=True
) -> RunResult:
    """Simulate ``model`` over ``inputs`` of shape ``(T, *shape)``.

    ``state`` defaults to ``model.init_state(shape)``. ``noise`` is ``None`` (no noise), a
    ``torch.Generator`` (fresh standard normals each step, drawn by ``model.sample_noise`` where the
    model has one: a network's are one per noisy layer) or frozen standard normals: a tensor
    ``(T, *shape)``, or for a network one ``(T, B, n)`` tensor (or None) per layer. Gradients flow
    through the whole run unless the inputs carry none. Long analysis runs pass ``keep_spikes=False``
    and read spikes through probes instead.
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
        output, state = model.step(state, current, dt, noise=_step_noise(model, noise, t, shape, inputs))
        if keep_spikes:
            outputs.append(output)
        for probe in probes:
            probe.observe(output, state)
    outputs = torch.stack(outputs) if keep_spikes else None
    return RunResult(state, outputs, {probe.name: probe.result() for probe in probes},
                     getattr(model, "output_name", "spikes"))


def _step_noise(model, noise, t, shape, like):
    if isinstance(noise, torch.Generator):
        sample = getattr(model, "sample_noise", None)
        if sample is not None:
            return sample(shape, noise, dtype=like.dtype, device=like.device)
        return torch.randn(shape, generator=noise, dtype=like.dtype, device=like.device)
    if isinstance(noise, (tuple, list)):
        return tuple(None if part is None else part[t] for part in noise)
    return noise_at(noise, t, like)


def noise_at(noise, t: int | None, like: torch.Tensor):
    """Step ``t``'s standard normals of ``like``'s shape: ``None``; drawn from a generator; or
    ``noise[t]`` of frozen noise (``noise`` itself for ``t = None``, one step's worth)."""
    if noise is None:
        return None
    if isinstance(noise, torch.Generator):
        return torch.randn(like.shape, generator=noise, dtype=like.dtype, device=like.device)
    return noise if t is None else noise[t]


def detached(state):
    """A state (any tree of tuples and NamedTuples of tensors) without its gradient history."""
    return tree_map(lambda leaf: leaf.detach() if isinstance(leaf, torch.Tensor) else leaf, state)
