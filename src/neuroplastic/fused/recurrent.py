"""A recurrent layer of adaptive LIF neurons over a whole sequence: its time loops in C++.

The e-prop / LSNN cell (Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks
of spiking neurons", NeurIPS; Bellec et al. 2020, Nat. Commun. 11:3625, Methods) of
:class:`~neuroplastic.neurons.ALIF` — with ``beta = 0`` the recurrent LIF — fed by its input currents
``X_t`` and by its own spikes of the previous step through recurrent weights ``W`` (zero diagonal):

    I_t = X_t + W z_{t−1},   v_t = α v_{t−1} + I_t − θ z_{t−1},   a_t = ρ a_{t−1} + z_{t−1}
    z_t = H(u_t) · [not refractory],   u_t = (v_t − θ − β a_t)/θ

(``α = exp(−dt/τ_m)``, ``ρ = exp(−dt/τ_a)``; refractory for ``t_ref/dt`` steps after a spike). A
recurrent product cannot be batched over time: each step needs the spikes of the one before. So the
forward pass is one ``(B×N)·(N×N)`` product per step and the neurons' update; the step path adds
Python and a dozen small operations per step around that product, which here run in one C++ loop.
The product's input is spikes: where a step has at most ``EVENT_DENSITY`` of its neurons spiking, it
is summed event by event (a row of ``Wᵀ`` added per spike, in a fixed order) instead of multiplied.

**Backward.** Exact BPTT with ``h_t = ∂z_t/∂v_t = σ'(u_t)/θ`` (zero while refractory; ``∂z_t/∂a_t =
−β h_t``), kept by the forward pass. With ``g^z_t`` the gradient arriving at the spikes directly and
``ĝ^v``, ``ĝ^a`` the total gradients of the state, ``k = θ`` (0 for a detached reset):

    c_t = g^z_t + ĝ^a_{t+1} − k ĝ^v_{t+1} + ĝ^v_{t+1} W      (what reaches z_t: its three paths into step t+1)
    ĝ^v_t = h_t c_t + α ĝ^v_{t+1},    ĝ^a_t = −β h_t c_t + ρ ĝ^a_{t+1}

(at the last step ``c = g^z`` and the final state's own gradients are added), one product per step.
``c_t`` reaches the gradients only through ``h_t``, which a surrogate of bounded support (the
triangle, the boxcar) and the refractory period leave mostly zero: where a step has few nonzero
``h_t`` the product is computed for those entries alone, up to a density measured on this machine
for each shape at its first backward pass (:func:`pseudo_density`). Then ``dL/dX_t = ĝ^v_t``,
``dL/dW = Σ_t ĝ^{vᵀ}_t z_{t−1}`` in one product over all steps (summed spike by spike where they are
sparse: :mod:`~neuroplastic.fused.event_linear`), and the initial
state's ``dL/dv_{−1} = α ĝ^v_0``, ``dL/da_{−1} = ρ ĝ^a_0``, ``dL/dz_{−1} = ĝ^a_0 − k ĝ^v_0 + ĝ^v_0 W``.
Between the passes the operation keeps the currents, the spikes and ``h``: three ``(B, N)`` tensors
per step; where the currents are its own (``reuse_currents``: a layer's) the backward pass writes
``dL/dX`` over them, and needs no fourth. (Then a graph of the gradient cannot be built in a second
backward pass through the same graph, which would need them: a clear error.)
``tests/test_recurrent_fused.py`` holds values and gradients to autograd through the step path.

**Where it runs**: the C++ backend, CPU float32/float64, a built-in surrogate
(:func:`~neuroplastic.fused.extension.native_surrogate`). Anywhere else — and where a graph of the
gradient is being built (``create_graph=True``) or under ``torch.func`` transforms — the same
sequence runs (or is differentiated) through the step path,
:meth:`ALIF.step <neuroplastic.neurons.ALIF.step>` in a loop, so every derivative of every order is
the step path's.
"""
from __future__ import annotations

import functools
import math
import time

import torch
from torch.nn import functional

