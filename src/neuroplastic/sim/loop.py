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
from torch.utils._pytree import tree_leaves, tree_map

from neuroplastic.neurons.base import check_dt
from neuroplastic.validation import all_finite, require_finite_tensor

__all__ = ["run", "RunResult", "noise_at", "detached", "real_valued"]


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
    and read spikes through probes instead. Integer and boolean inputs count as the default float
    dtype; a run that diverges (a state or output NaN or infinite at the end: too large a ``dt`` for the
    model, out-of-range parameters or inputs) raises a ``ValueError`` instead of returning NaNs.
    """
    dt = check_dt(dt)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] == 0:
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise ValueError(f"inputs must be a tensor of shape (T, *shape) with time first and T >= 1, got {shape}")
    inputs = real_valued("inputs", inputs)
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
    _check_finite(model, state, outputs, len(inputs), dt)
    return RunResult(state, outputs, {probe.name: probe.result() for probe in probes},
                     getattr(model, "output_name", "spikes"))


def real_valued(name: str, tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``tensor`` as a floating-point tensor: integers and booleans (spike counts, masks) in ``dtype``
    (default: the default float dtype); a clear error for a complex one."""
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got a {tensor.dtype} tensor")
    return tensor if tensor.is_floating_point() else tensor.to(dtype or torch.get_default_dtype())


def _check_finite(model, state, outputs, steps: int, dt: float) -> None:
    """A clear error where the run diverged — a state or an output NaN or infinite after finite inputs
    (a NaN stays NaN: the last state and the outputs show every step) — rather than NaNs passed on."""
    fields = getattr(state, "_fields", None)
    named = (zip((f"state field {field!r}" for field in fields), state) if fields is not None
             else [("state", state)])
    named = [*named, ("output", outputs)]
    for name, value in named:
        leaves = [leaf for leaf in tree_leaves(value) if isinstance(leaf, torch.Tensor) and leaf.is_floating_point()]
        if not all(all_finite(leaf) for leaf in leaves):
            raise ValueError(f"{type(model).__name__} diverged: its {name} holds NaN or infinite values after "
                             f"{steps} steps of dt = {dt} ms; a smaller dt, or parameters and inputs within the "
                             "model's range, keep it finite")


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
