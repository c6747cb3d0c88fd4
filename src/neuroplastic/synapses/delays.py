"""Synapses with a delay per connection: fixed integer delays, and delays learned as continuous positions
(Hammouamri, Khalfaoui-Hassani & Masquelier 2023, "Learning delays in spiking neural networks using
dilated convolutions with learnable spacings", ICLR 2024; written from the paper, not from its code).

A delayed synapse from presynaptic ``i`` onto postsynaptic ``j`` is a temporal kernel over the taps
``k = 0 … D`` (tap ``k`` = a delay of ``k`` steps, causal)::

    I_j(t) = Σ_i Σ_{k=0}^{D} K[k, j, i] · x_i(t − k)  (+ b_j)

- :class:`FixedDelays`: ``K[k, j, i] = W_ji · [d_ji = k]`` with an integer delay ``d_ji ∈ [0, D]`` per
  connection (given, or drawn uniformly): a spike of ``i`` at ``t₀`` reaches ``j`` at exactly ``t₀ + d_ji``.
- :class:`LearnedDelays` (DCLS): a continuous position ``p_ji ∈ [0, D]`` per connection and
  ``K[k, j, i] = W_ji · g(k − p_ji) / (Σ_k g(k − p_ji) + 10⁻⁷)`` with the Gaussian ``g(u) = exp(−u²/2σ²)``,
  so that the synapse's gradient reaches its position. σ is the module's ``sigma``, annealed by the
  trainer during training (the paper: from about ``D/2`` to about 0.5); positions are clamped to
  ``[0, D]``. In ``eval()`` the positions are rounded and the kernel becomes one-hot: the model then
  *is* a fixed-delay model (:meth:`LearnedDelays.fixed` gives it, bit for bit).

Both wrap the synapses that hold the weights (``Dense``, ``DaleDense``, ``Recurrent``,
``DaleRecurrent``: ``W`` is their effective weight, so Dale's signs and the missing autapses hold) and
follow the synapse protocol (:mod:`~neuroplastic.synapses.protocol`): the state is the last ``D``
inputs; ``step`` is ``D + 1`` taps over them (work constant in time); ``sequence`` is one causal
temporal convolution over the whole sequence, continuing from the state; ``presynaptic`` the
activity that reaches each synapse, ``Σ_k K[k, j, i]/W_ji · x_i(t − k)``, per synapse ``(B, n_out,
n_in)``. As the recurrent synapses of a layer they receive the previous step's spikes, so a delay
``d`` there is a total delay of ``d + 1`` steps.
"""
from __future__ import annotations

import torch
from torch import nn

from neuroplastic.validation import (
    require_count,
    require_finite,
    require_finite_tensor,
    require_positive,
)

__all__ = ["FixedDelays", "LearnedDelays"]


class _DelayKernel(nn.Module):
    """The synapse protocol for a temporal kernel ``kernel()`` ``(D + 1, n_out, n_in)`` over the last
    ``D + 1`` inputs, around ``synapses`` (which hold the weight and the bias)."""

    def __init__(self, synapses: nn.Module, max_delay: int):
        super().__init__()
        if not isinstance(getattr(synapses, "weight", None), torch.Tensor):
            raise ValueError(f"delays wrap synapses with a weight (Dense, DaleDense, Recurrent, …), got {synapses!r}")
        self.synapses = synapses
        self.max_delay = require_count("max_delay", max_delay, minimum=0)
        self.n_out, self.n_in = synapses.weight.shape

    def profile(self) -> torch.Tensor:
        """``K / W``: each synapse's weights over the taps ``(D + 1, n_out, n_in)``."""
        raise NotImplementedError

    def kernel(self) -> torch.Tensor:
        return self.profile() * self.synapses.weight

    def _bias(self, current):
        bias = getattr(self.synapses, "bias", None)
        return current if bias is None else current + bias

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> tuple:
        """The last ``D`` inputs, most recent first ``(B, D, n_in)``: none yet."""
        return (torch.zeros(batch, self.max_delay, self.synapses.weight.shape[1], dtype=dtype, device=device),)

    def step(self, state, x):
        recent = torch.cat([x[:, None], state[0]], 1)  # (B, D + 1, n_in): tap k holds x(t − k)
        current = torch.einsum("bki,kji->bj", recent, self.kernel())
        return self._bias(current), (recent[:, :self.max_delay],)

    def sequence(self, state, x):
        past = state[0].flip(1).transpose(0, 1)  # (D, B, n_in), oldest first
        inputs = torch.cat([past, x])  # (D + T, B, n_in)
        # conv1d correlates: out[t] = Σ_m w[m] in[t + m], so tap k = D − m (flip) makes it causal
        weights = self.kernel().flip(0).permute(1, 2, 0)  # (n_out, n_in, D + 1)
        currents = torch.nn.functional.conv1d(inputs.permute(1, 2, 0), weights).permute(2, 0, 1)
        return self._bias(currents), (inputs[inputs.shape[0] - self.max_delay:].flip(0).transpose(0, 1),)

    def presynaptic(self, state, x):
        recent = torch.cat([x[:, None], state[0]], 1)
        return torch.einsum("bki,kji->bji", recent, self.profile())

    def extra_repr(self) -> str:
        return f"max_delay={self.max_delay}"