from neuroplastic import transforms
from neuroplastic.fused import calibration, event_linear, extension, fallback, workspace
from neuroplastic.neurons.alif import ALIF, ALIFState
from neuroplastic.neurons.base import ResetBySubtraction, check_dt, exp_decay
from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.validation import all_finite

__all__ = ["alif_recurrent_sequence", "recorded_sequence", "why_not", "pseudo_density"]

# Spike density of a step up to which its recurrent product runs event by event. Measured (N = 512,
# B = 16, one thread; the forward of 200 steps in ms, BLAS against events): density 0.07: 25.1 / 8.2,
# 0.16: 24.8 / 14.7, 0.26: 24.5 / 19.1, 0.40: 24.8 / 27.2, 0.54: 24.7 / 39.0.
EVENT_DENSITY = 0.3


def alif_recurrent_sequence(currents: torch.Tensor, weight: torch.Tensor, neuron: ALIF, dt: float,
                            state: ALIFState, *, reuse_currents: bool = False) -> tuple[torch.Tensor, ALIFState]:
    """Spikes ``(T, B, N)`` of recurrent ``neuron`` s driven by ``currents`` ``(T, B, N)`` and their own
    spikes through ``weight`` ``(N, N)`` (its diagonal zero: the caller's) — or of M models at once
    through stacked weights ``(M, N, N)``, the batch's rows in M consecutive groups — from ``state``;
    and the final state, which continues the sequence exactly. ``neuron``'s constants must be numbers and its
    reset by subtraction (:func:`~neuroplastic.networks.paths.why_not_fused` says so for a layer).
    ``reuse_currents``: the currents are the caller's to give away (made for this call alone): the
    backward pass writes their gradient over them instead of allocating a fourth tensor per step."""
    reason = why_not(neuron)
    if reason is not None:
        raise ValueError(f"alif_recurrent_sequence cannot run these neurons: {reason}")
    dt = check_dt(dt)
    if not (isinstance(currents, torch.Tensor) and currents.dim() == 3 and currents.is_floating_point()):
        raise ValueError(f"currents must be a float tensor (T, B, N), got {getattr(currents, 'shape', currents)}")
    size, batch = currents.shape[-1], currents.shape[1]
    if weight.shape[-2:] != (size, size) or weight.dim() not in (2, 3) or batch % weight.reshape(-1, size, size).shape[0]:
        raise ValueError(f"recurrent weight must be ({size}, {size}), or (M, {size}, {size}) with M dividing the "
                         f"batch of {batch}; got {tuple(weight.shape)}")
    state = ALIFState(*(torch.as_tensor(x, dtype=currents.dtype, device=currents.device).expand(batch, size)
                        for x in state))  # a state that broadcasts, as the step path takes it
    native = extension.native_surrogate(neuron.surrogate)
    kernel = (not transforms.active(currents, weight, *state)
              and extension.backend(currents) == "cpp" and weight.dtype == currents.dtype)
    if not kernel:
        return step_path(currents, weight, neuron, dt, state)
    arguments = (currents, weight, state.v, state.a, state.z, state.refractory, neuron, dt, native)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (currents, weight, *state)):
        spikes, v, a, refractory, _ = _RecurrentSequence.apply(*arguments, reuse_currents)
    else:  # no backward pass: the kernel leaves out h
        spikes, v, a, refractory, _ = _forward(*arguments, keep_h=False)
    return spikes, ALIFState(v, a, spikes[-1].clone(), refractory)


@torch.no_grad()
def recorded_sequence(currents, weight, neuron: ALIF, dt: float, state: ALIFState):
    """``(spikes, ψ)`` of the sequence, without a graph: ``ψ_t = ∂z_t/∂v_t``
    (:meth:`ALIF.pseudo_derivative <neuroplastic.neurons.ALIF.pseudo_derivative>`), which the forward
    kernel computes at every step anyway — what the online rules' whole-sequence mode reads. ``weight``
    ``None``: a layer without recurrence."""
    spikes, _, _, _, psi = _forward(currents, weight, state.v, state.a, state.z, state.refractory, neuron, dt,
                                    extension.native_surrogate(neuron.surrogate))
    return spikes, psi


