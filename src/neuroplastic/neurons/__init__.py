"""Neuron models: pure steps over explicit state. ``MODELS`` maps command-line names to classes."""
import dataclasses

from neuroplastic.neurons.adaptive_lif import AdaptiveLIF, AdaptiveLIFState
from neuroplastic.neurons.alif import ALIF, ALIFState
from neuroplastic.neurons.base import NeuronModel, ResetBySubtraction, ResetTo
from neuroplastic.neurons.conductance_lif import (
    ConductanceLIF,
    ConductanceLIFState,
    conductance_input,
)
from neuroplastic.neurons.current_lif import CurrentLIF, CurrentLIFState
from neuroplastic.neurons.dpi import DPI
from neuroplastic.neurons.hodgkin_huxley import HodgkinHuxley, HodgkinHuxleyState
from neuroplastic.neurons.izhikevich import PRESETS, Izhikevich, IzhikevichState
from neuroplastic.neurons.lif import LIF, LIFState
from neuroplastic.validation import lookup

MODELS = {
    "lif": LIF,
    "cuba": CurrentLIF,
    "alif": ALIF,
    "adaptive": AdaptiveLIF,
    "coba": ConductanceLIF,
    "izhikevich": Izhikevich,
    "hh": HodgkinHuxley,
    "dpi": DPI,
}


def make_model(name: str, **parameters) -> NeuronModel:
    """The model called ``name`` with some parameters overridden; a clear error for unknown names."""
    cls = lookup("model", name, MODELS)
    fields = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(parameters) - set(fields))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter {', '.join(map(repr, unknown))}; parameters: "
                         f"{', '.join(fields)}")
    return cls(**parameters)


__all__ = [
    "NeuronModel", "ResetTo", "ResetBySubtraction", "MODELS", "make_model",
    "LIF", "LIFState", "CurrentLIF", "CurrentLIFState", "ALIF", "ALIFState",
    "AdaptiveLIF", "AdaptiveLIFState", "ConductanceLIF", "ConductanceLIFState", "conductance_input",
    "Izhikevich", "IzhikevichState", "PRESETS", "HodgkinHuxley", "HodgkinHuxleyState", "DPI",
]
