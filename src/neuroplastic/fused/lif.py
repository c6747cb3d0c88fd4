"""A feed-forward leaky integrate-and-fire layer over a whole sequence, fused forward and backward.

The discrete LIF of snnTorch's ``Leaky`` and of e-prop (Bellec et al. 2020, "A solution to the
learning dilemma for recurrent networks of spiking neurons", Nat. Commun. 11:3625, Methods), reset by
subtracting the threshold one step late, with the previous step's spike:

    v_t = β v_{t−1} + I_t − θ z_{t−1},    z_t = H(v_t − θ)    (H(0) = 1; v_{−1}, z_{−1} default 0)

In a feed-forward layer the currents ``I_t = W x_t`` of all T steps come from one matrix product
beforehand; what is left is this elementwise recurrence, and here it is one pass each way.

**Backward.** Exact BPTT with the surrogate ``h_t = σ'(v_t − θ)`` in place of ``H'``. Let
``ḡ_t = dL/dv_t`` (total). ``v_t`` reaches the loss through ``z_t`` (directly, and through the reset
in ``v_{t+1}``: ``∂v_{t+1}/∂z_t = −θ``, cut by ``detach_reset``) and through ``v_{t+1}``
(``∂v_{t+1}/∂v_t = β``). With ``g^z_t`` the gradient arriving at the spikes directly and ``g^v`` at
the returned final voltage,

    ḡ_t = h_t (g^z_t − k ḡ_{t+1}) + β ḡ_{t+1},    ḡ_{T−1} = h_{T−1} g^z_{T−1} + g^v,

``k = θ``, or 0 with ``detach_reset``,

and ``dL/dI_t = ḡ_t``, ``dL/dβ = Σ_t ḡ_t v_{t−1}`` (summed over the batch), ``dL/dv_{−1} = β ḡ_0``,
``dL/dz_{−1} = −k ḡ_0``. ``tests/test_fused.py`` checks all of them against autograd through the step
path (``neuroplastic.spikes.spike`` in a loop over t).

**One graph node.** The sequence is one ``autograd.Function``; its forward runs the recurrence without
a graph. Both loops run in C++ (``lif.cpp``) for CPU float32/float64 tensors when it can be built,
otherwise in PyTorch (``fallback.py``); :func:`neuroplastic.fused.backend` says which.

- For a built-in surrogate (``extension.native_surrogate``; a test holds the C++ formulas to
  ``spikes.py``'s) on the C++ kernel, the forward keeps the voltage of every ``_INTERVAL``-th step
  only, and the backward evaluates the surrogate itself, in one pass over the whole sequence: it
  recomputes the voltages of ``_INTERVAL`` steps at a time from the currents (which it saves; no
  copy) and the kept voltage before them, exactly as the forward computed them, then runs the reverse
  recurrence over them while they are in cache. Between the passes the currents (the caller's
  tensor) and the spikes are the only (B, N) tensors per step (plus ``1/_INTERVAL`` of one), and
  the backward reads the currents where it would have read the voltages: the same memory traffic.
  (The price: modifying the currents in place between the passes is an error, as for any input an
  autograd node saves.)
- For any other surrogate, or on the fallback, the forward saves the voltage of every step (three
  (B, N) tensors per step with the currents and the spikes), and the backward evaluates the
  surrogate as PyTorch ops on a chunk of steps at a time, latest first, each chunk followed by the
  reverse recurrence over it while it is in cache.

**Higher order and transforms.** Where a graph of the gradient is being built (a backward with
``create_graph=True``: second derivatives, Hessian-vector products, meta-gradients) the backward
pass does not use the kernels: it runs the recurrence again from the saved inputs with surrogate
spikes and autograd (:func:`~neuroplastic.fused.fallback.differentiable`) and differentiates that, so
every derivative of every order is the step path's. Under ``torch.func`` transforms (``grad``,
``vmap``, ``jvp``, …), which cannot see into the kernels, under forward-mode AD, and for a
surrogate with tensor constants (per neuron, or learnable: the kernels would not return their
gradient), :func:`lif_sequence` runs that differentiable recurrence instead of the operation.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import torch

from neuroplastic import transforms
from neuroplastic.fused import extension, fallback
from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.spikes import Surrogate
from neuroplastic.validation import require_finite, require_finite_tensor, require_positive

__all__ = ["LeakyState", "lif_sequence"]

_CHUNK = 1 << 20  # elements per chunk of a backward pass with h from PyTorch (4 MiB in float32)
_INTERVAL = 32  # steps between the voltages kept for a backward that recomputes the others


class LeakyState(NamedTuple):
    v: torch.Tensor  # (B, N) membrane potential before the pending reset
    z: torch.Tensor  # (B, N) spike of the last step


def lif_sequence(
    currents: torch.Tensor,
    *,
    beta,
    threshold: float,
    surrogate: Surrogate,
    detach_reset: bool = False,
    state: LeakyState | None = None,
) -> tuple[torch.Tensor, LeakyState]:
    """Spikes ``(T, B, N)`` of a LIF layer driven by ``currents`` ``(T, B, N)``, and its final state.

    ``beta`` is the leak ``β ∈ (0, 1]``: a number, or a tensor of shape ``()`` or ``(N,)`` (one per
    neuron), which gets a gradient if it requires one. ``threshold`` is ``θ > 0``; ``surrogate`` a
    :class:`~neuroplastic.spikes.Surrogate`; ``detach_reset`` stops the gradient through the reset.
    ``state`` is the :class:`LeakyState` ``(v_{−1}, z_{−1})`` to continue from (default zeros); the
    returned state ``(v_{T−1}, z_{T−1})`` continues the sequence exactly in the next chunk, and carries
    the gradient back across chunks unless detached (truncated BPTT).
    """
    _check_currents(currents)
    v0, z0 = check_arguments(currents.shape, currents, beta, threshold, surrogate, detach_reset, state)
    if transforms.active(currents, beta, v0, z0) or holds_tensors(surrogate):  # module docstring
        require_finite_tensor("currents", currents)
        spikes, v_last = fallback.differentiable(currents, beta, float(threshold), surrogate, detach_reset, v0, z0)
        return spikes, LeakyState(v_last, spikes[-1])
    kernels = extension if extension.backend(currents) == "cpp" else fallback
    spikes, v_last, _ = _LeakySequence.apply(
        currents, beta, float(threshold), surrogate, detach_reset, v0, z0, kernels
    )
    return spikes, LeakyState(v_last, spikes[-1].clone())


class _LeakySequence(extension.KernelFunction):
    """Outputs spikes, the final voltage and what the backward reads (not differentiable)."""

    @staticmethod
    def forward(currents, beta, threshold, surrogate, detach_reset, v0, z0, kernels):
        spikes, kept = forward_pass(currents, beta, threshold, surrogate, v0, z0, kernels)
        return spikes, kept[-1].clone(), kept

    @staticmethod
    def setup_context(ctx, inputs, output):
        currents, beta, threshold, surrogate, detach_reset, v0, z0, kernels = inputs
        remember(ctx, beta, threshold, surrogate, detach_reset, kernels, len(output[0]))
        beta_tensor = beta if isinstance(beta, torch.Tensor) else None
        # with the native surrogate the voltages every _INTERVAL steps (the rest from the currents),
        # else all of them; the currents in any case for a differentiable backward
        ctx.save_for_backward(currents, output[2], v0, z0, beta_tensor)
        ctx.mark_non_differentiable(output[2])
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad_spikes, grad_final, _):
        currents, kept, v0, z0, beta_tensor = ctx.saved_tensors
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled() or transforms.active(grad_spikes, grad_final):  # module docstring
            grads = differentiable_gradients(ctx, currents, beta_tensor, v0, z0, grad_spikes, grad_final,
                                             (needs[0], needs[1], needs[5], needs[6]))
            return grads[0], grads[1], None, None, None, grads[2], grads[3], None
        grad = v0.new_empty((ctx.steps, *v0.shape))
        grad, grad_beta, grad_v0, grad_z0 = backward_pass(
            ctx, currents, kept, v0, z0, beta_tensor, grad_spikes, grad_final, grad, needs[1], needs[5], needs[6]
        )
        return grad, grad_beta, None, None, None, grad_v0, grad_z0, None


def forward_pass(currents, beta, threshold, surrogate, v0, z0, kernels, spikes=None):
    """``(spikes, kept)``: the spikes of every step, and the voltages the backward pass reads (every
    ``_INTERVAL``-th where the kernel recomputes the others, else all); the last row is ``v_{T−1}``.
    ``spikes``: where the native kernel writes them (default a new tensor)."""
    if _native(kernels, surrogate) is not None:
        spikes, kept = extension.forward(currents, _rows(beta, v0), threshold, v0, z0, _INTERVAL, spikes)
    else:
        spikes, kept = kernels.forward(currents, _rows(beta, v0), threshold, v0, z0)
    # A non-finite current stays in v at every later step (β > 0): the last row checks them all.
    if not torch.isfinite(kept[-1]).all():
        raise ValueError("currents (or state) contain NaN or infinite values, or the voltage overflowed")
    return spikes, kept


def remember(ctx, beta, threshold, surrogate, detach_reset, kernels, steps):
    """What :func:`backward_pass` reads from ``ctx`` besides the saved tensors."""
    ctx.native = _native(kernels, surrogate)
    ctx.steps, ctx.interval = steps, _INTERVAL
    ctx.beta = None if isinstance(beta, torch.Tensor) else beta
    ctx.threshold, ctx.surrogate, ctx.detach_reset = threshold, surrogate, detach_reset
    ctx.kernels = kernels


def backward_pass(ctx, currents, kept, v0, z0, beta_tensor, grad_spikes, grad_final, grad,
                  needs_beta, needs_v0, needs_z0):
    """``(dL/dI, dL/dβ, dL/dv_{−1}, dL/dz_{−1})`` (None where not needed), ``dL/dI`` into ``grad``
    (T, B, N). With the native surrogate ``grad`` may be ``currents`` itself: each segment's currents
    are read before its gradient is written."""
    beta = _rows(ctx.beta if beta_tensor is None else beta_tensor, v0)
    if grad_spikes is None:
        grad_spikes = v0.new_zeros(v0.shape).expand(ctx.steps, *v0.shape)
    grad_final = torch.zeros_like(v0) if grad_final is None else grad_final
    grad_beta = None
    if ctx.native is not None:  # the surrogate inside the kernel: one pass over the whole sequence
        grad_beta = torch.empty_like(v0) if needs_beta else None
        extension.backward_recompute(
            currents, kept, ctx.interval, v0, z0, ctx.native, grad_spikes, grad_final, beta,
            ctx.threshold, ctx.detach_reset, grad, grad_beta,
        )
    else:
        carry = None
        for steps in reversed(_chunks(kept)):
            h = ctx.surrogate.derivative(kept[steps] - ctx.threshold)
            h = h.to(kept.dtype).expand_as(kept[steps])
            ctx.kernels.backward(
                h, carry, grad_spikes[steps], grad_final, beta, ctx.threshold, ctx.detach_reset,
                grad[steps],
            )
            carry = grad[steps.start]
        if needs_beta:
            grad_beta = sum((grad[steps] * _previous(kept, v0, steps)).sum(0) for steps in _chunks(kept))
    if grad_beta is not None:
        grad_beta = grad_beta.sum_to_size(beta_tensor.shape).to(beta_tensor)
    grad_v0 = beta * grad[0] if needs_v0 else None
    grad_z0 = -ctx.threshold * grad[0] if needs_z0 and not ctx.detach_reset else None
    return grad, grad_beta, grad_v0, grad_z0


def differentiable_gradients(ctx, currents, beta_tensor, v0, z0, grad_spikes, grad_final, needs):
    """``(dL/dI, dL/dβ, dL/dv_{−1}, dL/dz_{−1})`` (None where ``needs`` is false) as the step path
    gives them, with a graph: the recurrence run again with autograd from the saved inputs."""
    def recompute(currents, beta_tensor, v0, z0):
        return fallback.differentiable(currents, ctx.beta if beta_tensor is None else beta_tensor, ctx.threshold,
                                       ctx.surrogate, ctx.detach_reset, v0, z0)
    return fallback.graph_gradients(recompute, (currents, beta_tensor, v0, z0), needs, (grad_spikes, grad_final))


def _native(kernels, surrogate):
    """The C++ kernel's own form of ``surrogate`` (``extension.native_surrogate``), if it runs."""
    return extension.native_surrogate(surrogate) if kernels is extension else None


