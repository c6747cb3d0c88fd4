"""The C++ backend: built on first use, cached, and chosen only where it applies.

``lif.cpp`` ships inside the package and is compiled just in time with
``torch.utils.cpp_extension.load`` (needs a C++ compiler and ``ninja``) the first time a fused pass
runs on CPU float32/float64 tensors, never at import. The library is cached as
``<TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions>/neuroplastic/neuroplastic_lif_<hash>.so``, the
hash covering the source, the torch version, the flags and the machine, so a changed source or a
new torch builds afresh and later processes load the file without ninja. Each build runs in its own
temporary folder and is moved into place atomically, so concurrent first uses (test workers, jobs)
need no lock and a killed build leaves nothing half-written. If no build succeeds the PyTorch
fallback is used, with one warning.

``NEUROPLASTIC_FUSED`` chooses: ``auto`` (default) the C++ kernel where it applies, ``torch`` always
the fallback, ``cpp`` the C++ kernel or an error.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import torch

__all__ = ["backend", "forward", "backward"]

ENV = "NEUROPLASTIC_FUSED"
_CHOICES = ("auto", "torch", "cpp")
_SOURCE = Path(__file__).with_name("lif.cpp")
# (compiler flags, linker flags), tried in turn. OpenMP lets at::parallel_for split the neurons among
# torch's threads (without it, one thread); no fused multiply-add, so each operation rounds as in the
# step path and the spikes match it exactly; no -march=native, as the cache may be shared by machines.
_FLAG_SETS = (
    (["-O3", "-ffp-contract=off", "-fopenmp"], ["-fopenmp"]),
    (["-O3", "-ffp-contract=off"], []),
)
_lock = threading.Lock()
_loaded: bool | None = None


def backend(tensor: torch.Tensor | None = None) -> str:
    """``"cpp"`` or ``"torch"``: the backend a fused pass over ``tensor`` uses (builds on first call).

    Without a tensor, the backend for CPU float32 tensors.
    """
    choice = os.environ.get(ENV, "auto")
    if choice not in _CHOICES:
        raise ValueError(f"{ENV} must be one of {_CHOICES}, got {choice!r}")
    if choice == "torch":
        return "torch"
    fits = tensor is None or (
        tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)
    )
    if fits and _load():
        return "cpp"
    if choice == "cpp":
        reason = "it could not be built" if fits else "it needs CPU float32 or float64 tensors"
        raise RuntimeError(f"{ENV}=cpp, but the C++ kernel cannot be used: {reason}")
    return "torch"


def forward(currents, beta, threshold, v0, z0):
    """``(spikes, voltages)`` of the recurrence, as ``fallback.forward``."""
    spikes = torch.empty_like(currents)
    voltages = torch.empty_like(currents)
    torch.ops.neuroplastic_fused.lif_forward(
        currents.contiguous(), beta, threshold, v0.contiguous(), z0.contiguous(), spikes, voltages
    )
    return spikes, voltages


def backward(h, carry, grad_spikes, grad_voltages, beta, threshold, detach_reset, out):
    """The reverse recurrence over a chunk of steps into ``out``, as ``fallback.backward``."""
    torch.ops.neuroplastic_fused.lif_backward(
        h.contiguous(), carry, *_base_and_stride(grad_spikes), *_base_and_stride(grad_voltages),
        beta, threshold, detach_reset, out,
    )


def _base_and_stride(grad):
    """A (T, B, N) gradient as a contiguous base and its step stride (0: the same row at every t)."""
    if grad.stride(0) == 0:
        return grad[0].contiguous(), 0
    return grad.contiguous(), grad[0].numel()


def _load() -> bool:
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                _build_and_load()
                _loaded = True
            except Exception as error:  # no compiler, no ninja, a failed link: fall back, loudly
                warnings.warn(
                    f"neuroplastic.fused: the C++ kernel could not be built ({error}); "
                    "using the slower PyTorch fallback",
                    RuntimeWarning,
                    stacklevel=3,
                )
                _loaded = False
        return _loaded


def _build_and_load():
    from torch.utils import cpp_extension

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    root = root / "neuroplastic"
    source = _SOURCE.read_bytes()
    names = []
    for flags in _FLAG_SETS:
        key = repr((source, torch.__version__, flags, platform.machine())).encode()
        names.append((f"neuroplastic_lif_{hashlib.sha256(key).hexdigest()[:16]}", *flags))
    for name, *_ in names:
        if (root / f"{name}{cpp_extension.LIB_EXT}").exists():
            torch.ops.load_library(str(root / f"{name}{cpp_extension.LIB_EXT}"))
            return
    root.mkdir(parents=True, exist_ok=True)
    errors = []
    for name, cflags, ldflags in names:
        build = tempfile.mkdtemp(prefix=f"{name}-", dir=root)
        try:
            with _ninja_on_path():
                cpp_extension.load(
                    name, [str(_SOURCE)], extra_cflags=cflags, extra_ldflags=ldflags,
                    build_directory=build, is_python_module=False,
                )
            library = f"{name}{cpp_extension.LIB_EXT}"
            os.replace(Path(build) / library, root / library)
            return
        except Exception as error:
            lines = str(error).strip().splitlines() or [type(error).__name__]
            errors.append(next((line for line in lines if "error:" in line), lines[-1]))
        finally:
            shutil.rmtree(build, ignore_errors=True)
    raise RuntimeError("; ".join(dict.fromkeys(errors)))


@contextlib.contextmanager
def _ninja_on_path():
    """Puts the ``ninja`` of the PyPI package on PATH (its script folder may not be) while building."""
    path = os.environ.get("PATH", "")
    try:
        import ninja

        os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, path])
    except ImportError:
        pass
    try:
        yield
    finally:
        os.environ["PATH"] = path
