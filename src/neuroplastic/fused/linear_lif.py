"""Synapses and a LIF layer as one fused operation: ``lif_sequence(spike_linear(x, W, b))``.

The LIF layer of :mod:`~neuroplastic.fused.lif` (``v_t = β v_{t−1} + I_t − θ z_{t−1}``,
``z_t = H(v_t − θ)``) driven by the currents ``I_t = W x_t + b`` of :mod:`~neuroplastic.fused.event_linear`
(event by event where ``x`` is spikes), with the same spikes and the same gradients (the same kernels
run in the same order; ``tests/test_linear_lif.py`` checks values and every gradient against the
two operations). What fusing adds is that the currents ``(T, B, N)`` belong to the operation, never
to the caller, so

- the backward pass writes ``dL/dI`` over them (the LIF kernel reads each segment's currents
  before it writes that segment's gradient) instead of allocating a third ``(T, B, N)`` tensor, and
  hands them to the weight gradient;
- their memory is reused from one pass to the next (:mod:`~neuroplastic.fused.workspace`), whose
  pages are then mapped already.

The output spikes, the one ``(T, B, N)`` tensor a pass still allocates, are taken from the workspace
too (a buffer of that shape that a caller gave back, such as a population's chunk done with its
spikes, else a new one), right after the currents' and before the spikes' index. Allocated after the index's few-MB buffers, they often no longer fit into the
block the previous pass's output left (the index's buffers take part of it): the C heap then grows
by the output's size and shrinks again at the end of the pass, and every pass writes fresh pages
(measured in ``neuroplastic bench``'s process: 4000 page faults, 16 MB, in about half the
forward+backward passes, each then 10-25 ms slower; with the output first, none in 22 passes).

Between the passes it keeps what ``lif_sequence`` and ``spike_linear`` keep: the currents, every
``_INTERVAL``-th voltage, the spikes' index and the input. Backward
through the same graph a second time (``retain_graph=True``) recomputes the currents the first
backward wrote over. Two consequences of owning the currents: the workspace keeps their buffers
after use, up to ``workspace.MAX_BYTES`` (256 MB) for the process, until
:func:`~neuroplastic.fused.empty_cache`; and saved-tensor hooks (``torch.utils.checkpoint``'s
non-reentrant form, ``save_on_cpu``) do not see the currents, which stay in memory until the
backward pass (the reentrant ``checkpoint`` does free them).

It runs where both fused paths do with a built-in surrogate (the kernel recomputes the voltages
from the currents; :func:`~neuroplastic.fused.extension.native_surrogate`) and the input is indexed as
spikes; otherwise it is the two operations one after the other. Where a graph of the gradient is
being built (``create_graph=True``) its backward runs ``linear`` and the recurrence again with
autograd from the saved inputs and differentiates them, as ``lif_sequence``'s does, so derivatives of
every order are the step path's (``linear`` adds in another order than the event-driven sums: in
float32 a voltage within rounding of the threshold could spike differently in the recomputation);
under ``torch.func`` transforms it is the two operations, which then run their differentiable forms.
"""
from __future__ import annotations

import torch

from neuroplastic import transforms
from neuroplastic.fused import event_linear, extension, fallback, lif, workspace
from neuroplastic.fused.lif import LeakyState

__all__ = ["linear_lif_sequence"]


def linear_lif_sequence(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    beta,
    threshold: float,
    surrogate,
    detach_reset: bool = False,
    state: LeakyState | None = None,
) -> tuple[torch.Tensor, LeakyState]:
    """Spikes ``(T, B, n_out)`` and the final state of a LIF layer fed by ``x`` ``(T, B, n_in)``
    through ``weight`` ``(n_out, n_in)`` and ``bias``; the other arguments as
    :func:`~neuroplastic.fused.lif_sequence`'s."""
    _check_shapes(x, weight, bias)
    # under a transform (of the input, the weights, β or the state) the two operations' differentiable forms
    applicable = event_linear.applies(x, weight, bias) and not transforms.active(beta, *(state or ()))
    native = extension.native_surrogate(surrogate) is not None
    shape = (x.shape[0], x.shape[1], weight.shape[0])
    # the currents' memory, then the output's, before the index: module docstring
    lease = workspace.Lease(shape, x) if native and applicable else None
    out = workspace.take(shape, x) if native and applicable else None
    events = event_linear.index(x, weight, bias) if applicable else None
    if events is None or not native:  # the two operations (spike_linear's, or the matrix product)
        if out is not None:
            workspace.give(out)
        currents = event_linear.linear_from(events, x, weight, bias)
        return lif.lif_sequence(currents, beta=beta, threshold=threshold, surrogate=surrogate,
                                detach_reset=detach_reset, state=state)
    v0, z0 = lif.check_arguments(shape, x, beta, threshold, surrogate, detach_reset, state)
    # `out` travels in a tuple: a tensor argument would be an input of the graph node, and an input
    # written and returned by forward is treated by autograd as modified in place. So does the lease.
    spikes, v_last, _, _ = _LinearLeakySequence.apply(
        events.spikes, weight, bias, beta, v0, z0, events, (out, lease), float(threshold), surrogate, detach_reset
    )
    return spikes, LeakyState(v_last, spikes[-1].clone())


