"""Synapses: what is connected to what (dense, recurrent, Dale's E/I, conductance, delayed) and the
traces rules share."""
from neuroplastic.synapses.conductance import ConductanceSynapses
from neuroplastic.synapses.dale import (
    DaleDense,
    DaleRecurrent,
    DaleSign,
    excitatory_count,
)
from neuroplastic.synapses.delays import FixedDelays, LearnedDelays
from neuroplastic.synapses.dense import Dense, Recurrent, ZeroDiagonal
from neuroplastic.synapses.plastic import PlasticRecurrent
from neuroplastic.synapses.traces import Trace

__all__ = [
    "Dense",
    "Recurrent",
    "ZeroDiagonal",
    "DaleDense",
    "DaleRecurrent",
    "DaleSign",
    "excitatory_count",
    "Trace",
    "ConductanceSynapses",
    "FixedDelays",
    "LearnedDelays",
    "PlasticRecurrent",
]
