"""A stack of spiking layers with a leaky readout, usable step by step (in ``sim.run``) or over whole
sequences (the fast path), the two tested equal."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from neuroplastic.networks.layers import LayerState, LeakyReadout, SpikingLayer

__all__ = ["SpikingNetwork", "NetworkState", "NetworkOutput"]


class NetworkState(NamedTuple):
    layers: tuple[LayerState, ...]
    readout: torch.Tensor


class NetworkOutput(NamedTuple):
    readout: torch.Tensor  # (T, B, n_out)
    spikes: tuple[torch.Tensor, ...]  # one (T, B, n) per hidden layer
    state: NetworkState


class SpikingNetwork(nn.Module):
    """``layers`` of spiking neurons feeding a :class:`LeakyReadout`.

    ``dropout`` drops each layer's output spikes independently at every step while training
    (Srivastava et al. 2014), scaling the rest by ``1/(1 − p)``; it does nothing in ``eval()``.
    """

    def __init__(self, layers: list[SpikingLayer], readout: LeakyReadout, *, dropout: float = 0.0):
        super().__init__()
        if not layers:
            raise ValueError("a SpikingNetwork needs at least one spiking layer")
        if not 0.0 <= dropout < 1.0:
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

    def step(self, state: NetworkState, x: torch.Tensor, dt: float | None = None, noise=None):
        """One step of the whole network (``x`` is ``(B, n_in)``): the readout ``(B, n_out)`` and the
        new state. ``dt`` is fixed by the layers; ``noise`` is unused (the layers are deterministic)."""
        layer_states = []
        for layer, layer_state in zip(self.layers, state.layers):
            z, layer_state = layer.step(layer_state, x)
            x = self.dropout(z)
            layer_states.append(layer_state)
        y = self.readout.step(state.readout, x)
        return y, NetworkState(tuple(layer_states), y)

    def forward(self, x: torch.Tensor, state: NetworkState | None = None) -> NetworkOutput:
        """A whole time-first sequence ``x`` ``(T, B, n_in)``."""
        if x.dim() != 3:
            raise ValueError(f"network input must be (T, B, n_inputs), got shape {tuple(x.shape)}")
        if state is None:
            state = self.init_state(x.shape[1:2], dtype=x.dtype, device=x.device)
        spikes, layer_states = [], []
        for layer, layer_state in zip(self.layers, state.layers):
            z, layer_state = layer(x, layer_state)
            x = self.dropout(z)
            spikes.append(z)
            layer_states.append(layer_state)
        y = self.readout(x, state.readout)
        return NetworkOutput(y, tuple(spikes), NetworkState(tuple(layer_states), y[-1]))
