"""A rate network driven by recurrent synapses of the synapse protocol: the rate version of
differentiable plasticity (Miconi, Clune & Stanley 2018, "Differentiable plasticity: training plastic
neural networks with backpropagation", ICML).

    x(n) = tanh(I_rec(n) + u(n)),     I_rec(n), state = recurrent.step(state, x(n−1))

``u(n)`` is the input: added to the ``n`` neurons as it is (no input synapses, the paper's pattern
completion) or through ``synapses`` (any module of the synapse protocol, e.g. ``Dense(n_in, n)``, all
steps at once). With :class:`~neuroplastic.synapses.PlasticRecurrent` the recurrent weights are
``w + α Hebb`` and the equations of the plasticity are there, once; with
:class:`~neuroplastic.synapses.Recurrent` this is a plain tanh RNN (``α = 0`` gives it bit for bit).
The state — the activity ``x(n−1)`` and the synapses' own state — is a :class:`RateState`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["RateRNN", "RateState"]


class RateState(NamedTuple):
    x: torch.Tensor  # the activity of the previous step (B, n)
    recurrent: tuple = ()  # the recurrent synapses' own state
    synapses: tuple = ()  # the input synapses' own state


class RateRNN(nn.Module):
    """``n`` tanh rate neurons with recurrent synapses ``recurrent`` (``(B, n) → (B, n)``, the synapse
    protocol) and optional input synapses ``synapses`` (``None``: the input is ``(…, n)``, added as is)."""

    def __init__(self, recurrent: nn.Module, *, synapses: nn.Module | None = None):
        super().__init__()
        for method in ("init_state", "step"):
            if not callable(getattr(recurrent, method, None)):
                raise ValueError(f"recurrent must follow the synapse protocol (init_state, step), got {recurrent!r}")
        self.recurrent = recurrent
        self.synapses = synapses
        self.size = recurrent.weight.shape[0]

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> RateState:
        options = dict(dtype=dtype, device=device)
        inputs = () if self.synapses is None else self.synapses.init_state(batch, **options)
        return RateState(torch.zeros(batch, self.size, **options), self.recurrent.init_state(batch, **options), inputs)

    def _input(self, state: RateState, u: torch.Tensor, sequence: bool):
        if self.synapses is None:
            if u.shape[-1] != self.size:
                raise ValueError(f"input of {u.shape[-1]} values for {self.size} neurons without input synapses")
            return u, state.synapses
        return (self.synapses.sequence if sequence else self.synapses.step)(state.synapses, u)

    def step(self, state: RateState, u: torch.Tensor) -> tuple[torch.Tensor, RateState]:
        """One step with input ``u`` ``(B, n_in)``: returns ``x(n)`` and the state."""
        current, inputs = self._input(state, u, sequence=False)
        return self._advance(state, current, inputs)

    def _advance(self, state, current, inputs):
        feedback, recurrent = self.recurrent.step(state.recurrent, state.x)
        x = torch.tanh(feedback + current)
        return x, RateState(x, recurrent, inputs)

    def forward(self, u: torch.Tensor, state: RateState | None = None) -> tuple[torch.Tensor, RateState]:
        """A whole sequence ``u`` ``(T, B, n_in)``: the activity ``(T, B, n)`` and the final state."""
        if u.dim() != 3:
            raise ValueError(f"input must be time-first (T, B, n_in), got shape {tuple(u.shape)}")
        if state is None:
            state = self.init_state(u.shape[1], dtype=u.dtype, device=u.device)
        currents, inputs = self._input(state, u, sequence=True)
        outputs = []
        with parametrize.cached():  # the fixed weights' parametrization computed once per sequence
            for current in currents.unbind(0):
                x, state = self._advance(state, current, inputs)
                outputs.append(x)
        return torch.stack(outputs), state