def why_not(neuron) -> str | None:
    """Why the kernel cannot run ``neuron`` s, or ``None`` where it can: e-prop's ALIF (any ``beta``,
    ``t_ref``) whose constants are numbers, reset by subtraction, with a built-in surrogate."""
    if not isinstance(neuron, ALIF):
        return f"its neurons are {type(neuron).__name__}, not the discrete LIF or ALIF"
    numbers = ("tau_m", "tau_a", "beta", "t_ref", "v_th")
    if holds_tensors(neuron.reset) or any(not isinstance(getattr(neuron, name), (int, float)) for name in numbers):
        return f"{', '.join(numbers)} and the reset must hold numbers"
    if not isinstance(neuron.reset, ResetBySubtraction):
        return f"its reset is {neuron.reset!r}, not by subtraction"
    if extension.native_surrogate(neuron.surrogate) is None:
        return f"its surrogate {neuron.surrogate!r} is not one the kernel evaluates"
    return None


def step_path(currents, weight, neuron: ALIF, dt: float, state: ALIFState) -> tuple[torch.Tensor, ALIFState]:
    """The same sequence through :meth:`ALIF.step` and ``linear``, with autograd."""
    spikes = []
    for current in currents.unbind(0):
        z, state = neuron.step(state, current + recurrent_input(state.z, weight), dt)
        spikes.append(z)
    return torch.stack(spikes), state


def recurrent_input(z, weight):
    """``z Wᵀ``; for stacked weights ``(M, N, N)`` each model's group of rows by its own."""
    if weight.dim() == 2:
        return functional.linear(z, weight)
    models, size = weight.shape[:2]
    return torch.bmm(z.view(models, -1, size), weight.transpose(1, 2)).view_as(z)


class _RecurrentSequence(extension.KernelFunction):
    """Outputs spikes, the final ``v``, ``a``, refractory time, and ``h`` (the last two not differentiable)."""

    @staticmethod
    def forward(currents, weight, v0, a0, z0, r0, neuron, dt, native, reuse_currents):
        return _forward(currents, weight, v0, a0, z0, r0, neuron, dt, native)

    @staticmethod
    def setup_context(ctx, inputs, output):
        currents, weight, v0, a0, z0, r0, neuron, dt, _, reuse_currents = inputs
        spikes, _, _, refractory, h = output
        ctx.neuron, ctx.dt = neuron, dt
        ctx.reuse_currents, ctx.currents_overwritten = reuse_currents and currents.is_contiguous(), False
        ctx.save_for_backward(currents, weight, v0, a0, z0, r0, spikes, h)
        ctx.mark_non_differentiable(refractory, h)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad_spikes, grad_v, grad_a, _, __):
        currents, weight, v0, a0, z0, r0, spikes, h = ctx.saved_tensors
        needs = ctx.needs_input_grad[:5]
        if torch.is_grad_enabled() or transforms.active(grad_spikes, grad_v, grad_a):  # module docstring
            if ctx.currents_overwritten:
                raise RuntimeError("a graph of the gradient through a fused recurrent layer cannot be built "
                                   "after a first backward pass through it (retain_graph=True) wrote over its "
                                   "currents: take path='step' for the layer")
            def recompute(currents, weight, v0, a0, z0):
                out, final = step_path(currents, weight, ctx.neuron, ctx.dt, ALIFState(v0, a0, z0, r0))
                return out, final.v, final.a
            grads = fallback.graph_gradients(recompute, (currents, weight, v0, a0, z0), needs,
                                             (grad_spikes, grad_v, grad_a))
            return *grads, None, None, None, None, None
        grad = currents if ctx.reuse_currents else torch.empty_like(h)
        ctx.currents_overwritten = ctx.reuse_currents
        return *_kernel_gradients(ctx, weight, z0, spikes, h, grad_spikes, grad_v, grad_a, needs, grad), \
            None, None, None, None, None


