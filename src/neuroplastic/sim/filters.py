"""Linear first-order filters over time, with a backward pass linear in sequence length.

``leaky_integrate(x, decay)`` computes ``y_t = decay · y_{t−1} + x_t`` (``y_{−1} = y0``, zero by
default) along the first (time) dimension. It is the readout of e-prop (``κ``), an exponential trace
and the low-pass of the van Rossum distance. Its gradient is the same filter run backwards in
time, ``g_x_t = g_y_t + decay · g_x_{t+1}``, so one custom autograd node replaces T graph nodes. The
filter is linear, so its tangent (forward mode, ``torch.func.jvp``) is the filter of the tangents, and
both passes are written in differentiable operations that ``torch.func.vmap`` batches (a generated
rule): derivatives of any order and every transform go through it. On CPU float32/float64 tensors
outside transforms each pass is one C++ loop (``fused/leaky_filter.cpp``, the same operations in the
same order: bit for bit) instead of three operations per step.
"""
from __future__ import annotations

import torch

from neuroplastic import transforms
from neuroplastic.fused import extension
from neuroplastic.validation import require_finite

__all__ = ["leaky_integrate", "reverse_leaky_integrate"]


def runs_native(x, *others) -> bool:
    """Whether the C++ kernels run a filter over ``x`` (and ``others`` of its dtype): CPU float32/float64,
    no ``torch.func`` transform."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and all(other.device.type == "cpu" and other.dtype == x.dtype for other in others)
            and not transforms.active(x, *others) and extension.backend(x) == "cpp")


def _filter(x, decay, y0=None, reverse=False):
    """The kernel's pass (the loop's operations in its order), forward or reversed in time."""
    out, x = torch.empty_like(x, memory_format=torch.contiguous_format), x.contiguous()
    if y0 is not None:
        y0 = y0.contiguous()
    torch.ops.neuroplastic_fused.leaky_filter(x, float(decay), y0, reverse, out)
    return out


def _forward_filter(x, decay, y0):
    if runs_native(x, *(() if y0 is None else (y0,))) and (y0 is None or y0.shape == x.shape[1:]):
        return _filter(x, decay, y0)
    out = torch.empty_like(x)
    y = torch.zeros_like(x[0]) if y0 is None else y0
    for t in range(x.shape[0]):
        y = decay * y + x[t]
        out[t] = y
    return out


def _backward_filter(grad, decay):
    if runs_native(grad) and not torch.is_grad_enabled():
        return _filter(grad, decay, reverse=True)
    out = torch.empty_like(grad)
    g = torch.zeros_like(grad[0])
    for t in range(grad.shape[0] - 1, -1, -1):
        g = decay * g + grad[t]
        out[t] = g
    return out


class _LeakyIntegrate(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, decay, y0):
        return _forward_filter(x, decay, y0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, decay, y0 = inputs
        ctx.decay, ctx.shape = decay, x.shape
        ctx.has_y0 = y0 is not None

    @staticmethod
    def jvp(ctx, x_tangent, _decay_tangent, y0_tangent):
        if x_tangent is None:
            x_tangent = y0_tangent.new_zeros(ctx.shape)
        return _forward_filter(x_tangent, ctx.decay, y0_tangent)

    @staticmethod
    def backward(ctx, grad_output):
        grad_x = _backward_filter(grad_output, ctx.decay)
        grad_y0 = ctx.decay * grad_x[0] if ctx.has_y0 else None
        return grad_x, None, grad_y0


def reverse_leaky_integrate(x: torch.Tensor, decay: float) -> torch.Tensor:
    """The anti-causal filter ``y_t = decay · y_{t+1} + x_t`` over the first dimension (``y_T = 0``):
    :func:`leaky_integrate` run backwards in time."""
    if runs_native(x) and not (torch.is_grad_enabled() and x.requires_grad):
        _check(x, decay)
        return _filter(x, decay, reverse=True)
    return leaky_integrate(x.flip(0), decay).flip(0)


def _check(x, decay):
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError("leaky_integrate needs a non-empty time dimension first")
    if not 0.0 <= require_finite("decay", decay) <= 1.0:
        raise ValueError(f"decay must lie in [0, 1], got {decay}")


def leaky_integrate(x: torch.Tensor, decay: float, y0: torch.Tensor | None = None) -> torch.Tensor:
    """``y_t = decay · y_{t−1} + x_t`` over the first dimension of ``x`` (``decay`` a float)."""
    _check(x, decay)
    return _LeakyIntegrate.apply(x, decay, y0)
