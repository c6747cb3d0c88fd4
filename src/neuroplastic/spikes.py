"""Spikes with surrogate gradients.

A spike is the Heaviside step ``z = H(x)`` of a distance to threshold ``x`` (``x >= 0`` fires). Its
derivative is zero almost everywhere, so learning replaces it in the backward pass by a smooth
*surrogate* ``dz/dx ≈ σ'(x)`` (Neftci, Mostafa & Zenke 2019, "Surrogate gradient learning in spiking
neural networks"). Surrogates here are small frozen value objects; the one ``autograd.Function``
below uses ``setup_context`` and ``generate_vmap_rule`` so that ``torch.func.grad``, ``vmap`` and
``jvp`` all work through a spike, and its backward is itself differentiable (for meta-learning).

Each surrogate states its derivative ``derivative(x)`` and a primitive ``smooth(x)`` whose derivative
it is; the tests check one against the other by finite differences.

A *graded* spike carries a payload (:class:`Payload`): ``s = H(v − θ) · c`` with the reset unchanged,
``c`` a learnable magnitude per neuron (:class:`LearnedPayload`) or an integer of a few bits read
from the membrane potential at the crossing (:class:`QuantizedPayload`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neuroplastic import transforms
from neuroplastic.validation import require_count, require_finite, require_positive

__all__ = ["count_events", "Surrogate", "FastSigmoid", "Triangle", "Boxcar", "Arctan", "Rescaled", "spike", "SURROGATES",
           "Payload", "LearnedPayload", "QuantizedPayload"]


class Surrogate:
    """Abstract surrogate: ``derivative(x)`` replaces ``dH/dx`` in the backward pass."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def smooth(self, x: torch.Tensor) -> torch.Tensor:
        """A smooth function whose derivative is ``derivative``."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return spike(x, self)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike's fast sigmoid (Zenke & Ganguli 2018): ``σ'(x) = 1 / (1 + scale·|x|)²``.

    ``scale`` is the steepness in units of 1/x (DECOLLE uses 10, spytorch 100).
    """

    scale: float = 10.0

    def __post_init__(self):
        require_positive("FastSigmoid scale", self.scale)

    def derivative(self, x):
        return 1.0 / (1.0 + self.scale * x.abs()) ** 2

    def smooth(self, x):
        return x / (1.0 + self.scale * x.abs())


@dataclass(frozen=True)
class Triangle(Surrogate):
    """e-prop's pseudo-derivative (Bellec et al. 2020): ``σ'(x) = γ · max(0, 1 − |x|/width)``."""

    gamma: float = 0.3
    width: float = 1.0

    def __post_init__(self):
        require_positive("Triangle gamma", self.gamma)
        require_positive("Triangle width", self.width)

    def derivative(self, x):
        return self.gamma * torch.clamp(1.0 - x.abs() / self.width, min=0.0)

    def smooth(self, x):
        u = torch.clamp(x / self.width, -1.0, 1.0)
        return self.gamma * self.width * (u - u * u.abs() / 2)


@dataclass(frozen=True)
class Boxcar(Surrogate):
    """Rectangular window (error-triggered learning): ``σ'(x) = 1/width`` for ``|x| < width/2``."""

    width: float = 1.0

    def __post_init__(self):
        require_positive("Boxcar width", self.width)

    def derivative(self, x):
        return (x.abs() < self.width / 2).to(x.dtype) / self.width

    def smooth(self, x):
        return torch.clamp(x / self.width, -0.5, 0.5)


@dataclass(frozen=True)
class Arctan(Surrogate):
    """Arctangent (Fang et al. 2021): ``σ'(x) = (α/2) / (1 + (π α x / 2)²)``."""

    alpha: float = 2.0

    def __post_init__(self):
        require_positive("Arctan alpha", self.alpha)

    def derivative(self, x):
        return (self.alpha / 2) / (1.0 + (math.pi * self.alpha * x / 2) ** 2)

    def smooth(self, x):
        return torch.atan(math.pi * self.alpha * x / 2) / math.pi


@dataclass(frozen=True)
class Rescaled(Surrogate):
    """``inner`` read on the scaled distance ``x / width``: ``σ'(x) = inner'(x/width) / width``.

    ``spike(v − ϑ, Rescaled(s, ϑ))`` has the gradient of ``spike((v − ϑ)/ϑ, s)``, the normalized
    distance of e-prop, for code that works on ``v − ϑ`` directly (the fused layer).
    """

    inner: Surrogate
    width: float

    def __post_init__(self):
        require_positive("Rescaled width", self.width)

    def derivative(self, x):
        return self.inner.derivative(x / self.width) / self.width

    def smooth(self, x):
        return self.inner.smooth(x / self.width)