def _kernel_gradients(ctx, weight, z0, spikes, h, grad_spikes, grad_v, grad_a, needs, grad):
    """``(dL/dX, dL/dW, dL/dv_{−1}, dL/da_{−1}, dL/dz_{−1})`` by the C++ reverse loop (module docstring),
    ``dL/dX`` into ``grad``."""
    neuron, rows = ctx.neuron, h[0]
    alpha, rho = _leaks(neuron, ctx.dt, h)
    reset = 0.0 if neuron.reset.detach else float(neuron.v_th)
    if grad_spikes is None:
        grad_spikes = rows.new_zeros(rows.shape).expand_as(h)
    grad_a0 = torch.empty_like(rows)
    stacked = _stacked(weight)
    # stacked weights: their gradients summed spike by spike inside the reverse loop, as transposes
    grad_weight_t = torch.zeros_like(stacked) if needs[1] and weight.dim() == 3 else None
    torch.ops.neuroplastic_fused.alif_recurrent_backward(
        h, stacked, alpha, rho, float(neuron.beta), reset, *extension.base_and_stride(grad_spikes),
        torch.zeros_like(rows) if grad_v is None else grad_v.contiguous(),
        torch.zeros_like(rows) if grad_a is None else grad_a.contiguous(), grad, grad_a0,
        spikes, z0.to(h).contiguous(), grad_weight_t, _max_pseudo(h, stacked))
    grad_weight = None
    if needs[1] and weight.dim() == 2:  # Σ_t ĝ^v_tᵀ z_{t−1}: the spikes shifted by one step, not copied
        grad_weight = grad[0].t() @ z0.to(h)
        if len(h) > 1:
            grad_weight = grad_weight + event_linear.weight_gradient(grad[1:], spikes[:-1])
    elif needs[1]:
        grad_weight = grad_weight_t.transpose(1, 2)
    grad_v0 = alpha * grad[0] if needs[2] else None
    grad_a0_out = rho * grad_a0 if needs[3] else None
    grad_z0 = grad_a0 - reset * grad[0] + _back(grad[0], stacked) if needs[4] else None
    return grad if needs[0] else None, grad_weight, grad_v0, grad_a0_out, grad_z0


def _max_events(currents, weight) -> int:
    """The most spikes a step may have for its recurrent product to run event by event; −1 (never) for
    a weight holding NaN or infinity, which only a dense product spreads to every neuron (``0 · NaN``),
    as the step path does, so that the divergence shows."""
    if weight is None or not all_finite(weight):
        return -1
    return int(EVENT_DENSITY * currents[0].numel())


