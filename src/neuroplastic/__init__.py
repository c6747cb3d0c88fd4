"""neuroplastic: spiking neural networks and the learning rules of neuromorphic computing.

The names below are imported on first use (PEP 562), so that ``import neuroplastic`` and the
command line's ``--help`` do not import torch: ``from neuroplastic import LIF`` and ``neuroplastic.LIF``
work as ever.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers, linters and editors; at run time __getattr__ imports these on first use
    from neuroplastic.analysis import fi_curve, reliability, spike_times, step_current
    from neuroplastic.coding import (
        CausalExponentialKernel,
        GaussianKernel,
        RectangularKernel,
        binned_rate,
        count_rate,
        kernel_rate,
        latency_encode,
        poisson_encode,
    )
    from neuroplastic.integrators import RK4, Euler, Exact, Exponential
    from neuroplastic.neurons import (
        ALIF,
        LIF,
        MODELS,
        AdaptiveLIF,
        ConductanceLIF,
        CurrentLIF,
        HodgkinHuxley,
        Izhikevich,
        NeuronModel,
        ResetBySubtraction,
        ResetTo,
        make_model,
    )
    from neuroplastic.sim import Record, RunResult, SpikeCount, SpikeRaster, run
    from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Triangle, spike
    from neuroplastic.synapses import DaleDense, DaleRecurrent, Dense, Recurrent, Trace
    from neuroplastic.tasks import Task

__version__ = "0.1.0"

_EXPORTS = {
    "neuroplastic.analysis": ("fi_curve", "reliability", "spike_times", "step_current"),
    "neuroplastic.coding": ("CausalExponentialKernel", "GaussianKernel", "RectangularKernel",
                            "binned_rate", "count_rate", "kernel_rate", "latency_encode", "poisson_encode"),
    "neuroplastic.integrators": ("RK4", "Euler", "Exact", "Exponential"),
    "neuroplastic.neurons": ("ALIF", "LIF", "MODELS", "AdaptiveLIF", "ConductanceLIF", "CurrentLIF",
                             "HodgkinHuxley", "Izhikevich", "NeuronModel", "ResetBySubtraction", "ResetTo",
                             "make_model"),
    "neuroplastic.sim": ("Record", "RunResult", "SpikeCount", "SpikeRaster", "run"),
    "neuroplastic.spikes": ("Arctan", "Boxcar", "FastSigmoid", "Triangle", "spike"),
    "neuroplastic.synapses": ("DaleDense", "DaleRecurrent", "Dense", "Recurrent", "Trace"),
    "neuroplastic.tasks": ("Task",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "fi_curve", "reliability", "spike_times", "step_current",
    "CausalExponentialKernel", "GaussianKernel", "RectangularKernel",
    "binned_rate", "count_rate", "kernel_rate", "latency_encode", "poisson_encode",
    "RK4", "Euler", "Exact", "Exponential",
    "ALIF", "LIF", "MODELS", "AdaptiveLIF", "ConductanceLIF", "CurrentLIF", "HodgkinHuxley", "Izhikevich",
    "NeuronModel", "ResetBySubtraction", "ResetTo", "make_model",
    "Record", "RunResult", "SpikeCount", "SpikeRaster", "run",
    "Arctan", "Boxcar", "FastSigmoid", "Triangle", "spike",
    "DaleDense", "DaleRecurrent", "Dense", "Recurrent", "Trace",
    "Task",
]


def __getattr__(name: str):
    """An exported name, imported from its module on first use (and kept); or a submodule, as an
    eager ``import neuroplastic`` once made ``neuroplastic.neurons`` and the like available."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
