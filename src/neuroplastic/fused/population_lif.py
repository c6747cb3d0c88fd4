"""The readouts of many small networks of one shape at once, nothing else written: spike input, one
LIF layer — feed-forward (``population_lif.cpp``) or recurrent adaptive LIF (``population_alif.cpp``)
— and a leaky readout, each model its own weights.

A population's pass layer by layer (:func:`~neuroplastic.networks.population_forward`) writes every
model's currents and spikes, ``(T, B, N)`` each, to memory and reads them back; for these networks
the kernels instead run each model on each sample over the whole sequence with its state in cache,
in the operations and the order of the layer-by-layer kernels (the event-driven currents, the neurons'
update, the readout's sums, the leaky filter): the same hidden spikes, bit for bit, and the readouts
to rounding.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from neuroplastic import transforms
from neuroplastic.fused import event_linear, extension, recurrent
from neuroplastic.validation import all_finite

__all__ = ["lif_readouts", "alif_readouts", "run_lif", "run_alif", "kernel_weights", "KernelWeights", "layer_events",
           "READOUT_MAX_OUTPUTS"]

READOUT_MAX_OUTPUTS = 16  # the kernel holds a model's readout in one padded row


def lif_readouts(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, beta: float, threshold: float,
                 readout_weight: torch.Tensor, readout_bias: torch.Tensor | None, decay: float,
                 neuron_counts: bool = False):
    """``(readouts, counts)``: every model's readout ``(T, B, M, n_out)``, ``y_t = decay · y_{t−1} + U^m z^m_t +
    c^m``, and where ``neuron_counts`` (else None) ``(B, M, 2, N)`` int32, each neuron's spikes over the
    sequence and its spike of the last step — of the LIF
    layers ``z^m`` (``β``, ``θ``, reset by subtraction, starting at rest) fed ``x`` ``(T, B, n_in)`` (every
    model reads it) or ``(M, T, B, n_in)`` (one input per model) through ``weight`` ``(M, N, n_in)`` and
    ``bias`` ``(M, N)``; ``readout_weight`` ``(M, n_out, N)``, ``readout_bias`` ``(M, n_out)``. None where the
    kernel does not apply — weights it does not take (:func:`kernel_weights`), an input not CPU
    float32/float64 like them or under a transform, or one the layer would not take event by event (not
    spikes, or too many: :func:`~neuroplastic.fused.event_linear.index`, for each model's input) — and the
    caller runs the layers one by one. NaN and infinite entries of the input are refused
    (:func:`_refuse_non_finite`)."""
    weights = kernel_weights(weight, bias, readout_weight, readout_bias)
    _check_input(x, weight)
    return run_lif(x, weights, beta=beta, threshold=threshold, decay=decay, neuron_counts=neuron_counts)


def run_lif(x: torch.Tensor, weights: KernelWeights | None, *, beta: float, threshold: float, decay: float,
            neuron_counts: bool = False, events=None):
    """:func:`lif_readouts` with the weights prepared by :func:`kernel_weights` (None: the kernel does not
    take them), once for the batches of an evaluation; ``events``: the input's index where the caller
    made it (:func:`layer_events`)."""
    if weights is None or not _input_applies(x, weights) or not threshold > 0:
        return None
    events = layer_events(x, weights) if events is None else events
    if events is None:
        return None
    _refuse_non_finite(events.values)
    out, per_neuron = _outputs(x, weights, neuron_counts)
    diverged = torch.ops.neuroplastic_fused.population_lif_forward(
        events.offsets, events.columns, events.values if events.values.numel() else None,
        weights.models if x.dim() == 4 else 1, *x.shape[-3:-1], weights.weight_t, weights.bias, float(beta),
        float(threshold), weights.readout_t, weights.readout_bias, float(decay), out, per_neuron)
    if diverged:
        raise ValueError("currents (or state) contain NaN or infinite values, or the voltage overflowed")
    return out, weights.counts_of(per_neuron)


def alif_readouts(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, recurrent_weight: torch.Tensor,
                  neuron, dt: float, *, readout_weight: torch.Tensor, readout_bias: torch.Tensor | None,
                  decay: float, bias_first: bool, neuron_counts: bool = False):
    """:func:`lif_readouts` for recurrent layers of e-prop's adaptive LIF ``neuron``
    (:class:`~neuroplastic.neurons.ALIF`, starting at rest) with ``recurrent_weight`` ``(M, N, N)``:
    ``(readouts (T, B, M, n_out), counts)``, ``counts`` (where ``neuron_counts``, else None) ``(B, M, 2, N)``
    int32: each neuron's spikes over the sequence, and its spike of the last step.

    The input currents are summed as the population's grouped product adds them (``bias_first``: the
    bias, then the terms, every input event by event) or as a layer's event-driven currents do (the
    terms, then the bias). None where :func:`lif_readouts` gives None for the weights, or for an input
    that a layer would not take event by event (not ``bias_first``); where the recurrent kernel could
    not run these neurons (:func:`~neuroplastic.fused.recurrent.why_not`); or where it would have taken
    a step's recurrent product as a matrix product (a step after one with many spikes across the
    batch: :data:`~neuroplastic.fused.recurrent.EVENT_DENSITY`, the sums in another order) — which the
    kernel's counts show only once it has run."""
    weights = kernel_weights(weight, bias, readout_weight, readout_bias, recurrent_weight)
    _check_input(x, weight)
    return run_alif(x, weights, neuron, dt, decay=decay, bias_first=bias_first, neuron_counts=neuron_counts)


