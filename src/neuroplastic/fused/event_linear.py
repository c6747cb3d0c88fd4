"""Synaptic currents of a layer fed by spikes, computed event by event.

``I = S Wᵀ + b`` with ``S`` binary: row ``r`` of ``I`` is the sum of the columns of ``W`` (rows of
``Wᵀ``) of the inputs that spiked, ``I[r] = b + Σ_{j: S[r, j] = 1} Wᵀ[j]`` — a row of additions per
spike instead of a multiply-add per synapse, the saving event-driven neuromorphic hardware is built
on. The weight gradient of a loss with ``G = dL/dI`` is by the same token a sum over spikes,
``dL/dWᵀ[j] = Σ_{r: S[r, j] = 1} G[r]``; the input gradient ``G W`` is dense (``G`` is) and comes from
a matrix product; ``dL/db = Σ_r G[r]``. Graded spikes (:class:`~neuroplastic.spikes.Payload`) are
events too: each nonzero entry ``S[r, j]`` scales its row, ``I[r] = b + Σ_{j: S[r, j] ≠ 0} S[r, j] Wᵀ[j]``
and ``dL/dWᵀ[j] = Σ_r S[r, j] G[r]`` (the index keeps the payloads when an entry is not 1).

``spike_linear.cpp`` holds the loops: the spikes indexed once per forward pass (row by row; by
column for the weight gradient), the sums over a tile of output columns kept in registers in a fixed
order (so the result does not depend on how rows are batched), the rows of ``G`` the gradient reads
packed per tile so that they stay in the L1 cache.

**When it runs** (:func:`spike_linear` decides, per call): on the C++ backend, CPU float32/float64,
spikes binary or graded (any input: its nonzero entries are the events), and each pass where it beats the matrix product, as measured by
``benchmarks/spike_linear.py`` (2 cores, 8000 rows = T·B, ``n_in`` = ``n_out`` = n; medians in ms,
event-driven against BLAS, the indexing included):

- forward, up to a spike density of 0.4 and n ≤ 1024: n = 512 at density 0.05 / 0.2 / 0.4 / 0.5:
  5.8 / 11.8 / 20.4 / 24.4 against 23.3 – 25.8; n = 1024 at 0.2: 47 against 93; n = 2048: 354
  against 375 (even); n = 4096: 2189 against 1416 (the tiles of ``Wᵀ`` outgrow the L2 cache);
- weight gradient, up to a density of 0.35, any n: n = 512 at 0.05 / 0.2 / 0.3 / 0.4 / 0.5:
  5.7 / 12.8 / 17.4 / 22.5 / 28.2 against 22.7 – 23.5; n = 1024: 49 against 90; n = 2048: 188
  against 355; n = 4096: 573 against 1394 (all at 0.2).

Anything else, or non-finite weights, takes
``torch.nn.functional.linear`` unchanged. The result equals the matrix product up to the order of
the additions (float32: ~1e-6 relative). One difference remains by design: a NaN or infinity in the
gradient ``G`` reaches the weight gradient only through the inputs that spiked (a matrix product
spreads it over every input as ``0 · NaN``); the weight gradient is non-finite either way.

Where a graph of the gradient is being built (``create_graph=True``) the backward is the three
products above as differentiable operations, so second derivatives are those of ``linear``; under
``torch.func`` transforms and forward-mode AD :func:`applies` is false and ``linear`` runs.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from neuroplastic import transforms
from neuroplastic.fused import extension, workspace
from neuroplastic.validation import all_finite

__all__ = ["grouped_linear", "spike_linear", "weight_gradient"]

FORWARD_DENSITY = 0.4  # spike density up to which the event-driven forward pass runs
FORWARD_MAX_INPUTS = 1024  # n_in beyond which it does not (even at 2048, slower at 4096)
GRADIENT_DENSITY = 0.35  # spike density up to which the event-driven weight gradient runs
# outputs from which weight_gradient sums spike by spike: each spike adds a row of n_out, and the
# index costs the same whatever n_out (8000 rows × 512 inputs at density 0.2, ms event / BLAS: n_out
# 10: 10.1 / 2.1, 32: 5.7 / 3.3, 64: 6.4 / 5.7, 128: 7.5 / 10.4, 512: 16.8 / 38.7)
GRADIENT_MIN_OUTPUTS = 64


def spike_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.linear(x, weight, bias)``, event-driven where ``x`` is spikes (module
    docstring): ``x`` is ``(…, n_in)``, ``weight`` ``(n_out, n_in)``, ``bias`` ``(n_out,)`` or None."""
    return linear_from(index(x, weight, bias) if applies(x, weight, bias) else None, x, weight, bias)


