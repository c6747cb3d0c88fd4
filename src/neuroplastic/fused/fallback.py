"""The fused recurrence in plain PyTorch: the backend for any device and dtype, and the reference that
higher-order derivatives and ``torch.func`` transforms go through.

:func:`recurrence` is the recurrence ``v_t = β v_{t−1} + I_t − θ z_{t−1}``, ``z_t = H(v_t − θ)`` written
once, step by step, with the operations in the order of the step path, ``(β v + I) − θ z``, one
rounding each (no fused multiply-add), so spikes match it exactly. It serves twice:

- :func:`forward` runs it without a graph (``lif.py`` calls it inside its ``autograd.Function``'s
  forward, and :func:`backward` in its backward, so the backward pass stays one explicit reverse
  loop, linear in T);
- :func:`differentiable` runs it with surrogate spikes (:func:`~neuroplastic.spikes.spike`) and
  autograd: the operations' backward passes use it where a graph of the gradient is being built
  (``create_graph=True``: second derivatives, Hessian-vector products, meta-gradients) and under
  ``torch.func`` transforms, which cannot see into a C++ kernel.

``lif.cpp`` is the same two loops as :func:`forward` and :func:`backward` in C++.
"""
from __future__ import annotations

import torch

from neuroplastic.spikes import spike

__all__ = ["recurrence", "forward", "backward", "differentiable", "graph_gradients"]


def recurrence(currents, beta, threshold, v0, z0, fire, reset=lambda z: z):
    """``(spikes, voltages)`` of every step, ``(T, B, N)`` each: ``v_t = β v_{t−1} + I_t − θ reset(z_{t−1})``,
    ``z_t = fire(v_t − θ)``."""
    v, z = v0, z0
    spikes, voltages = [], []
    for current in currents.unbind(0):
        v = beta * v + current - threshold * reset(z)
        z = fire(v - threshold)
        spikes.append(z)
        voltages.append(v)
    return torch.stack(spikes), torch.stack(voltages)


def forward(currents, beta, threshold, v0, z0):
    """:func:`recurrence` with ``H(0) = 1``, no graph; returns ``(spikes, voltages)``."""
    with torch.no_grad():
        return recurrence(currents, beta, threshold, v0, z0, lambda x: (x >= 0).to(x.dtype))


def differentiable(currents, beta, threshold, surrogate, detach_reset, v0, z0):
    """``(spikes, v_{T−1})`` with surrogate spikes, through autograd (the reset's gradient stopped with
    ``detach_reset``)."""
    spikes, voltages = recurrence(currents, beta, threshold, v0, z0, lambda x: spike(x, surrogate),
                                  (lambda z: z.detach()) if detach_reset else (lambda z: z))
    return spikes, voltages[-1]


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
