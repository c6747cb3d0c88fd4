"""Losses for spiking networks, all on time-first tensors, and firing-rate regularization.

- :func:`readout_cross_entropy`: softmax cross-entropy of the readout at every step of a window,
  averaged (e-prop's classification loss, Bellec et al. 2020); the decision is the arg-max of the
  readout averaged over the window. :func:`readout_cross_entropies`: the same of many models'
  readouts at once (a population's fitness).
- :func:`spike_count_loss`: mean squared error between output spike counts and target counts
  (snnTorch's ``mse_count_loss``: a rate for the correct class, another for the rest).
- :func:`van_rossum_distance`: ``D² = (1/τ) ∫ [(f − g) ∗ e^{−t/τ}]² dt`` between spike trains
  (van Rossum 2001), the loss of SuperSpike (Zenke & Ganguli 2018).
- :func:`mse`: regression error of the readout, and :func:`normalized_mse` (MSE / target variance).
- :func:`rate_regularization`: ``Σ_layers mean_i (ν_i − ν*)²`` of the rates in Hz (e-prop's
  firing-rate regularizer pulls each neuron towards ``ν*``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.validation import require_non_negative, require_positive

__all__ = [
    "readout_cross_entropy",
    "readout_cross_entropies",
    "window_logits",
    "spike_count_loss",
    "van_rossum_distance",
    "mse",
    "normalized_mse",
    "rate_regularization",
]


def _window(y: torch.Tensor, loss_steps: int | None) -> torch.Tensor:
    if loss_steps is None:
        return y
    if not 1 <= loss_steps <= y.shape[0]:
        raise ValueError(f"loss_steps must lie in [1, {y.shape[0]}], got {loss_steps}")
    return y[-loss_steps:]


def window_logits(y: torch.Tensor, loss_steps: int | None = None) -> torch.Tensor:
    """The readout ``(T, B, C)`` averaged over the last ``loss_steps`` steps: ``(B, C)``."""
    return _window(y, loss_steps).mean(0)


def readout_cross_entropy(y: torch.Tensor, labels: torch.Tensor, loss_steps: int | None = None):
    """Mean over the window's steps and the batch of ``CE(softmax(y_t), label)``."""
    window = _window(y, loss_steps)
    steps, batch, classes = window.shape
    return F.cross_entropy(window.reshape(steps * batch, classes), labels.repeat(steps))


def readout_cross_entropies(y: torch.Tensor, labels: torch.Tensor, loss_steps: int | None = None) -> torch.Tensor:
    """:func:`readout_cross_entropy` of each of ``M`` readouts ``y`` ``(M, T, B, C)`` at once, ``(M,)``:
    ``log Σ_c exp y_c − y_label`` (shifted by the largest ``y_c``), elementwise in the readouts' own
    memory order. ``log_softmax`` over a few classes runs one short row at a time: 5× slower for a
    population of 64 digits readouts here (57 ms against 11)."""
    if y.dim() != 4 or labels.shape != (y.shape[2],):
        raise ValueError(f"readouts must be (M, T, B, C) with one label per sample, got {tuple(y.shape)} and "
                         f"labels {tuple(labels.shape)}")
    window = _window(y.transpose(0, 1), loss_steps).transpose(0, 1)
    shifted = window - window.amax(-1, keepdim=True)  # both terms shifted: no cancellation of large readouts
    log_total = shifted.exp().sum(-1).log()
    target = shifted.gather(-1, labels.view(1, 1, -1, 1).expand(*window.shape[:3], 1)).squeeze(-1)
    return (log_total - target).mean((1, 2))


def spike_count_loss(spikes: torch.Tensor, labels: torch.Tensor, *, correct_rate: float = 0.8,
                     incorrect_rate: float = 0.2) -> torch.Tensor:
    """MSE between spike counts ``(B, C)`` of output spikes ``(T, B, C)`` and the target counts
    ``T·correct_rate`` for the label, ``T·incorrect_rate`` otherwise."""
    steps, _, classes = spikes.shape
    target = torch.full_like(spikes[0], incorrect_rate * steps)
    target[torch.arange(labels.shape[0]), labels] = correct_rate * steps
    return F.mse_loss(spikes.sum(0), target)


def van_rossum_distance(spikes: torch.Tensor, target: torch.Tensor, *, tau: float, dt: float):
    """van Rossum distance ``D²`` (summed over neurons, averaged over the batch) of ``(T, B, N)``
    spike trains, filtered by the causal kernel ``e^{−t/τ}``."""
    decay = math.exp(-require_positive("dt", dt) / require_positive("tau", tau))
    difference = leaky_integrate(spikes - target, decay)
    return (difference**2).sum() * dt / tau / spikes.shape[1]


def mse(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if y.shape != target.shape:
        raise ValueError(f"readout shape {tuple(y.shape)} does not match target {tuple(target.shape)}")
    return F.mse_loss(y, target)


def normalized_mse(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean (y − y*)² / var(y*)``: 0 is perfect, 1 is as good as predicting the mean."""
    return mse(y, target) / target.var(unbiased=False)


def rate_regularization(spikes, *, target_hz: float, dt: float) -> torch.Tensor:
    """``Σ_layers mean_i (ν_i − ν*)²`` with ``ν_i`` neuron ``i``'s rate (Hz) over time and batch."""
    require_non_negative("target rate", target_hz)
    require_positive("dt", dt)
    total = 0.0
    for z in spikes:
        rate_hz = z.mean(dim=(0, 1)) * (1000.0 / dt)
        total = total + ((rate_hz - target_hz) ** 2).mean()
    return total