def linear_from(events: Events | None, x, weight, bias) -> torch.Tensor:
    """:func:`spike_linear` of ``x`` with its spikes already indexed (``events`` from :func:`index`),
    or the matrix product where ``events`` is None."""
    if events is None:
        return torch.nn.functional.linear(x, weight, bias)
    out = _SpikeLinear.apply(events.spikes, weight, bias, events)
    return out.reshape(*x.shape[:-1], weight.shape[0])


class Events(NamedTuple):
    """Input spikes ``(rows, n_in)`` indexed by :func:`index`, and which passes run event by event."""

    spikes: torch.Tensor
    offsets: torch.Tensor  # CSR: row r's spikes are columns[offsets[r]:offsets[r + 1]]
    columns: torch.Tensor
    values: torch.Tensor  # their payloads where an entry is not 1 (graded spikes), else empty
    sparse_forward: bool
    sparse_gradient: bool


def index(x, weight, bias) -> Events | None:
    """The spikes (nonzero entries) of ``x`` indexed, for arguments that :func:`applies` to; None
    where the matrix product is the one to run: too many spikes."""
    n_in = weight.shape[1]
    spikes = x.reshape(-1, n_in).contiguous()
    forward_limit = FORWARD_DENSITY * spikes.numel() if n_in <= FORWARD_MAX_INPUTS else -1
    gradient_limit = GRADIENT_DENSITY * spikes.numel()
    count, offsets, columns, values = _indexed(spikes, int(max(forward_limit, gradient_limit)))
    sparse_forward, sparse_gradient = count <= forward_limit, count <= gradient_limit
    if not (sparse_forward or sparse_gradient):
        return None
    return Events(spikes, offsets, columns, values, sparse_forward, sparse_gradient)


def _indexed(spikes, max_count: int):
    """``(count, offsets, columns, values)``: the nonzero entries of ``spikes`` (rows, n_in, contiguous)
    as CSR, their payloads where not 1; only counted, not listed, beyond ``max_count``."""
    offsets, columns = spikes.new_empty(0, dtype=torch.int64), spikes.new_empty(0, dtype=torch.int32)
    values = spikes.new_empty(0)
    count = torch.ops.neuroplastic_fused.spike_index(spikes, max_count, offsets, columns, values)
    return count, offsets, columns, values


def applies(x, weight, bias) -> bool:
    """The event-driven path handles these arguments; anything else is ``linear``'s to take (or to
    refuse). Non-finite weights go to ``linear`` too: a row without spikes would leave out the
    ``0 · NaN = NaN`` of a matrix product. So does everything under ``torch.func`` transforms."""
    return (
        isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor) and weight.dim() == 2
        and x.dim() >= 1 and x.shape[-1] == weight.shape[1] and x.numel() > 0
        and weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.float64)
        and x.dtype == weight.dtype and x.device == weight.device
        and (bias is None or (bias.dtype == weight.dtype and bias.shape == weight.shape[:1]))
        and not transforms.active(x, weight, bias)
        and extension.backend(weight) == "cpp" and all_finite(weight)
    )


def currents_into(events: Events, weight, bias, out):
    """``out`` (rows, n_out) ``= spikes Wᵀ + b``, event by event or as the matrix product."""
    if not events.sparse_forward:
        weight, bias = weight.detach(), None if bias is None else bias.detach()
        if bias is None:
            torch.mm(events.spikes, weight.t(), out=out)
        else:
            torch.addmm(bias, events.spikes, weight.t(), out=out)
        return out
    bias = None if bias is None else bias.detach().contiguous()
    torch.ops.neuroplastic_fused.spike_sum(events.offsets, events.columns, _payloads(events.values),
                                           weight.detach().t().contiguous(), bias, out)
    return out


