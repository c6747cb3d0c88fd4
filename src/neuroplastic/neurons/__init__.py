"""Neuron models: pure steps over explicit state. ``MODELS`` maps command-line names to classes."""
from neuroplastic.neurons.base import NeuronModel, ResetBySubtraction, ResetTo
from neuroplastic.neurons.lif import LIF, LIFState

MODELS = {
    "lif": LIF,
}


def make_model(name: str, **parameters) -> NeuronModel:
    """The model called ``name`` with some parameters overridden; a clear error for unknown names."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODELS))}") from None
    return cls(**parameters)


__all__ = ["NeuronModel", "ResetTo", "ResetBySubtraction", "LIF", "LIFState", "MODELS", "make_model"]