def _max_pseudo(h, stacked) -> int:
    """The most nonzero ``h_t`` a step may have for the backward's product ``ĝ^v_{t+1} W`` to be
    computed only where ``h_t ≠ 0`` (the rest never reaches a gradient); −1 (always dense) under
    ``torch.use_deterministic_algorithms``, as the choice rests on a timing. The kernel also takes the
    dense product on a step whose ``ĝ^v_{t+1}`` or weight is not finite or could overflow (its NaN and
    infinities spread as the step path's do)."""
    if torch.are_deterministic_algorithms_enabled():
        return -1
    models, width = stacked.shape[:2]
    density = pseudo_density(h.shape[1] // models, width, models, h.dtype, torch.get_num_threads())
    return int(density * h[0].numel())


@functools.lru_cache(maxsize=32)
def pseudo_density(rows: int, width: int, models: int, dtype: torch.dtype, threads: int) -> float:
    """The density of ``h_t`` below which the backward's product is cheaper where ``h_t ≠ 0`` than dense,
    measured at the first backward pass of each shape on this machine (a few products): the masked
    product costs about linearly in the density, measured at 1/4 and at 1, against the dense product
    (BLAS, whose efficiency depends on the shape and the CPU). Measured once per machine and kept
    (:mod:`~neuroplastic.fused.calibration`): the choice orders the additions, and a seed's run then
    gives the same bits in every later process."""
    if extension.backend() != "cpp":
        raise RuntimeError("pseudo_density measures the C++ kernel, which is not available here")
    key = f"pseudo_density rows={rows} width={width} models={models} {dtype} threads={threads}"
    return min(max(calibration.remembered(key, lambda: _measure_pseudo_density(rows, width, models, dtype)), 0.0), 1.0)


def _measure_pseudo_density(rows: int, width: int, models: int, dtype: torch.dtype) -> float:
    generator, cpu = torch.Generator().manual_seed(0), dict(dtype=dtype, device="cpu")  # the caller's stream untouched
    batch = rows * models
    weight = torch.randn(models, width, width, generator=generator, **cpu) / math.sqrt(width)
    ones, zeros = torch.ones(width, **cpu), torch.zeros(batch, width, **cpu)

    def seconds(steps, density, max_pseudo):
        h = (torch.rand(steps, batch, width, generator=generator, device="cpu") < density).to(dtype)
        gradient = torch.randn(h.shape, generator=generator, **cpu)
        grad, grad_a0 = torch.empty_like(h), torch.empty_like(zeros)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            torch.ops.neuroplastic_fused.alif_recurrent_backward(
                h, weight, ones, ones, 0.0, 1.0, gradient, batch * width, zeros, zeros, grad, grad_a0, None,
                None, None, max_pseudo)
            best = min(best, time.perf_counter() - start)
        return best

    def per_product(density, max_pseudo):  # 16 products: the call's fixed costs (Wᵀ's copy) cancel
        return seconds(17, density, max_pseudo) - seconds(1, density, max_pseudo)

    dense, quarter, full = per_product(1.0, -1), per_product(0.25, batch * width), per_product(1.0, batch * width)
    if full <= dense:
        return 1.0
    return 0.25 + 0.75 * (dense - quarter) / max(full - quarter, 1e-12)  # pseudo_density keeps it in [0, 1]


def _forward(currents, weight, v0, a0, z0, r0, neuron, dt, native, keep_h=True):
    """The forward kernel's pass: spikes (into a buffer of the workspace, which a caller done with them
    may give back), the final ``v``, ``a`` and refractory time, and ``h`` where ``keep_h`` (else None)."""
    kind, constants = native
    currents = currents.contiguous()
    alpha, rho = _leaks(neuron, dt, currents)
    v, a, refractory = (x.to(currents).clone().contiguous() for x in (v0, a0, r0))
    spikes, h = workspace.take(currents.shape, currents), torch.empty_like(currents) if keep_h else None
    torch.ops.neuroplastic_fused.alif_recurrent_forward(
        currents, None if weight is None else _stacked(weight), alpha, rho, float(neuron.v_th), float(neuron.beta),
        float(neuron.t_ref), float(dt), kind, constants, _max_events(currents, weight),
        z0.to(currents).contiguous(), v, a, refractory, spikes, h)
    # A non-finite current stays in v at every later step (α > 0): the last one checks them all.
    if not bool(torch.isfinite(v).all() & torch.isfinite(a).all()):
        raise ValueError("the layer's ALIF neurons diverged: their state holds NaN or infinite values "
                         f"after {len(currents)} steps; smaller weights or inputs keep it finite")
    return spikes, v, a, refractory, h


def _stacked(weight):
    """The weight as the kernels take it: ``(M, N, N)``, contiguous, without its graph."""
    weight = weight.detach()
    return (weight if weight.dim() == 3 else weight.unsqueeze(0)).contiguous()


def _back(grad, stacked):
    """``g W`` of each model's rows of ``g``."""
    models, size = stacked.shape[:2]
    return torch.bmm(grad.view(models, -1, size), stacked).view_as(grad)


def _leaks(neuron: ALIF, dt: float, like: torch.Tensor):
    """``α`` and ``ρ`` as rows ``(N,)`` like ``like``, cast as the step path casts a Python number."""
    size = like.shape[-1]
    return tuple(torch.full((size,), exp_decay(dt, tau), dtype=like.dtype, device=like.device)
                 for tau in (neuron.tau_m, neuron.tau_a))