SURROGATES = {"fast-sigmoid": FastSigmoid, "triangle": Triangle, "boxcar": Boxcar, "arctan": Arctan}


class _Heaviside(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, surrogate):
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, surrogate = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.surrogate = surrogate

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None

    @staticmethod
    def jvp(ctx, x_tangent, _surrogate_tangent):
        (x,) = ctx.saved_tensors
        return x_tangent * ctx.surrogate.derivative(x)


def count_events(x: torch.Tensor) -> torch.Tensor:
    """The nonzero entries of ``x`` (events: spikes, or nonzero activity), a 0-d int64 tensor on its
    device. ``count_nonzero`` of a boolean view: the same count (``-0.0`` is no event, NaN is one),
    six times faster than ``count_nonzero`` of float tensors on the CPU."""
    return torch.count_nonzero(x.bool())


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """``H(x)`` forward (1.0 where ``x >= 0``), ``surrogate.derivative(x)`` backward. Where no derivative
    can be taken (gradients disabled, no transform or forward-mode tangent: evaluation) the comparison
    alone, the same values without the cost of an autograd node at every step."""
    if not torch.is_grad_enabled() and not transforms.active(x):
        return (x >= 0).to(x.dtype)
    return _Heaviside.apply(x, surrogate)


class Payload(torch.nn.Module):
    """What a graded spike carries: a layer emits ``s = z · c`` (``z`` the binary spike, unchanged for
    the reset) instead of ``z``. ``bits``: the payload's width per event (traffic counts events × bits);
    ``reads_potential``: whether ``c`` is read from the membrane potential at the crossing."""

    bits: int
    reads_potential = False

    def forward(self, z: torch.Tensor, potential: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


class LearnedPayload(Payload):
    """A learnable magnitude per neuron, ``s_i = z_i · c_i``; ``c = 1`` at the start, where the layer
    is the binary one bit for bit (values and gradients). The payload is a float of the parameter's
    width (32 bits in float32); on a chip it could be folded into the outgoing weights."""

    def __init__(self, size: int):
        super().__init__()
        self.magnitude = torch.nn.Parameter(torch.ones(require_count("payload size", size)))

    @property
    def bits(self) -> int:
        return torch.finfo(self.magnitude.dtype).bits

    def forward(self, z, potential=None):
        return z * self.magnitude

    def extra_repr(self) -> str:
        return f"size={self.magnitude.numel()}"


class QuantizedPayload(Payload):
    """An integer payload of ``bits`` bits read from the membrane potential at the crossing, as digital
    neuromorphic chips send (Loihi 2's graded spikes): with ``u`` the potential in units of the
    threshold (``≥ 1`` where a neuron fires; the neuron model's ``crossing_potential``),

        q = round(clamp((u − 1) / Δ, 0, 2^b − 1)),   c = 1 + Δ · q,   Δ = (u_max − 1) / (2^b − 1),

    so a spike carries one of ``2^b`` levels of its overshoot, from the threshold (``c = 1``) to
    ``u_max`` (``max_potential``), every level reachable. The rounding passes gradients straight
    through (Bengio et al. 2013) inside the range, and ``s = z · c`` adds a path from the potential to
    the payload to the surrogate's. Up to 24 bits (a float32's mantissa)."""

    reads_potential = True

    def __init__(self, bits: int, *, max_potential: float = 2.0):
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 24:
            raise ValueError(f"payload bits must be an integer from 1 to 24, got {bits!r}")
        self.bits = bits
        self.max_potential = require_finite("max_potential", max_potential)
        if not self.max_potential > 1:
            raise ValueError(f"max_potential must exceed 1 (the threshold), got {max_potential!r}")

    @property
    def step(self) -> float:
        """``Δ``: the potential one payload level stands for."""
        return (self.max_potential - 1) / (2 ** self.bits - 1)

    def _scaled(self, potential):
        return torch.clamp((potential - 1) / self.step, 0, 2 ** self.bits - 1)

    def levels(self, potential: torch.Tensor) -> torch.Tensor:
        """The integer payloads ``q`` of neurons at ``potential`` (a float tensor of integer values)."""
        return torch.round(self._scaled(potential))

    def forward(self, z, potential):
        scaled = self._scaled(potential)
        rounded = scaled + (torch.round(scaled) - scaled).detach()  # straight through
        return z * (1 + self.step * rounded)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, max_potential={self.max_potential}"
