"""A stack of spiking layers with a leaky readout, usable step by step (in ``sim.run``) or over whole
sequences (the fast path), the two tested equal.

:meth:`SpikingNetwork.transition` is the one network step: :meth:`~SpikingNetwork.step` (the model
of the time loop) returns its readout and state, and online learners read what each layer did in it
(:class:`LayerStep`) instead of walking the layers again.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
from torch import nn

from neuroplastic.networks.layers import (
    LayerState,
    LeakyReadout,
    SpikingLayer,
    as_weights_dtype,
)
from neuroplastic.validation import require_finite_tensor

__all__ = ["SpikingNetwork", "NetworkState", "NetworkOutput", "LayerStep"]


class NetworkState(NamedTuple):
    layers: tuple[LayerState, ...]
    readout: torch.Tensor


class NetworkOutput(NamedTuple):
    readout: torch.Tensor  # (T, B, n_out)
    spikes: tuple[torch.Tensor, ...]  # one (T, B, n) per hidden layer (graded: their payloads)
    state: NetworkState
    events: tuple[torch.Tensor, ...] = ()  # the binary spikes under the payloads (= spikes if none)


class LayerStep(NamedTuple):
    """What one layer did in one step of the network."""

    x: torch.Tensor  # its input (B, n_in)
    before: LayerState
    after: LayerState  # after.z: the spikes it emitted


class SpikingNetwork(nn.Module):
    """``layers`` of spiking neurons feeding a :class:`LeakyReadout`.

    ``dropout`` drops each layer's output spikes independently at every step while training
    (Srivastava et al. 2014), scaling the rest by ``1/(1 − p)``; it does nothing in ``eval()``.

    Noise for layers of noisy neurons (``neuron.noisy``): ``None``, a ``torch.Generator`` to draw it
    from, or one entry per layer (``None`` or standard normals of the layer's shape: ``(B, n)`` for a
    step, ``(T, B, n)`` for a sequence).
    """

    output_name = "readout"  # what step returns, as sim.run's result names it

    def __init__(self, layers: list[SpikingLayer], readout: LeakyReadout, *, dropout: float = 0.0):
        super().__init__()
        if not layers:
            raise ValueError("a SpikingNetwork needs at least one spiking layer")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.layers = nn.ModuleList(layers)
        self.readout = readout
        self.dropout = nn.Dropout(dropout)

    def init_state(self, shape: tuple[int], *, dtype=torch.float32, device=None) -> NetworkState:
        """The network at rest for a batch: ``shape`` is ``(B,)``."""
        (batch,) = shape
        return NetworkState(
            tuple(layer.init_state(batch, dtype=dtype, device=device) for layer in self.layers),
            self.readout.init_state(batch, dtype=dtype, device=device),
        )

    def state_shape(self, input_shape) -> tuple:
        """``(B,)`` for a step's input of shape ``(B, n_in)`` (used by ``sim.run``)."""
        return tuple(input_shape[:1])

    def sample_noise(self, shape, generator, *, dtype=torch.float32, device=None):
        """One step's noise for a batch of ``shape`` ``(B,)``: standard normals per noisy layer (used by
        ``sim.run`` with a generator)."""
        return tuple(torch.randn((*shape, layer.size), generator=generator, dtype=dtype, device=device)
                     if layer.neuron.noisy else None for layer in self.layers)

    def step(self, state: NetworkState, x: torch.Tensor, dt: float | None = None, noise=None):
        """One step of the whole network (``x`` is ``(B, n_in)``): the readout ``(B, n_out)`` and the
        new state. ``dt`` is fixed by the layers."""
        y, state, _ = self.transition(state, x, noise)
        return y, state

    def transition(self, state: NetworkState, x: torch.Tensor, noise=None):
        """One step: the readout, the new state, and a :class:`LayerStep` per layer."""
        layer_steps = []
        for layer, layer_state, layer_noise in zip(self.layers, state.layers, self._per_layer(noise)):
            z, after = layer.step(layer_state, x, layer_noise)
            layer_steps.append(LayerStep(x, layer_state, after))
            x = self._drop(z)
        y = self.readout.step(state.readout, x)
        return y, NetworkState(tuple(step.after for step in layer_steps), y), tuple(layer_steps)

    def forward(self, x: torch.Tensor, state: NetworkState | None = None, noise=None) -> NetworkOutput:
        """A whole time-first sequence ``x`` ``(T, B, n_in)``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"network input must be (T, B, n_inputs), got shape {tuple(getattr(x, 'shape', ()))}")
        x = require_finite_tensor("network input", as_weights_dtype("network input", x, self.layers[0].synapses))
        if state is None:
            state = self.init_state(x.shape[1:2], dtype=x.dtype, device=x.device)
        spikes, events, layer_states = [], [], []
        for layer, layer_state, layer_noise in zip(self.layers, state.layers, self._per_layer(noise)):
            z, binary, layer_state = layer.forward_events(x, layer_state, layer_noise)
            x = self._drop(z)
            spikes.append(z)
            events.append(binary)
            layer_states.append(layer_state)
        y = self.readout(x, state.readout)
        return NetworkOutput(y, tuple(spikes), NetworkState(tuple(layer_states), y[-1]), tuple(events))

    def _drop(self, z):
        return self.dropout(z) if self.dropout.p > 0 else z

    def _per_layer(self, noise):
        if noise is None or isinstance(noise, torch.Generator):
            return [noise] * len(self.layers)
        if len(noise) != len(self.layers):
            raise ValueError(f"noise needs one entry per layer ({len(self.layers)}), got {len(noise)}")
        return noise
