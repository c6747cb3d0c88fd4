"""Buffers that fused operations reuse from one pass to the next instead of allocating afresh.

A fused layer's currents ``(T, B, N)`` are its own: made in the forward pass, read and overwritten
by the backward pass, never seen by the caller. Allocated afresh each pass they are also slow to
write: glibc hands large freed blocks back to the kernel (its trim threshold follows twice the
largest mapped block freed so far, up to 64 MiB), so the next pass's first write to every 4 KiB page
of a new 16 MiB tensor is a page fault that the kernel serves by zeroing the page. On the standard
workload (``neuroplastic bench``, N = 512) that is 4096 faults, about 4 ms of a 30 ms pass. A
buffer handed back with :func:`give` after the backward pass is handed out again by :func:`take`
for the next one, its pages already mapped. A :class:`Lease` gives its buffer back when dropped,
also when the graph that held it is freed without a backward pass (a forward pass only, or an
exception).

At most ``MAX_BYTES`` are kept for the rest of the process (beyond that, those given back longest
ago are freed), and :func:`empty_cache` frees them all. Only a buffer no one else refers to may be
given back: its contents are overwritten by the next :func:`take`. :func:`take` makes its tensors
outside ``torch.inference_mode`` (written inside it as well as outside), so that evaluation reuses
them too; a tensor made inside it (outside it it may not be written) is not kept.

:func:`give` takes no lock: a lease may be dropped by the garbage collector while this thread holds
the lock (a collection can start at any allocation), so given buffers wait in a queue that
:func:`take` and :func:`give` move into the kept list when the lock is free.
"""
from __future__ import annotations

import collections
import threading

import torch

__all__ = ["MAX_BYTES", "Lease", "empty_cache", "give", "take"]

MAX_BYTES = 256 << 20  # kept at most, in all
_free: list[torch.Tensor] = []  # kept, oldest first; guarded by _lock
_given: collections.deque[torch.Tensor] = collections.deque()  # given back, not yet kept
_lock = threading.Lock()


def take(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialized tensor of ``shape`` with ``like``'s dtype and device: a kept one if any fits."""
    with _lock:
        _keep_given()
        for i, buffer in enumerate(_free):
            if buffer.shape == shape and buffer.dtype == like.dtype and buffer.device == like.device:
                return _free.pop(i)
    with torch.inference_mode(False):  # module docstring
        return like.new_empty(shape)


def give(buffer: torch.Tensor) -> None:
    """Keeps ``buffer`` (contiguous, referred to by no one else) for a later :func:`take`; beyond
    ``MAX_BYTES`` the buffers given longest ago are freed (the latest shapes are the likeliest next)."""
    if buffer.is_inference():
        return
    _given.append(buffer)
    if _lock.acquire(blocking=False):  # else the holder, or the next take, keeps it
        try:
            _keep_given()
        finally:
            _lock.release()


class Lease:
    """``buffer``, from :func:`take`, given back when the lease is dropped: hold the lease, not the
    buffer, where the buffer's last user may be a graph that is freed without a backward pass."""

    def __init__(self, shape: tuple[int, ...], like: torch.Tensor):
        self.buffer = take(shape, like)

    def __del__(self):
        give(self.buffer)


def empty_cache() -> None:
    """Frees every kept buffer."""
    with _lock:
        _given.clear()
        _free.clear()


def _keep_given() -> None:
    """Moves the given buffers to the kept ones and frees the oldest beyond ``MAX_BYTES`` (lock held)."""
    while _given:
        _free.append(_given.popleft())
    kept = sum(buffer.numel() * buffer.element_size() for buffer in _free)
    while kept > MAX_BYTES:
        oldest = _free.pop(0)
        kept -= oldest.numel() * oldest.element_size()
