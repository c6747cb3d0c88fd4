"""Which path a layer's ``forward`` takes: the step path, or the fused C++ operation.

Both compute the same thing (tested equal, values and derivatives of every order); they differ in
speed and in what can look inside them. A :class:`~neuroplastic.networks.SpikingLayer` is built with
``path=``:

- ``"step"``: the input currents of all steps by one matrix product, then the neuron's own ``step``
  per time step, through autograd. Every ``torch.func`` transform and every order of derivative works.
- ``"fused"``: the fused operation (:func:`~neuroplastic.fused.linear_lif_sequence`; for a recurrent
  layer :func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence`), for a layer it
  can run (:func:`why_not_fused` says why not, and the layer refuses); under a ``torch.func`` transform
  or forward-mode AD, which cannot see into it, an error. A backward with ``create_graph=True``
  differentiates the step path's recurrence instead of the kernels, so higher derivatives are exact.
- ``"auto"`` (default): ``"fused"`` where the layer can run it and no transform is active, else
  ``"step"``. It never changes what is computed, nor which transforms work.

``use_path(path)`` overrides every layer's own choice inside a ``with`` block (for code that does not
own the layers: an outer loop that wants the step path, a benchmark that wants the fused one).
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar

from torch.nn.modules import module as module_hooks
from torch.nn.utils import parametrize

from neuroplastic import transforms
from neuroplastic.fused import recurrent as recurrent_kernel
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.synapses import Dense, Recurrent

__all__ = ["PATHS", "use_path", "check_path", "why_not_fused", "runs_fused"]

PATHS = ("auto", "step", "fused")
_override: ContextVar[str | None] = ContextVar("neuroplastic_path", default=None)


def check_path(path: str) -> str:
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    return path


@contextlib.contextmanager
def use_path(path: str):
    """Inside the block every layer takes ``path``, whatever it was built with."""
    token = _override.set(check_path(path))
    try:
        yield
    finally:
        _override.reset(token)


def why_not_fused(neuron, recurrent, payload=None) -> str | None:
    """Why the fused operation cannot run a layer of ``neuron`` (with ``recurrent`` synapses or
    ``None``, spikes carrying ``payload`` or ``None``), or ``None`` where it can. Feed-forward: the
    discrete LIF of e-prop and snnTorch, its payload (if any) not read from the potential
    (:func:`~neuroplastic.fused.linear_lif_sequence`). Recurrent: e-prop's ALIF (LIF for ``beta = 0``)
    with plain :class:`~neuroplastic.synapses.Recurrent` synapses, binary spikes and a built-in surrogate
    (:func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence`)."""
    if recurrent is not None:
        return recurrent_kernel.why_not(neuron) or _why_not_recurrent(recurrent, payload)
    if not isinstance(neuron, ALIF):
        return f"its neurons are {type(neuron).__name__}, not the discrete LIF (ALIF with beta=0)"
    numbers = ("beta", "t_ref", "v_th")
    if any(holds_tensors(value) for value in (neuron.reset, neuron.surrogate)) or any(
            not isinstance(getattr(neuron, name), (int, float)) for name in numbers):
        return "beta, t_ref, v_th, the reset and the surrogate must hold numbers (tau_m may be a tensor)"
    if not isinstance(neuron.reset, ResetBySubtraction):
        return f"its reset is {neuron.reset!r}, not by subtraction"
    if payload is not None and payload.reads_potential:
        return "its spikes' payload is read from the membrane potential of every step"
    if neuron.beta != 0 or neuron.t_ref != 0:
        return "its neurons adapt (beta != 0) or are refractory (t_ref != 0)"
    return None


def _why_not_recurrent(recurrent, payload) -> str | None:
    kind = parametrize.type_before_parametrizations(recurrent)
    if kind is not Recurrent:
        return f"its recurrent synapses are {kind.__name__}, not Recurrent"
    if hooked(recurrent):
        return "its recurrent synapses have hooks, which only the step path's calls of them run"
    if payload is not None:
        return "its spikes carry a payload into the recurrence"
    return None


def plain(synapses) -> bool:
    """A :class:`~neuroplastic.synapses.Dense` whose call is just its product, which a fused operation
    may compute itself: no subclass, no hooks (pruning, spectral norm and the like install them)."""
    return type(synapses) is Dense and not hooked(synapses)


def hooked(module) -> bool:
    """Forward or backward hooks on ``module``, or global module hooks."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or module_hooks._global_forward_hooks
                or module_hooks._global_forward_pre_hooks or module_hooks._global_backward_hooks
                or module_hooks._global_backward_pre_hooks)


def runs_fused(path: str, reason: str | None, *tensors) -> bool:
    """Whether a layer built with ``path`` (where ``reason`` is :func:`why_not_fused`'s answer) runs
    the fused operation on ``tensors`` now."""
    path = _override.get() or path
    if path == "step":
        return False
    if path == "fused":
        if reason is not None:
            raise ValueError(f"path='fused' cannot run this layer: {reason}")
        if transforms.active(*tensors):
            raise RuntimeError("path='fused' runs a C++ kernel that torch.func transforms and forward-mode AD "
                               "cannot see into; use path='auto' (which takes the step path under them) or 'step'")
        return True
    return reason is None and not transforms.active(*tensors)
