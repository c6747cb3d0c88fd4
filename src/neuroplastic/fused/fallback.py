"""The fused recurrence in plain PyTorch: the backend for any device and dtype, and the reference that
higher-order derivatives and ``torch.func`` transforms go through.

- :func:`forward` and :func:`backward` loop over time in Python, one (B, N) row at a time, but build
  no autograd graph: ``lif.py`` calls :func:`forward` inside its ``autograd.Function`` forward and
  :func:`backward` in its backward, so the backward pass stays one explicit reverse loop, linear in
  T. The operations run in the order of the step path, ``(β v + I) − θ z``, one rounding each (no
  fused multiply-add), so spikes match it exactly. ``lif.cpp`` is the same two loops in C++.
- :func:`differentiable` is the recurrence written as the step path writes it, with surrogate spikes
  (:func:`~neuroplastic.spikes.spike`) and autograd: the operations' backward passes differentiate it
  where a graph of the gradient is being built (``create_graph=True``: second derivatives,
  Hessian-vector products, meta-gradients; :func:`graph_gradients`), and it runs instead of them
  under ``torch.func`` transforms, which cannot see into a C++ kernel.
"""
from __future__ import annotations

import torch

from neuroplastic.spikes import spike

__all__ = ["forward", "backward", "differentiable", "graph_gradients"]


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


def differentiable(currents, beta, threshold, surrogate, detach_reset, v0, z0):
    """``(spikes, v_{T−1})`` of the same recurrence with surrogate spikes, through autograd: the step
    path's operations in its order (the reset's gradient stopped with ``detach_reset``)."""
    v, z, spikes = v0, z0, []
    for current in currents.unbind(0):
        v = beta * v + current - threshold * (z.detach() if detach_reset else z)
        z = spike(v - threshold, surrogate)
        spikes.append(z)
    return torch.stack(spikes), v


def graph_gradients(recompute, inputs, needs, grads) -> tuple:
    """The gradients, as a graph (``create_graph``), of ``recompute(*inputs)`` — outputs weighted by
    ``grads`` (``None``: no gradient arrived) — with respect to the ``inputs`` whose ``needs`` is true;
    ``None`` for the others.

    ``recompute`` runs on fresh aliases of those inputs (``x.view_as(x)``): differentiated with respect
    to the inputs themselves, ``autograd.grad`` would return total derivatives, through whatever else
    made them (a weight that also made the initial state of this chunk, a β shared with another
    operation), and the engine, calling this backward, would count those paths a second time."""
    with torch.enable_grad():
        aliases = [x.view_as(x) if need else x for x, need in zip(inputs, needs)]
        outputs = recompute(*aliases)
    pairs = [(output, grad) for output, grad in zip(outputs, grads) if grad is not None]
    wanted = [x for x, need in zip(aliases, needs) if need]
    if not pairs or not wanted:
        return (None,) * len(inputs)
    found = iter(torch.autograd.grad([output for output, _ in pairs], wanted, [grad for _, grad in pairs],
                                     create_graph=True, allow_unused=True))
    return tuple(next(found) if need else None for need in needs)


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
