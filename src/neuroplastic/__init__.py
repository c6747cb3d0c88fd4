"""neuroplastic: spiking neural networks and the learning rules of neuromorphic computing."""
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