def gradients(grad, spikes, weight, offsets, columns, values, sparse_gradient, needs_input, needs_weight, needs_bias):
    """``(dL/dx, dL/dW, dL/db)`` of ``grad`` = dL/dI (rows, n_out), None where not needed;
    ``dL/dW`` summed spike by spike if ``sparse_gradient``, else ``Gᵀ S``. Where a graph of the
    gradient is being built, all three are differentiable matrix products."""
    grad = grad.contiguous()
    grad_spikes = grad @ weight if needs_input else None
    grad_weight = None
    if needs_weight:
        summed = sparse_gradient and not torch.is_grad_enabled() and not transforms.active(grad)
        grad_weight = _summed_weight_gradient(grad, offsets, columns, values, weight.shape[1]) if summed \
            else grad.t() @ spikes
    grad_bias = grad.sum(0) if needs_bias else None
    return grad_spikes, grad_weight, grad_bias


class _SpikeLinear(extension.KernelFunction):
    @staticmethod
    def forward(spikes, weight, bias, events):
        return currents_into(events, weight, bias, spikes.new_empty(spikes.shape[0], weight.shape[0]))

    @staticmethod
    def setup_context(ctx, inputs, output):
        spikes, weight, bias, events = inputs
        ctx.save_for_backward(spikes, weight, events.offsets, events.columns, events.values)
        ctx.has_bias, ctx.sparse_gradient = bias is not None, events.sparse_gradient

    @staticmethod
    def backward(ctx, grad):
        spikes, weight, offsets, columns, values = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grads = gradients(grad, spikes, weight, offsets, columns, values, ctx.sparse_gradient, needs[0], needs[1],
                          ctx.has_bias and needs[2])
        return *grads, None


def weight_gradient(grad: torch.Tensor, spikes: torch.Tensor) -> torch.Tensor:
    """``Gᵀ S`` summed over all leading dimensions, ``grad`` ``(…, n_out)`` and ``spikes`` ``(…, n_in)``
    (a weight gradient): spike by spike where ``spikes`` is sparse enough, there are enough outputs
    (:data:`GRADIENT_MIN_OUTPUTS`) and the C++ kernel runs on them, otherwise — and where a graph of it
    is being built, or ``grad`` holds NaN or infinity (which a matrix product spreads over every input
    as ``0 · NaN``) — the matrix product."""
    n_out, n_in, rows = grad.shape[-1], spikes.shape[-1], math.prod(grad.shape[:-1])
    grad, spikes = grad.reshape(rows, n_out), spikes.reshape(rows, n_in)
    summed = (n_out >= GRADIENT_MIN_OUTPUTS and spikes.device.type == "cpu"
              and spikes.dtype in (torch.float32, torch.float64) and grad.dtype == spikes.dtype
              and spikes.numel() > 0 and not transforms.active(grad, spikes)
              and not (torch.is_grad_enabled() and (grad.requires_grad or spikes.requires_grad))
              and extension.backend(spikes) == "cpp" and all_finite(grad))
    if summed:
        limit = int(GRADIENT_DENSITY * spikes.numel())
        count, offsets, columns, values = _indexed(spikes.contiguous(), limit)
        if count <= limit:
            return _summed_weight_gradient(grad.contiguous(), offsets, columns, values, n_in)
    return grad.t() @ spikes


def _summed_weight_gradient(grad, offsets, columns, values, n_in):
    """``dL/dW = Gᵀ S`` summed spike by spike, from the spikes' index."""
    by_column = offsets.new_empty(0), columns.new_empty(0), grad.new_empty(0)
    torch.ops.neuroplastic_fused.spike_index_transpose(offsets, columns, _payloads(values), n_in, *by_column)
    grad_t = grad.new_empty(n_in, grad.shape[1])
    rows, row_columns, row_values = by_column
    torch.ops.neuroplastic_fused.spike_sum_packed(rows, row_columns, _payloads(row_values), grad, grad_t)
    return grad_t.t()


