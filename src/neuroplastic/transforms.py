"""What the library needs to know about ``torch.func`` transforms and forward-mode AD.

Under ``grad``, ``vmap``, ``jvp`` and their compositions, tensors are wrapped once per transform
level, and code that turns a tensor into a Python value (``bool(x.all())``) is data-dependent
control flow that ``vmap`` refuses. Two helpers keep checks and fast paths honest under them:

- :func:`active`: whether a transform is running, or one of the tensors carries a forward-mode
  tangent (``torch.autograd.forward_ad``) or a batch of gradients — where a fast path without a
  ``jvp`` or batching rule must give way;
- :func:`concrete`: a tensor's underlying value, every transform's wrapper removed, so that an input
  check such as "all finite" looks at every element (of every vmapped sample) without branching on
  a batched value.

They use ``torch._C._functorch``, the functions ``torch.func`` itself is built on.
"""
from __future__ import annotations

import torch
import torch.autograd.forward_ad as forward_ad
from torch._C import _functorch

__all__ = ["active", "concrete"]


def active(*tensors) -> bool:
    """Whether a ``torch.func`` transform is running, or any of ``tensors`` (``None`` allowed) carries a
    forward-mode tangent or is batched by the older ``vmap`` that batched gradients use
    (``autograd.grad(..., is_grads_batched=True)``, vectorized ``autograd.functional.jacobian``)."""
    if _functorch.peek_interpreter_stack() is not None:
        return True
    return any(isinstance(t, torch.Tensor) and (forward_ad.unpack_dual(t).tangent is not None
                                                or _functorch.is_legacy_batchedtensor(t)) for t in tensors)


def concrete(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` without the wrappers of the transforms running (itself outside any)."""
    while _functorch.is_functorch_wrapped_tensor(tensor):
        tensor = _functorch.get_unwrapped(tensor)
    return tensor
