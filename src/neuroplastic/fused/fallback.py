"""The fused recurrence in plain PyTorch: the backend for any device and dtype.

It loops over time in Python, one (B, N) row at a time, but builds no autograd graph: ``lif.py``
calls :func:`forward` inside its ``autograd.Function`` forward and :func:`backward` in its backward, so
the backward pass stays one explicit reverse loop, linear in T. The operations run in the order of
the step path, ``(β v + I) − θ z``, one rounding each (no fused multiply-add), so spikes match it
exactly. ``lif.cpp`` is the same two loops in C++.
"""
from __future__ import annotations

import torch

__all__ = ["forward", "backward"]


def forward(currents, beta, threshold, v0, z0):
    """``v_t = β v_{t−1} + I_t − θ z_{t−1}``, ``z_t = H(v_t − θ)``; returns ``(spikes, voltages)``."""
    spikes = torch.empty_like(currents)
    voltages = torch.empty_like(currents)
    reset = torch.empty_like(v0)
    v_prev, z_prev = v0, z0
    for t in range(currents.shape[0]):
        v = voltages[t]
        torch.mul(beta, v_prev, out=v)
        v.add_(currents[t])
        torch.mul(z_prev, threshold, out=reset)
        v.sub_(reset)
        spikes[t].copy_(v >= threshold)
        v_prev, z_prev = v, spikes[t]
    return spikes, voltages


def backward(h, carry, grad_spikes, grad_final, beta, threshold, detach_reset, out):
    """``ḡ_t = h_t (g^z_t − k ḡ_{t+1}) + β ḡ_{t+1}`` over a chunk of steps, into ``out``.

    ``carry`` is ``ḡ`` at the step after the chunk, ``None`` after the last step, where
    ``ḡ_{T−1} = h_{T−1} g^z_{T−1} + g^v`` with ``grad_final`` = ``g^v``, the final voltage's gradient.
    """
    reset = 0.0 if detach_reset else threshold
    scratch = torch.empty_like(beta)
    for t in reversed(range(h.shape[0])):
        g = out[t]
        if carry is None:
            torch.mul(h[t], grad_spikes[t], out=g).add_(grad_final)
        else:
            torch.mul(carry, reset, out=scratch)
            torch.sub(grad_spikes[t], scratch, out=scratch)
            torch.mul(h[t], scratch, out=g).addcmul_(beta, carry)
        carry = g