def run_alif(x: torch.Tensor, weights: KernelWeights | None, neuron, dt: float, *, decay: float, bias_first: bool,
             neuron_counts: bool = False, events=None):
    """:func:`alif_readouts` with the weights prepared by :func:`kernel_weights` (None: the kernel does not
    take them); ``events`` (not ``bias_first``): the input's index where the caller made it
    (:func:`layer_events`)."""
    if weights is not None and weights.recurrent_t is None:
        raise ValueError("run_alif needs a recurrent layer's weights: kernel_weights(..., recurrent_weight)")
    if (weights is None or not _input_applies(x, weights) or recurrent.why_not(neuron)
            or not float(neuron.v_th) > 0):
        return None
    if bias_first:  # the population's grouped product: every input event by event
        spikes = x.reshape(-1, x.shape[-1]).contiguous()
        _, offsets, columns, values = event_linear._indexed(spikes, spikes.numel())  # rows (M or 1, T, B)
    else:  # a layer's own currents: event by event where the layer would take them so
        events = layer_events(x, weights) if events is None else events
        if events is None:
            return None
        offsets, columns, values = events.offsets, events.columns, events.values
    _refuse_non_finite(values)
    out, per_neuron = _outputs(x, weights, neuron_counts)
    models, hidden = weights.models, weights.weight.shape[1]
    width = weights.weight_t.shape[2]
    leaks = recurrent._leaks(neuron, dt, weights.weight_t[0, 0, :hidden])  # rows (N,)
    alpha, rho = (torch.cat([row, row.new_zeros(width - hidden)]) for row in leaks)
    steps, batch = x.shape[-3:-1]
    counts = x.new_empty(batch, models, steps, dtype=torch.int32)
    diverged = torch.ops.neuroplastic_fused.population_alif_forward(
        offsets, columns, values if values.numel() else None, models if x.dim() == 4 else 1, steps, batch,
        weights.weight_t, weights.bias, bias_first, weights.recurrent_t, alpha, rho, float(neuron.v_th),
        float(neuron.beta), float(neuron.t_ref), float(dt), weights.readout_t, weights.readout_bias, float(decay),
        out, counts, per_neuron)
    if diverged:
        raise ValueError("the layer's ALIF neurons diverged: their state holds NaN or infinite values; "
                         "smaller weights or inputs keep it finite")
    per_step = counts.sum((0, 1), dtype=torch.int64)[:-1]  # what each step leaves the next one's product
    if steps > 1 and int(per_step.max()) > recurrent.EVENT_DENSITY * models * batch * hidden:
        return None
    return out, weights.counts_of(per_neuron)


def _refuse_non_finite(values):
    """A clear error where the input holds NaN or infinite values: they are among its index's values (the
    nonzero entries, listed where some are not 1; binary spikes list none). The input need not be read
    again for them (its sum: on cue's test batches of 23M entries, more than the kernel's time)."""
    if values.numel() and not all_finite(values):
        raise ValueError("network input contains NaN or infinite values")


def layer_events(x: torch.Tensor, weights: KernelWeights):
    """The input's index (:class:`~neuroplastic.fused.event_linear.Events`, rows ``(M or 1, T, B)``), where
    each model's own layer would take it event by event (spikes, few enough:
    :func:`~neuroplastic.fused.event_linear.index`, for each model's input) and the kernels take it
    (:func:`_input_applies`); else None."""
    weight = weights.weight
    if not _input_applies(x, weights):
        return None
    if x.dim() == 4 and bool(((x != 0).flatten(1).sum(1) > event_linear.FORWARD_DENSITY * x[0].numel()).any()):
        return None  # a model whose own layer would take the matrix product (its input's density)
    events = event_linear.index(x.reshape(-1, *x.shape[-2:]), weight[0], None)  # rows (M or 1, T, B)
    return events if events is not None and events.sparse_forward else None


class KernelWeights(NamedTuple):
    """A population's weights as the kernels read them (:func:`kernel_weights`), the hidden layer padded
    with zeros to the kernels' blocks (32 neurons, or a multiple of 64; the padding never spikes, θ > 0):
    ``weight_t`` ``(M, n_in, H)``, the bias ``(M, H)`` (or None), ``readout_t`` ``(M, H, 16)``, the readout's
    bias ``(M, 16)``, ``recurrent_t`` ``(M, H, H)`` (row j: ``W[:, j]``; None for feed-forward layers);
    ``weight`` as given ``(M, N, n_in)``, and ``outputs`` the readout's."""

    weight: torch.Tensor
    weight_t: torch.Tensor
    bias: torch.Tensor | None
    readout_t: torch.Tensor
    readout_bias: torch.Tensor
    recurrent_t: torch.Tensor | None
    outputs: int

    @property
    def models(self) -> int:
        return self.weight.shape[0]

    def counts_of(self, per_neuron):
        """The counts ``(B, M, 2, N)`` of the neurons that are not padding (None for None)."""
        return None if per_neuron is None else per_neuron[..., :self.weight.shape[1]]


