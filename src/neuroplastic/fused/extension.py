"""The C++ backend: built on first use, cached, and chosen only where it applies.

``lif.cpp``, ``spike_linear.cpp``, ``alif_recurrent.cpp``, ``leaky_filter.cpp``, ``grouped_linear.cpp``,
``population_lif.cpp`` and ``population_alif.cpp`` (with ``shared.h``, ``masked_product.h``, ``tile_sums.h``,
``alif_step.h`` and ``population.h``) ship inside the
package and are compiled into one library just in time with ``torch.utils.cpp_extension.load`` (needs
a C++ compiler and ``ninja``) the first time a fused pass runs on CPU float32/float64 tensors, or
when training starts on the CPU (:func:`prepare`, so that a run's clock starts after it), never at
import; a build says so in one line on stderr. The library is cached as
``<TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions>/neuroplastic/neuroplastic_lif_<hash>.so``, the
hash covering the sources, the torch version, the flags and the machine, so a changed source or a
new torch builds afresh and later processes load the file without ninja. Each build runs in its own
temporary folder and is moved into place atomically, so concurrent first uses (test workers, jobs)
need no lock and a killed build leaves nothing half-written. If no build succeeds the PyTorch
fallback is used, with one warning.

For the built-in surrogates (and :class:`~neuroplastic.spikes.Rescaled` of them; :func:`native_surrogate`
says which, with what constants) the kernel evaluates the surrogate itself, and the forward keeps only
every ``interval``-th voltage: the backward recomputes the others from the currents
(:func:`backward_recompute`). Any other surrogate (a subclass too, as it may override ``derivative``)
is evaluated in PyTorch from all the voltages and handed to :func:`backward` as ``h``.

``NEUROPLASTIC_FUSED`` chooses: ``auto`` (default) the C++ kernel where it applies, ``torch`` always
the fallback, ``cpp`` the C++ kernel or an error.

``NEUROPLASTIC_ISA`` builds the kernels for one instruction set instead of every one (x86-64 with
GCC): ``avx512f``, ``avx2`` or ``x86-64`` — the code another machine's loader would pick, to time it
on this one (with ``ATEN_CPU_CAPABILITY`` and ``MKL_ENABLE_INSTRUCTIONS`` holding PyTorch and the
BLAS to the same set; BENCHMARKS.md). ``auto`` (default): every clone, the loader picks.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import torch

from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Rescaled, Surrogate, Triangle

__all__ = ["KernelFunction", "backend", "backward", "backward_recompute", "check_environment", "forward",
           "instruction_set", "native_surrogate"]

ENV = "NEUROPLASTIC_FUSED"
_CHOICES = ("auto", "torch", "cpp")
_SOURCES = tuple(Path(__file__).with_name(name) for name in ("lif.cpp", "spike_linear.cpp", "alif_recurrent.cpp",
                                                                   "leaky_filter.cpp", "grouped_linear.cpp",
                                                                   "population_lif.cpp", "population_alif.cpp"))
_HEADERS = tuple(Path(__file__).with_name(name) for name in ("shared.h", "masked_product.h", "tile_sums.h",
                                                                "alif_step.h", "population.h"))
# (compiler flags, linker flags), tried in turn. OpenMP lets at::parallel_for split the neurons among
# torch's threads (without it, one thread); no fused multiply-add, so each operation rounds as in the
# step path and the spikes match it exactly; no -march=native, as the cache may be shared by machines.
# -fno-trapping-math: no program here unmasks floating-point exceptions, and assuming so lets a loop
# compute both sides of a choice and keep one (values unchanged); with the traps assumed, the step
# loops that choose (the refractory countdown, h where the neuron is free) stayed scalar wherever
# vectors have no mask registers — AVX2: the recurrent forward 2.2× as slow as in AVX-512.
_FLAG_SETS = (
    (["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp"], ["-fopenmp"]),
    (["-O3", "-ffp-contract=off", "-fno-trapping-math"], []),
)
ISA_ENV = "NEUROPLASTIC_ISA"
# the instruction sets one can build alone: shared.h's NP_ISA code, and the CPU flag each needs
_ISAS = {"avx512f": (512, "avx512_f"), "avx2": (256, "avx2"), "x86-64": (128, None)}
_lock = threading.Lock()
_loaded: bool | None = None
_library: Path | None = None  # the loaded library file (library())


class KernelFunction(torch.autograd.Function):
    """An ``autograd.Function`` whose forward runs these kernels, which ``torch.func`` transforms and
    forward-mode AD cannot see into: its ``vmap`` and ``jvp`` refuse with a clear error. The operations
    that use one run a differentiable form of their own under transforms instead, so these are only
    reached by a direct call of the Function."""

    @staticmethod
    def vmap(info, in_dims, *args):
        _refuse()

    @staticmethod
    def jvp(ctx, *tangents):
        _refuse()


def _refuse():
    raise RuntimeError("a fused C++ operation cannot run under torch.func transforms or forward-mode AD; "
                       "call it outside the transform, or use a layer's step path (path='step', or 'auto', "
                       "which chooses it under transforms)")


def prepare() -> None:
    """Builds (or loads) the C++ library now, where ``NEUROPLASTIC_FUSED`` allows it, rather than at the
    first fused pass: a run's clock then starts after the build (a first run on a machine reported the
    minute of compiling as training time). A failed build warns and leaves the fallback, as at first use."""
    if check_environment() != "torch":
        _load()


def backend(tensor: torch.Tensor | None = None) -> str:
    """``"cpp"`` or ``"torch"``: the backend a fused pass over ``tensor`` uses (builds on first call).

    Without a tensor, the backend for CPU float32 tensors.
    """
    choice = check_environment()
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


def check_environment() -> str:
    """``NEUROPLASTIC_FUSED``'s choice, after checking it and ``NEUROPLASTIC_ISA`` (a bad value is an error,
    not a silent fallback); builds nothing. The command line calls it before a command writes anything."""
    choice = os.environ.get(ENV, "auto")
    if choice not in _CHOICES:
        raise ValueError(f"{ENV} must be one of {_CHOICES}, got {choice!r}")
    _isa_flags()
    return choice


def _isa_flags() -> tuple[str, ...]:
    """The compiler flags of ``NEUROPLASTIC_ISA``: none for ``auto``, else ``-DNP_ISA=<code>`` where this
    machine runs that instruction set."""
    return _flags_of(os.environ.get(ISA_ENV, "auto"))


@functools.lru_cache(maxsize=None)
def _flags_of(isa: str) -> tuple[str, ...]:
    if isa == "auto":
        return ()
    if isa not in _ISAS:
        raise ValueError(f"{ISA_ENV} must be auto or one of {tuple(_ISAS)}, got {isa!r}")
    code, flag = _ISAS[isa]
    if not _x86() or (flag and not torch.cpu.get_capabilities().get(flag)):
        raise ValueError(f"{ISA_ENV}={isa}: this machine ({platform.machine()}) cannot run that instruction set")
    return (f"-DNP_ISA={code}",)


def instruction_set() -> str:
    """The instruction set the loaded kernels run, named by the register width their tiles use
    (``register_bytes`` in ``shared.h``): ``avx512f``, ``avx2``, or ``x86-64`` (elsewhere the machine's
    name); ``none`` where the PyTorch fallback runs instead."""
    if backend() != "cpp":
        return "none"
    width = torch.ops.neuroplastic_fused.register_bytes()
    return {64: "avx512f", 32: "avx2", 16: "x86-64" if _x86() else platform.machine()}[width]


def _x86() -> bool:
    return platform.machine() in ("x86_64", "AMD64")


def forward(currents, beta, threshold, v0, z0, interval=1, spikes=None):
    """``(spikes, voltages)`` as ``fallback.forward``; with ``interval`` k > 1, instead of all the
    voltages only those at steps k−1, 2k−1, …, and the last step (``⌈T/k⌉`` rows). ``spikes``: a
    contiguous tensor like ``currents`` to write the spikes into (default a new one)."""
    currents = currents.contiguous()
    steps = currents.shape[0]
    spikes = torch.empty_like(currents) if spikes is None else spikes
    kept = currents.new_empty(((steps + interval - 1) // interval, *currents.shape[1:]))
    torch.ops.neuroplastic_fused.lif_forward(
        currents, beta, threshold, v0.contiguous(), z0.contiguous(), interval, spikes, kept
    )
    return spikes, kept


def backward(h, carry, grad_spikes, grad_final, beta, threshold, detach_reset, out):
    """The reverse recurrence over a chunk of steps into ``out``, as ``fallback.backward``."""
    torch.ops.neuroplastic_fused.lif_backward(
        h.contiguous(), carry, *base_and_stride(grad_spikes), grad_final.contiguous(), beta,
        threshold, detach_reset, out,
    )


def backward_recompute(currents, kept, interval, v0, z0, native, grad_spikes, grad_final, beta,
                       threshold, detach_reset, out, grad_beta=None):
    """The reverse recurrence over the whole sequence into ``out`` (and ``dL/dβ`` per neuron into
    ``grad_beta``), recomputing the voltages from ``currents`` and the ``kept`` ones of
    :func:`forward` with the same ``interval``; ``native`` from :func:`native_surrogate`."""
    kind, constants = native
    torch.ops.neuroplastic_fused.lif_backward_recompute(
        currents.contiguous(), kept, interval, v0.contiguous(), z0.contiguous(), kind, constants,
        *base_and_stride(grad_spikes), grad_final.contiguous(), beta, threshold, detach_reset, out,
        grad_beta,
    )


def native_surrogate(surrogate: Surrogate) -> tuple[int, tuple[float, float, float]] | None:
    """``(kind, (a, b, w))`` of a surrogate ``lif.cpp`` evaluates itself, else ``None``.

    ``h = σ'(x/w)/w`` with ``w`` the width of :class:`~neuroplastic.spikes.Rescaled` (1 otherwise) and
    ``σ'`` one of (``a``, ``b`` as the formula in ``spikes.py`` computes them from its fields):
    fast sigmoid ``1/(1 + a|x|)²``, triangle ``a·max(0, 1 − |x|/b)``, boxcar ``[|x| < a]/b``, arctan
    ``a/(1 + (b x/2)²)``.
    """
    width = 1.0
    if type(surrogate) is Rescaled:
        surrogate, width = surrogate.inner, surrogate.width
    if isinstance(width, torch.Tensor) or holds_tensors(surrogate):  # per-neuron or learnable constants
        return None
    kind = type(surrogate)
    if kind is FastSigmoid:
        return 1, (surrogate.scale, 0.0, width)
    if kind is Triangle:
        return 2, (surrogate.gamma, surrogate.width, width)
    if kind is Boxcar:
        return 3, (surrogate.width / 2, surrogate.width, width)
    if kind is Arctan:
        return 4, (surrogate.alpha / 2, math.pi * surrogate.alpha, width)
    return None


def base_and_stride(grad):
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


def library() -> Path | None:
    """The file of the loaded C++ library: None before it is loaded (this does not load it) or where it
    could not be."""
    return _library if _loaded else None


def _build_and_load():
    from torch.utils import cpp_extension

    root = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root())
    root = root / "neuroplastic"
    source = b"".join(path.read_bytes() for path in (*_SOURCES, *_HEADERS))
    names = []
    for cflags, ldflags in _FLAG_SETS:
        flags = ([*cflags, *_isa_flags()], ldflags)
        key = repr((source, torch.__version__, flags, platform.machine())).encode()
        names.append((f"neuroplastic_lif_{hashlib.sha256(key).hexdigest()[:16]}", *flags))
    global _library
    for name, *_ in names:
        if (root / f"{name}{cpp_extension.LIB_EXT}").exists():
            torch.ops.load_library(str(root / f"{name}{cpp_extension.LIB_EXT}"))
            _library = root / f"{name}{cpp_extension.LIB_EXT}"
            return
    root.mkdir(parents=True, exist_ok=True)
    print("neuroplastic: compiling the fused C++ kernels for this machine (once per version and machine, "
          "about a minute)", file=sys.stderr, flush=True)
    errors = []
    for name, cflags, ldflags in names:
        build = tempfile.mkdtemp(prefix=f"{name}-", dir=root)
        try:
            with _ninja_on_path():
                cpp_extension.load(
                    name, [str(path) for path in _SOURCES], extra_cflags=cflags, extra_ldflags=ldflags,
                    build_directory=build, is_python_module=False,
                )
            library = f"{name}{cpp_extension.LIB_EXT}"
            os.replace(Path(build) / library, root / library)
            _library = root / library
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
