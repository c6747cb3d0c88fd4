"""The readouts of many small networks of one shape at once, nothing else written: spike input, one
feed-forward LIF layer and a leaky readout, each model its own weights (``population_lif.cpp``).

A population's pass layer by layer (:func:`~neuroplastic.networks.population_forward`) writes every
model's currents and spikes, ``(T, B, N)`` each, to memory and reads them back; for these networks
the kernel instead runs each model on each sample over the whole sequence with its state in cache,
in the operations and the order of the layer-by-layer kernels (the event-driven currents, the LIF
update, the readout's sums, the leaky filter): the same hidden spikes, bit for bit, and the readouts
to rounding.
"""
from __future__ import annotations

import torch

from neuroplastic import transforms
from neuroplastic.fused import event_linear, extension
from neuroplastic.validation import all_finite

__all__ = ["lif_readouts", "READOUT_MAX_OUTPUTS"]

READOUT_MAX_OUTPUTS = 16  # the kernel holds a model's readout in one padded row


def lif_readouts(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, beta: float, threshold: float,
                 readout_weight: torch.Tensor, readout_bias: torch.Tensor | None, decay: float) -> torch.Tensor | None:
    """Every model's readout ``(T, B, M, n_out)``, ``y_t = decay · y_{t−1} + U^m z^m_t + c^m``, of the LIF
    layers ``z^m`` (``β``, ``θ``, reset by subtraction, starting at rest) fed ``x`` ``(T, B, n_in)`` (every
    model reads it) or ``(M, T, B, n_in)`` (one input per model) through ``weight`` ``(M, N, n_in)`` and
    ``bias`` ``(M, N)``; ``readout_weight`` ``(M, n_out, N)``, ``readout_bias`` ``(M, n_out)``. None where the
    kernel does not apply — a gradient asked for, a transform, not CPU float32/float64, weights that are
    not finite, more than :data:`READOUT_MAX_OUTPUTS` outputs, or an input the layer would not take event
    by event (not spikes, or too many: :func:`~neuroplastic.fused.event_linear.index`, for each model's
    input) — and the caller runs the layers one by one."""
    _check_shapes(x, weight, bias, readout_weight, readout_bias)
    tensors = [t for t in (x, weight, bias, readout_weight, readout_bias) if t is not None]
    if (x.numel() == 0
            or readout_weight.shape[1] > READOUT_MAX_OUTPUTS or not threshold > 0
            or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            or any(t.device.type != "cpu" or t.dtype != weight.dtype for t in tensors)
            or weight.dtype not in (torch.float32, torch.float64) or transforms.active(*tensors)
            or extension.backend(weight) != "cpp" or not all_finite(weight) or not all_finite(readout_weight)):
        return None
    if x.dim() == 4 and bool(((x != 0).flatten(1).sum(1) > event_linear.FORWARD_DENSITY * x[0].numel()).any()):
        return None  # a model whose own layer would take the matrix product (its input's density)
    events = event_linear.index(x.reshape(-1, *x.shape[-2:]), weight[0], None)  # rows (M or 1, T, B)
    if events is None or not events.sparse_forward:
        return None
    steps, batch = x.shape[-3:-1]
    models, hidden, outputs = weight.shape[0], weight.shape[1], readout_weight.shape[1]
    padded = 32 if hidden <= 32 else -(-hidden // 64) * 64  # the kernel's blocks; the padding never spikes (θ > 0)
    weight_t = weight.new_zeros(models, weight.shape[2], padded)
    weight_t[:, :, :hidden] = weight.transpose(1, 2)
    bias_padded = None
    if bias is not None:
        bias_padded = weight.new_zeros(models, padded)
        bias_padded[:, :hidden] = bias
    readout_t = weight.new_zeros(models, padded, READOUT_MAX_OUTPUTS)
    readout_t[:, :hidden, :outputs] = readout_weight.transpose(1, 2)
    readout_bias_padded = weight.new_zeros(models, READOUT_MAX_OUTPUTS)
    if readout_bias is not None:
        readout_bias_padded[:, :outputs] = readout_bias
    out = x.new_empty(steps, batch, models, outputs)
    diverged = torch.ops.neuroplastic_fused.population_lif_forward(
        events.offsets, events.columns, events.values if events.values.numel() else None,
        models if x.dim() == 4 else 1, steps, batch,
        weight_t, bias_padded, float(beta), float(threshold), readout_t,
        readout_bias_padded, float(decay), out)
    if diverged:
        raise ValueError("currents (or state) contain NaN or infinite values, or the voltage overflowed")
    return out


def _check_shapes(x, weight, bias, readout_weight, readout_bias):
    """Refuses, naming them, shapes that do not pair: x (T, B, n_in) or (M, T, B, n_in), weight (M, N, n_in),
    bias (M, N), readout_weight (M, n_out, N), readout_bias (M, n_out)."""
    if weight.dim() != 3 or readout_weight.dim() != 3 or x.dim() not in (3, 4):
        raise ValueError(f"lif_readouts takes x (T, B, n_in) or (M, T, B, n_in), weight (M, N, n_in) and "
                         f"readout_weight (M, n_out, N), got {tuple(x.shape)}, {tuple(weight.shape)}, "
                         f"{tuple(readout_weight.shape)}")
    models, hidden, inputs = weight.shape
    outputs = readout_weight.shape[1]
    leading = (models,) if x.dim() == 4 else ()
    expected = {"x": (x, (*leading, *x.shape[-3:-1], inputs)), "bias": (bias, (models, hidden)),
                "readout_weight": (readout_weight, (models, outputs, hidden)),
                "readout_bias": (readout_bias, (models, outputs))}
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must be {shape} for weight {tuple(weight.shape)}, got {tuple(tensor.shape)}")
