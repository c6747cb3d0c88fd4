"""A :class:`~neuroplastic.networks.SpikingNetwork` as a NIR graph (the node mappings and conventions:
:mod:`neuroplastic.interop.nir_nodes`).

The graph is the network's chain, node names saying where each part came from::

    input → [delay_0 →] synapses_0 → neurons_0 (⇄ recurrent_0) → … → readout_synapses → readout → output

The graph's metadata holds the step ``neuroplastic_dt_ms`` the network was built for, the ``dt`` that
:func:`~neuroplastic.interop.nir_import.from_nir` uses by default.
"""
from __future__ import annotations

import nir
import numpy as np

from neuroplastic.interop.nir_nodes import (
    neuron_node,
    readout_node,
    synapse_nodes,
    weight_node,
)
from neuroplastic.networks import SpikingNetwork
from neuroplastic.synapses import Recurrent

__all__ = ["DT_KEY", "to_nir"]

DT_KEY = "neuroplastic_dt_ms"


def to_nir(network: SpikingNetwork) -> nir.NIRGraph:
    """The NIR graph of ``network`` (its current weights and neuron parameters)."""
    if not isinstance(network, SpikingNetwork):
        raise ValueError(f"NIR export takes a SpikingNetwork, got {type(network).__name__}")
    dt = network.layers[0].dt
    nodes = {"input": nir.Input(input_type={"input": np.array([network.layers[0].synapses.n_in])})}
    edges: list[tuple[str, str]] = []
    previous = "input"

    def chain(name, node):
        nonlocal previous
        nodes[name] = node
        edges.append((previous, name))
        previous = name

    for index, layer in enumerate(network.layers):
        where = f"layer {index}"
        if layer.dt != dt:
            raise ValueError(f"{where} steps by {layer.dt} ms, layer 0 by {dt} ms: a graph takes one step")
        if layer.payload is not None:
            raise ValueError(f"{where}: graded spikes (a payload) have no NIR node")
        for node in synapse_nodes(layer.synapses, dt, where):
            chain(f"delay_{index}" if isinstance(node, nir.Delay) else f"synapses_{index}", node)
        chain(f"neurons_{index}", neuron_node(layer.neuron, layer.size, dt, where))
        if layer.recurrent is not None:
            if not isinstance(layer.recurrent, Recurrent):
                raise ValueError(f"{where}: NIR export takes Recurrent recurrent synapses, got "
                                 f"{type(layer.recurrent).__name__}")
            nodes[f"recurrent_{index}"] = weight_node(layer.recurrent)
            edges += [(previous, f"recurrent_{index}"), (f"recurrent_{index}", previous)]
    chain("readout_synapses", weight_node(network.readout.synapses))
    leaky = readout_node(network.readout.decay, network.readout.size, dt)
    if leaky is not None:
        chain("readout", leaky)
    chain("output", nir.Output(output_type={"output": np.array([network.readout.size])}))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={DT_KEY: float(dt)})

