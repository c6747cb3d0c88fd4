"""All-to-all synapses: a feed-forward ``Dense`` layer and a ``Recurrent`` layer without autapses.

A layer maps presynaptic activity ``s`` of shape ``(…, n_in)`` (spikes, rates or traces) to
postsynaptic currents ``I = s Wᵀ (+ b)`` of shape ``(…, n_out)``; ``W[i, j]`` is the synapse from
presynaptic neuron ``j`` onto postsynaptic neuron ``i``. Layers are stateless maps (the synapse
protocol's :class:`~neuroplastic.synapses.protocol.Stateless`): the time loop owns every state, so a
layer can be applied to one step or to a whole ``(T, …, n_in)`` sequence at once (one matrix product
for all time steps).

Initialization: every weight (and bias) is drawn from ``U(−scale/√fan_in, scale/√fan_in)``, the
default of ``torch.nn.Linear`` at ``scale = 1``; ``fan_in`` is ``n_in`` (``n − 1`` for a recurrent
layer, which has no self-connection). A ``torch.Generator`` makes the draw reproducible.

Structural constraints (no self-connections here, Dale's signs in :mod:`.dale`) are
``torch.nn.utils.parametrize`` parametrizations: ``layer.weight`` is always the *effective* weight,
computed from the trained tensor ``layer.parametrizations.weight.original`` at every access, so the
constraint holds after any optimizer update and masked entries receive exactly zero gradient.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from neuroplastic.synapses.protocol import Stateless
from neuroplastic.validation import require_count, require_positive

__all__ = ["Dense", "Recurrent", "ZeroDiagonal"]


def uniform(shape, bound: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Samples of ``U(−bound, bound)`` (float32) drawn from ``generator``."""
    fan_in = shape[-1] if len(shape) == 2 else 1  # a weight matrix's row adds up; a bias is one term
    return (2.0 * torch.rand(shape, generator=generator) - 1.0) * float32_bound(bound, fan_in)


def float32_bound(bound: float, fan_in: int) -> float:
    """``bound`` (the largest initial weight), or a clear error naming ``scale`` where the current of
    ``fan_in`` such weights (every input active) would leave the float32 range."""
    if bound * fan_in > torch.finfo(torch.float32).max:
        raise ValueError(f"scale is too large: {fan_in} initial weights up to {bound:g} add up beyond the float32 "
                         "range")
    return bound


class ZeroDiagonal(nn.Module):
    """Parametrization ``W ↦ W ⊙ M`` with ``M = 1 − I``: no neuron synapses onto itself.

    Because the mask multiplies the trained tensor, ``∂W_eff[i, i]/∂W[i, i] = 0``: the diagonal of
    the trained tensor never receives gradient. ``right_inverse`` (used at registration and on
    assignment ``layer.weight = W``) stores ``W ⊙ M``, so that diagonal stays zero as well.
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        n = weight.shape[-1]
        if weight.shape[-2] != n:
            raise ValueError(f"a recurrent weight must be square, got shape {tuple(weight.shape)}")
        mask = 1.0 - torch.eye(n, dtype=weight.dtype, device=weight.device)
        return weight * mask

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return self.forward(weight)


class Dense(Stateless, nn.Module):
    """Feed-forward synapses ``(…, n_in) → (…, n_out)``: ``I = s Wᵀ + b``, ``W`` is
    ``(n_out, n_in)``."""

    def __init__(self, n_in: int, n_out: int, *, bias: bool = False, scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_in = require_count("n_in", n_in)
        self.n_out = require_count("n_out", n_out)
        bound = require_positive("scale", scale) / math.sqrt(self.n_in)
        self.weight = nn.Parameter(uniform((self.n_out, self.n_in), bound, generator))
        self.bias = nn.Parameter(uniform((self.n_out,), bound, generator)) if bias else None

    def forward(self, activity: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(activity, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, bias={self.bias is not None}"


class Recurrent(Stateless, nn.Module):
    """Recurrent synapses among ``n`` neurons ``(…, n) → (…, n)``, self-connections masked out.

    ``I = s (W ⊙ M)ᵀ`` with ``M = 1 − I`` (see :class:`ZeroDiagonal`); ``layer.weight`` is
    ``W ⊙ M`` and the trained tensor is ``layer.parametrizations.weight.original``.
    """

    def __init__(self, n: int, *, scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.n = require_count("n", n, minimum=2)
        bound = require_positive("scale", scale) / math.sqrt(self.n - 1)
        self.weight = nn.Parameter(uniform((self.n, self.n), bound, generator))
        parametrize.register_parametrization(self, "weight", ZeroDiagonal())

    def forward(self, activity: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(activity, self.weight)

    def extra_repr(self) -> str:
        return f"n={self.n}"