def kernel_weights(weight: torch.Tensor, bias: torch.Tensor | None, readout_weight: torch.Tensor,
                   readout_bias: torch.Tensor | None, recurrent_weight: torch.Tensor | None = None):
    """The weights (``weight`` ``(M, N, n_in)``, ``bias`` ``(M, N)``, ``readout_weight`` ``(M, n_out, N)``,
    ``readout_bias`` ``(M, n_out)``, and for a recurrent layer ``recurrent_weight`` ``(M, N, N)``) as the
    kernels read them (:class:`KernelWeights`), or None where the kernels do not take them: a gradient
    asked for, a transform, not CPU float32/float64 alike, weights that are not finite, more than
    :data:`READOUT_MAX_OUTPUTS` outputs, no C++ backend. Their values as they are now: prepared once, they
    serve every batch of an evaluation (:func:`~neuroplastic.networks.evaluation.counted_passes`)."""
    _check_weights(weight, bias, readout_weight, readout_bias, recurrent_weight)
    given = [t for t in (weight, bias, readout_weight, readout_bias, recurrent_weight) if t is not None]
    if (readout_weight.shape[1] > READOUT_MAX_OUTPUTS
            or (torch.is_grad_enabled() and any(t.requires_grad for t in given))
            or any(t.device.type != "cpu" or t.dtype != weight.dtype for t in given)
            or weight.dtype not in (torch.float32, torch.float64) or transforms.active(*given)
            or extension.backend(weight) != "cpp"
            or not all(all_finite(t) for t in (weight, readout_weight, recurrent_weight) if t is not None)):
        return None
    models, hidden, inputs = weight.shape
    outputs = readout_weight.shape[1]
    padded = 32 if hidden <= 32 else -(-hidden // 64) * 64
    weight_t = weight.new_zeros(models, inputs, padded)
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
    recurrent_t = None
    if recurrent_weight is not None:
        recurrent_t = weight.new_zeros(models, padded, padded)
        recurrent_t[:, :hidden, :hidden] = recurrent_weight.transpose(1, 2)
    return KernelWeights(weight, weight_t, bias_padded, readout_t, readout_bias_padded, recurrent_t, outputs)


def _input_applies(x, weights: KernelWeights) -> bool:
    """Whether the kernels take ``x`` with ``weights``: not empty, of their dtype on the CPU, no
    gradient asked for, no transform."""
    _check_input(x, weights.weight)
    return not (x.numel() == 0 or x.device.type != "cpu" or x.dtype != weights.weight.dtype
                or (torch.is_grad_enabled() and x.requires_grad) or transforms.active(x))


def _outputs(x, weights: KernelWeights, neuron_counts: bool):
    """The readouts' memory ``(T, B, M, n_out)`` and, where ``neuron_counts``, each neuron's counts
    ``(B, M, 2, H)`` (else None)."""
    steps, batch = x.shape[-3:-1]
    per_neuron = None
    if neuron_counts:
        per_neuron = x.new_empty(batch, weights.models, 2, weights.weight_t.shape[2], dtype=torch.int32)
    return x.new_empty(steps, batch, weights.models, weights.outputs), per_neuron


def _check_input(x, weight):
    """Refuses, naming it, an input that does not pair with ``weight`` (M, N, n_in): (T, B, n_in) or
    (M, T, B, n_in)."""
    models, _, inputs = weight.shape
    leading = (models,) if x.dim() == 4 else ()
    if x.dim() not in (3, 4) or tuple(x.shape) != (*leading, *x.shape[-3:-1], inputs):
        raise ValueError(f"x must be (T, B, {inputs}) or ({models}, T, B, {inputs}) for weight "
                         f"{tuple(weight.shape)}, got {tuple(x.shape)}")


def _check_weights(weight, bias, readout_weight, readout_bias, recurrent_weight):
    """Refuses, naming them, shapes that do not pair: weight (M, N, n_in), bias (M, N), readout_weight
    (M, n_out, N), readout_bias (M, n_out), recurrent_weight (M, N, N)."""
    if weight.dim() != 3 or readout_weight.dim() != 3:
        raise ValueError(f"the kernels take weight (M, N, n_in) and readout_weight (M, n_out, N), got "
                         f"{tuple(weight.shape)} and {tuple(readout_weight.shape)}")
    models, hidden, _ = weight.shape
    outputs = readout_weight.shape[1]
    expected = {"bias": (bias, (models, hidden)), "readout_weight": (readout_weight, (models, outputs, hidden)),
                "readout_bias": (readout_bias, (models, outputs)),
                "recurrent_weight": (recurrent_weight, (models, hidden, hidden))}
    for name, (tensor, shape) in expected.items():
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must be {shape} for weight {tuple(weight.shape)}, got {tuple(tensor.shape)}")
