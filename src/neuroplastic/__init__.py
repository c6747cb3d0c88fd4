"""neuroplastic: spiking neural networks and the learning rules of neuromorphic computing."""
from neuroplastic.integrators import RK4, Euler, Exponential
from neuroplastic.neurons import LIF, MODELS, NeuronModel, ResetBySubtraction, ResetTo, make_model
from neuroplastic.sim import Record, RunResult, SpikeCount, SpikeRaster, run
from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Triangle, spike

__version__ = "0.1.0"