def _chunks(voltages):
    """Slices of about ``_CHUNK`` elements along time. The surrogate's temporaries stay in cache (over
    the whole sequence at once, their fresh memory made the backward pass 4-8 times slower), and the
    chunks are few (each op is a parallel region, which stalls when another process holds a core)."""
    steps = max(1, _CHUNK // max(1, voltages[0].numel()))
    return [slice(t, min(t + steps, len(voltages))) for t in range(0, len(voltages), steps)]


def _previous(voltages, v0, steps):
    """``v_{t−1}`` for the steps of a chunk."""
    if steps.start > 0:
        return voltages[steps.start - 1 : steps.stop - 1]
    return torch.cat([v0[None], voltages[: steps.stop - 1]])


def _rows(beta, like):
    """β as a contiguous (B, N) tensor like ``like``."""
    if isinstance(beta, torch.Tensor):
        return beta.detach().to(like).expand_as(like).contiguous()
    return torch.full_like(like, beta)


def _check_currents(currents):
    if not isinstance(currents, torch.Tensor) or currents.dim() != 3:
        shape = tuple(currents.shape) if isinstance(currents, torch.Tensor) else type(currents).__name__
        raise ValueError(f"currents must be a tensor of shape (T, B, N), got {shape}")
    if not currents.is_floating_point():
        raise ValueError(f"currents must be floating point, got {currents.dtype}")
    if currents.shape[0] == 0:
        raise ValueError("currents must have at least one time step (T > 0)")


def _check_beta(beta, size):
    if isinstance(beta, torch.Tensor):
        if beta.shape not in ((), (size,)) or not beta.is_floating_point():
            raise ValueError(
                f"beta must be a number or a float tensor of shape () or ({size},), "
                f"got {beta.dtype} of shape {tuple(beta.shape)}"
            )
        values = transforms.concrete(beta).detach()
        if not ((values > 0) & (values <= 1)).all():
            raise ValueError("beta must lie in (0, 1]")
    elif isinstance(beta, numbers.Real) and not isinstance(beta, bool):
        if not 0 < require_finite("beta", beta) <= 1:
            raise ValueError(f"beta must lie in (0, 1], got {beta!r}")
    else:
        raise ValueError(f"beta must be a number or a tensor, got {beta!r}")


def check_arguments(shape, like, beta, threshold, surrogate, detach_reset, state):
    """Refuses what :func:`lif_sequence` refuses, for currents of ``shape`` (T, B, N); returns the
    initial state ``(v_{−1}, z_{−1})`` as tensors like ``like``."""
    if isinstance(threshold, torch.Tensor):
        raise ValueError("threshold must be a number here (the fused operation has one threshold for all neurons)")
    require_positive("threshold", threshold)
    _check_beta(beta, shape[-1])
    if not isinstance(surrogate, Surrogate):
        raise ValueError(f"surrogate must be a neuroplastic.spikes.Surrogate, got {surrogate!r}")
    if not isinstance(detach_reset, bool):
        raise ValueError(f"detach_reset must be a bool, got {detach_reset!r}")
    shape = shape[1:]
    if state is None:
        zeros = like.new_zeros(shape)
        return zeros, zeros
    if not (isinstance(state, tuple) and len(state) == 2
            and all(isinstance(x, torch.Tensor) and x.shape == shape for x in state)):
        raise ValueError(f"state must be a LeakyState (v, z) of tensors of shape {tuple(shape)}")
    return tuple(x.to(like) for x in state)