def grouped_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """Many small linear maps at once (the models of a population, each its own weights):
    ``out[a, g, c] = W_g x[a, g, c] + b_g`` for ``x`` ``(A, G, C, n_in)`` — or ``(A, 1, C, n_in)``, one
    input that every group reads — ``weight`` ``(G, n_out, n_in)`` and ``bias`` ``(G, n_out)`` or None;
    ``(A, G, C, n_out)``. Event by event (``grouped_linear.cpp``: the zeros of ``x`` skipped, the rest
    added in the order of the inputs) where no gradient is asked for, the C++ kernel runs and the weights
    are finite — into a buffer of :mod:`~neuroplastic.fused.workspace`, which a caller done with it may give
    back — otherwise one batched matrix product (differentiable), the same up to the order of the additions.

    ``out``: where to write instead, ``(A, G, C, n_out)`` — a buffer of its own, or the slice along the
    groups of a larger contiguous one (a population's chunks joined where they are written); returned."""
    _check_grouped(x, weight, bias)
    groups, outputs = weight.shape[:2]
    shape = (x.shape[0], groups, x.shape[2], outputs)
    if out is not None and (out.shape != shape or out.dtype != weight.dtype or out.device != weight.device):
        raise ValueError(f"out must be {shape} of the weight's dtype and device, got {tuple(out.shape)} {out.dtype}")
    wanted = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    native = (not wanted and weight.device.type == "cpu" and weight.dtype in (torch.float32, torch.float64)
              and x.dtype == weight.dtype and (bias is None or bias.dtype == weight.dtype)
              and not transforms.active(x, weight, bias) and extension.backend(weight) == "cpp"
              and all_finite(weight) and (out is None or _sliced_along_groups(out)))
    if not native:  # one batched product over the groups
        outer, inner, inputs = x.shape[0], x.shape[2], x.shape[3]
        if x.shape[1] == 1:
            rows = x.reshape(1, outer * inner, inputs).expand(groups, -1, -1)
        else:
            rows = x.transpose(0, 1).reshape(groups, outer * inner, inputs)
        product = torch.bmm(rows, weight.transpose(1, 2)) if bias is None else \
            torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
        product = product.view(groups, outer, inner, outputs).transpose(0, 1)
        return product if out is None else out.copy_(product)
    if out is None:
        out = workspace.take(shape, x)
    bias = None if bias is None else bias.contiguous()
    torch.ops.neuroplastic_fused.grouped_linear(x.contiguous(), weight.transpose(1, 2).contiguous(), bias, out)
    return out


def _sliced_along_groups(out: torch.Tensor) -> bool:
    """Whether ``out`` ``(A, G, C, O)`` is contiguous but for its first dimension's stride (what the
    kernel writes into): a slice along the groups of contiguous memory."""
    return out.numel() == 0 or all(size <= 1 or stride == expected for size, stride, expected in
               zip(out.shape[1:], out.stride()[1:], (out.shape[2] * out.shape[3], out.shape[3], 1))) \
        and (out.shape[0] <= 1 or out.stride(0) >= math.prod(out.shape[1:]))


def _check_grouped(x, weight, bias):
    """Refuses, naming the mismatch, shapes that :func:`grouped_linear` cannot pair."""
    if weight.dim() != 3 or x.dim() != 4:
        raise ValueError(f"grouped_linear takes x (A, G or 1, C, n_in) and weight (G, n_out, n_in), got x "
                         f"{tuple(x.shape)} and weight {tuple(weight.shape)}")
    groups, outputs, inputs = weight.shape
    if x.shape[1] not in (1, groups) or x.shape[3] != inputs:
        raise ValueError(f"x {tuple(x.shape)} does not fit weight {tuple(weight.shape)}: x must be "
                         f"(A, {groups} or 1, C, {inputs})")
    if bias is not None and bias.shape != (groups, outputs):
        raise ValueError(f"bias must be ({groups}, {outputs}) for weight {tuple(weight.shape)}, got {tuple(bias.shape)}")


def _payloads(values):
    """The index's payloads for the kernels: None for binary spikes."""
    return values if values.numel() else None
