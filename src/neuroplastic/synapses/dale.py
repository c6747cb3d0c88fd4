"""Dale's principle: every neuron is either excitatory or inhibitory at all of its synapses.

Dale's principle (Dale 1935, named and stated by Eccles 1954) says a neuron releases the same
transmitter at all of its terminals, so all its outgoing synapses share one sign. With ``W[i, j]``
the synapse from presynaptic ``j`` onto postsynaptic ``i``, column ``j`` of ``W`` has the sign
``d_j = +1`` for the first ``n_excitatory`` presynaptic neurons and ``d_j = −1`` for the rest.

Following Song, Yang & Wang (2016, "Training excitatory-inhibitory recurrent neural networks for
cognitive tasks", PLoS Comput Biol 12:e1004792) the effective weight is a non-negative magnitude
times a fixed diagonal sign matrix, ``W = W⁺ D`` with ``D = diag(d)``, and only ``W⁺`` is trained.
They keep ``W⁺ ≥ 0`` by rectification ``[W̃]₊`` and name the absolute value ``|W̃|`` as the
alternative; we use the absolute value, ``W⁺ = |W̃|``: a rectified synapse that reaches zero gets
zero gradient and can never grow back, while ``|W̃|`` keeps a gradient everywhere except exactly at
zero. The constraint is a ``torch.nn.utils.parametrize`` parametrization applied at every access
of ``layer.weight``, so no optimizer update (SGD, Adam, weight decay, …) can break it and no
clamping step has to follow the optimizer.

Initialization: magnitudes ``U(0, scale/√fan_in)``; the inhibitory magnitudes are then multiplied
by ``n_E/n_I`` so that every postsynaptic neuron receives, in expectation, as much inhibition as
excitation (``E[Σ_j W_ij] = 0``) at equal presynaptic rates.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn
from torch.nn.utils import parametrize

from neuroplastic.synapses.dense import ZeroDiagonal, float32_bound
from neuroplastic.synapses.protocol import Stateless
from neuroplastic.validation import require_count, require_positive

__all__ = ["DaleDense", "DaleRecurrent", "DaleSign", "excitatory_count"]


def excitatory_count(n: int, excitatory_fraction: float | None = None,
                     n_excitatory: int | None = None) -> int:
    """How many of ``n`` presynaptic neurons are excitatory: ``n_excitatory`` if given, otherwise
    ``round(excitatory_fraction · n)`` (default fraction 0.8, the cortical 4:1 ratio)."""
    if n_excitatory is not None:
        if excitatory_fraction is not None:
            raise ValueError("give excitatory_fraction or n_excitatory, not both")
        n_excitatory = require_count("n_excitatory", n_excitatory, minimum=0)
        if n_excitatory > n:
            raise ValueError(f"n_excitatory = {n_excitatory} exceeds the {n} presynaptic neurons")
        return n_excitatory
    fraction = 0.8 if excitatory_fraction is None else excitatory_fraction
    if (isinstance(fraction, bool) or not isinstance(fraction, numbers.Real)
            or not 0.0 <= fraction <= 1.0):
        raise ValueError(f"excitatory_fraction must be a number in [0, 1], got {fraction!r}")
    return round(fraction * n)


class DaleSign(nn.Module):
    """Parametrization ``W̃ ↦ |W̃| D``: column ``j`` is ``≥ 0`` for the first ``n_excitatory``
    columns and ``≤ 0`` for the rest.

    ``right_inverse`` (registration and assignment ``layer.weight = W``) stores ``W D = |W|`` and
    refuses a ``W`` whose columns break their declared signs.
    """

    def __init__(self, n_excitatory: int):
        super().__init__()
        self.n_excitatory = require_count("n_excitatory", n_excitatory, minimum=0)

    def signs(self, weight: torch.Tensor) -> torch.Tensor:
        """The sign ``d_j`` of each presynaptic neuron (column), shape ``(n_in,)``."""
        index = torch.arange(weight.shape[-1], device=weight.device)
        return torch.where(index < self.n_excitatory, 1.0, -1.0).to(weight.dtype)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs() * self.signs(weight)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        magnitude = weight * self.signs(weight)
        if (magnitude < 0).any():
            columns = torch.nonzero((magnitude < 0).any(dim=0)).flatten().tolist()
            raise ValueError(
                f"weight breaks Dale's principle in presynaptic columns {columns[:10]}: columns "
                f"< {self.n_excitatory} must be >= 0 (excitatory) and the rest <= 0 (inhibitory)"
            )
        return magnitude


def _dale_weight(n_out, n_in, fan_in, n_excitatory, scale, generator) -> nn.Parameter:
    bound = require_positive("scale", scale) / math.sqrt(fan_in)
    n_inhibitory = n_in - n_excitatory
    float32_bound(bound * max(1.0, n_excitatory / n_inhibitory if n_excitatory and n_inhibitory else 1.0), n_in)
    magnitude = torch.rand((n_out, n_in), generator=generator) * bound
    if n_excitatory and n_inhibitory:
        magnitude[:, n_excitatory:] *= n_excitatory / n_inhibitory
    signs = torch.where(torch.arange(n_in) < n_excitatory, 1.0, -1.0)
    return nn.Parameter(magnitude * signs)


class _SignedSynapses(Stateless, nn.Module):
    """What both Dale layers share: the signs per presynaptic neuron, the magnitudes, the map."""

    @property
    def sign(self) -> torch.Tensor:
        return self.parametrizations.weight[0].signs(self.parametrizations.weight.original)

    @property
    def magnitude(self) -> torch.Tensor:
        return self.weight * self.sign

    def forward(self, activity: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(activity, self.weight)


class DaleDense(_SignedSynapses):
    """Feed-forward E/I synapses ``(…, n_in) → (…, n_out)``: ``I = s (|W̃| D)ᵀ``.

    The first ``n_excitatory`` inputs are excitatory (see :func:`excitatory_count`). ``weight`` is
    the effective signed weight, ``magnitude`` its non-negative part, ``sign`` the vector ``d``; the
    trained tensor is ``parametrizations.weight.original``.
    """

    def __init__(self, n_in: int, n_out: int, *, excitatory_fraction: float | None = None,
                 n_excitatory: int | None = None, scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n_in = require_count("n_in", n_in)
        self.n_out = require_count("n_out", n_out)
        self.n_excitatory = excitatory_count(self.n_in, excitatory_fraction, n_excitatory)
        self.weight = _dale_weight(self.n_out, self.n_in, self.n_in, self.n_excitatory, scale,
                                   generator)
        parametrize.register_parametrization(self, "weight", DaleSign(self.n_excitatory))

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, n_excitatory={self.n_excitatory}"


class DaleRecurrent(_SignedSynapses):
    """Recurrent E/I synapses among ``n`` neurons, no self-connections: ``W = (|W̃| D) ⊙ (1 − I)``.

    The first ``n_excitatory`` neurons are excitatory. ``weight``, ``magnitude`` and ``sign`` as in
    :class:`DaleDense`.
    """

    def __init__(self, n: int, *, excitatory_fraction: float | None = None,
                 n_excitatory: int | None = None, scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.n = require_count("n", n, minimum=2)
        self.n_excitatory = excitatory_count(self.n, excitatory_fraction, n_excitatory)
        self.weight = _dale_weight(self.n, self.n, self.n - 1, self.n_excitatory, scale, generator)
        parametrize.register_parametrization(self, "weight", DaleSign(self.n_excitatory))
        parametrize.register_parametrization(self, "weight", ZeroDiagonal())

    def extra_repr(self) -> str:
        return f"n={self.n}, n_excitatory={self.n_excitatory}"