def _check_shapes(x, weight, bias):
    if not (isinstance(x, torch.Tensor) and x.dim() == 3 and isinstance(weight, torch.Tensor)
            and weight.dim() == 2):
        raise ValueError("x must be a (T, B, n_in) tensor and weight an (n_out, n_in) tensor")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[-1]} inputs per step but weight is {tuple(weight.shape)} (n_out, n_in)")
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != weight.shape[:1]):
        shape = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must be None or a tensor of shape ({weight.shape[0]},), got {shape}")


class _LinearLeakySequence(extension.KernelFunction):
    """Outputs spikes, the final voltage, the kept voltages (not differentiable) and the lease on the
    currents' buffer (for the graph to hold)."""

    @staticmethod
    def forward(spikes, weight, bias, beta, v0, z0, events, output, threshold, surrogate, detach_reset):
        # the tensor to write the spikes into, (T, B, n_out), and the lease on the currents' buffer (back to
        # the workspace with the graph or after backward)
        out, lease = output
        shape = out.shape
        event_linear.currents_into(events, weight, bias, lease.buffer.view(-1, shape[-1]))
        out, kept = lif.forward_pass(lease.buffer, beta, threshold, surrogate, v0, z0, extension, out)
        return out, kept[-1].clone(), kept, lease

    @staticmethod
    def setup_context(ctx, inputs, output):
        spikes, weight, bias, beta, v0, z0, events, _, threshold, surrogate, detach_reset = inputs
        out, _, kept, lease = output
        lif.remember(ctx, beta, threshold, surrogate, detach_reset, extension, out.shape[0])
        ctx.currents, ctx.shape = lease, out.shape
        ctx.sparse = events.sparse_forward, events.sparse_gradient
        beta_tensor = beta if isinstance(beta, torch.Tensor) else None
        ctx.save_for_backward(spikes, weight, bias, events.offsets, events.columns, events.values, kept, v0, z0,
                              beta_tensor)
        ctx.mark_non_differentiable(kept)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad_spikes, grad_final, _kept, _lease):
        spikes, weight, bias, offsets, columns, values, kept, v0, z0, beta_tensor = ctx.saved_tensors
        lease, ctx.currents = ctx.currents, None
        needs = ctx.needs_input_grad
        if torch.is_grad_enabled() or transforms.active(grad_spikes, grad_final):  # module docstring
            return _differentiable_gradients(ctx, spikes, weight, bias, beta_tensor, v0, z0, grad_spikes,
                                             grad_final, needs)
        if lease is None:  # a second backward pass (retained graph): the first wrote over them
            events = event_linear.Events(spikes, offsets, columns, values, *ctx.sparse)
            lease = workspace.Lease(ctx.shape, v0)
            event_linear.currents_into(events, weight, bias, lease.buffer.view(-1, ctx.shape[-1]))
        currents = lease.buffer
        grad, grad_beta, grad_v0, grad_z0 = lif.backward_pass(
            ctx, currents, kept, v0, z0, beta_tensor, grad_spikes, grad_final, currents,
            needs[3], needs[4], needs[5],
        )
        grads = event_linear.gradients(grad.view(-1, ctx.shape[-1]), spikes, weight, offsets, columns, values,
                                       ctx.sparse[1], needs[0], needs[1], bias is not None and needs[2])
        return *grads, grad_beta, grad_v0, grad_z0, None, None, None, None, None


def _differentiable_gradients(ctx, spikes, weight, bias, beta_tensor, v0, z0, grad_spikes, grad_final, needs):
    """Every input's gradient as the step path gives it, with a graph: the currents and the recurrence
    run again with autograd from the saved inputs."""
    def recompute(spikes, weight, bias, beta_tensor, v0, z0):
        currents = torch.nn.functional.linear(spikes, weight, bias).view(ctx.shape)
        return fallback.differentiable(currents, ctx.beta if beta_tensor is None else beta_tensor, ctx.threshold,
                                       ctx.surrogate, ctx.detach_reset, v0, z0)
    inputs = (spikes, weight, bias, beta_tensor, v0, z0)
    grads = fallback.graph_gradients(recompute, inputs, needs[:len(inputs)], (grad_spikes, grad_final))
    return *grads, None, None, None, None, None