def _one_hot(delays, max_delay, like) -> torch.Tensor:
    """``[d_ji = k]`` over the taps ``k = 0 … max_delay``: ``(max_delay + 1, n_out, n_in)`` like ``like``."""
    taps = torch.arange(max_delay + 1, device=like.device)[:, None, None]
    return (taps == delays).to(like.dtype)


class FixedDelays(_DelayKernel):
    """An integer delay ``d_ji ∈ [0, max_delay]`` per synapse of ``synapses``: ``delays`` ``(n_out, n_in)``,
    or ``None`` to draw them uniformly from ``generator``."""

    def __init__(self, synapses: nn.Module, delays: torch.Tensor | None = None, *, max_delay: int | None = None,
                 generator: torch.Generator | None = None):
        shape = tuple(synapses.weight.shape)
        if delays is None:
            if max_delay is None:
                raise ValueError("give the delays, or max_delay to draw them from")
            delays = torch.randint(0, require_count("max_delay", max_delay, minimum=0) + 1, shape, generator=generator)
        if not isinstance(delays, torch.Tensor) or delays.is_floating_point() or delays.is_complex():
            raise ValueError(f"delays must be an integer tensor of shape {shape}, got {delays!r}")
        if tuple(delays.shape) != shape:
            raise ValueError(f"delays have shape {tuple(delays.shape)}, the synapses' weight {shape}")
        if (delays < 0).any():
            raise ValueError(f"delays must be >= 0, got {int(delays.min())}")
        largest = int(delays.max())
        max_delay = largest if max_delay is None else max_delay
        super().__init__(synapses, max_delay)
        if largest > self.max_delay:
            raise ValueError(f"a delay of {largest} exceeds max_delay = {self.max_delay}")
        self.register_buffer("delays", delays.long())

    def profile(self):
        return _one_hot(self.delays, self.max_delay, self.synapses.weight)


MIN_SIGMA = 1e-3  # steps: a narrower Gaussian is one-hot already, and its 1/σ² overflows a float32 or float16


def _width(name: str, sigma) -> float:
    sigma = require_positive(name, sigma)
    if sigma < MIN_SIGMA:
        raise ValueError(f"{name} must be at least {MIN_SIGMA} steps, got {sigma!r}")
    return sigma


class LearnedDelays(_DelayKernel):
    """A learnable position ``p_ji ∈ [0, max_delay]`` per synapse (drawn uniformly from ``generator``),
    Gaussian taps of width ``sigma`` (default ``max_delay / 2``, annealed to ``sigma_end`` by
    :meth:`anneal` over the first ``anneal_until`` of training), one-hot at the rounded positions in ``eval()``. ``lr_scale``: the positions'
    learning rate as a multiple of the weights' (the paper trains them faster), which ``fit``'s
    default optimizer applies."""

    def __init__(self, synapses: nn.Module, max_delay: int, *, sigma: float | None = None, sigma_end: float = 0.5,
                 anneal_until: float = 0.7, lr_scale: float = 1.0, generator: torch.Generator | None = None):
        super().__init__(synapses, max_delay)
        weight = synapses.weight
        self.positions = nn.Parameter(torch.rand(weight.shape, generator=generator).to(weight) * self.max_delay)
        self.positions.lr_scale = require_positive("LearnedDelays lr_scale", lr_scale)  # fit's optimizer reads it
        self.sigma = self.sigma_start = max(self.max_delay / 2, sigma_end) if sigma is None else sigma
        self.sigma_end = _width("LearnedDelays sigma_end", sigma_end)
        if not 0 < require_finite("anneal_until", anneal_until) <= 1:
            raise ValueError(f"anneal_until must lie in (0, 1], got {anneal_until!r}")
        self.anneal_until = anneal_until

    def anneal(self, fraction: float) -> None:
        """σ for the point ``fraction ∈ [0, 1]`` of training (``fit`` calls this before every epoch):
        linear from ``sigma_start`` to ``sigma_end`` until ``anneal_until``, then ``sigma_end`` — the last
        stretch trains positions and weights at the final width, which the rounding at evaluation
        then barely changes."""
        progress = min(max(fraction / self.anneal_until, 0.0), 1.0)
        self.sigma = self.sigma_start + (self.sigma_end - self.sigma_start) * progress

    @property
    def sigma(self) -> float:
        return self._sigma

    @sigma.setter
    def sigma(self, value: float) -> None:
        self._sigma = _width("LearnedDelays sigma", value)

    def rounded(self) -> torch.Tensor:
        """The integer delays of the rounded positions ``(n_out, n_in)``."""
        return require_finite_tensor("delay positions", self.positions).detach().clamp(0, self.max_delay).round().long()

    def profile(self):
        if not self.training:
            return _one_hot(self.rounded(), self.max_delay, self.synapses.weight)
        positions = require_finite_tensor("delay positions", self.positions).clamp(0, self.max_delay)
        taps = torch.arange(self.max_delay + 1, device=positions.device, dtype=positions.dtype)
        gauss = torch.exp(-0.5 * ((taps[:, None, None] - positions) / self.sigma) ** 2)
        return gauss / (gauss.sum(0) + 1e-7)

    def fixed(self) -> FixedDelays:
        """The fixed-delay synapses of the rounded positions, sharing these synapses' weights."""
        return FixedDelays(self.synapses, self.rounded(), max_delay=self.max_delay)

    def extra_repr(self) -> str:
        return f"max_delay={self.max_delay}, sigma={self.sigma:g}"
