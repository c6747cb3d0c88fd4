"""A NIR graph as the library's own :class:`~neuroplastic.networks.SpikingNetwork` (the node mappings
and conventions: :mod:`neuroplastic.interop.nir_nodes`), so that every learning rule trains it.

The graph must be the chain a ``SpikingNetwork`` is: ``Input``, then per layer ``[Delay →] Linear|Affine
→ LIF|CubaLIF`` (optionally with a ``Linear|Affine`` from the neurons back to themselves: recurrent
synapses, one step late), then the readout ``Linear|Affine → LI`` and ``Output``. Nested graphs (how
snnTorch writes a recurrent layer) are inlined first. A readout without ``LI`` is one without memory
(decay 0); a graph that ends at a spiking layer gets the identity readout (``W = I``, decay 0), so the
network's readout *is* that layer's spikes. Anything else is refused with an error naming the node.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import nir
import numpy as np
import torch

from neuroplastic.interop.nir_export import DT_KEY
from neuroplastic.interop.nir_nodes import (
    delays_from_node,
    neuron_from_node,
    readout_decay_from_node,
    recurrent_weight,
)
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.synapses import Dense, FixedDelays, Recurrent
from neuroplastic.validation import require_positive

__all__ = ["from_nir", "read_graph"]

_SYNAPSES, _NEURONS = (nir.Linear, nir.Affine), (nir.LIF, nir.CubaLIF)


def read_graph(source) -> nir.NIRGraph:
    """A ``NIRGraph`` as it is, or the one in the file at ``source``; one clear error for anything else."""
    if isinstance(source, nir.NIRGraph):
        return source
    if not isinstance(source, (str, Path)):
        raise ValueError(f"from_nir takes a nir.NIRGraph or a file's path, got {type(source).__name__}")
    if not Path(source).is_file():
        raise ValueError(f"no NIR graph at {source}")
    try:
        return nir.read(source)
    except Exception as error:  # h5py and nir raise many kinds for a damaged or foreign file
        reason = (str(error).splitlines() or [""])[0]
        raise ValueError(f"{source} is not a readable NIR graph ({type(error).__name__}: {reason})") from None


def from_nir(graph, *, dt: float | None = None) -> SpikingNetwork:
    """The network of a NIR graph (or of the file at that path), stepping by ``dt`` ms: by default the
    step the graph was exported with by this library, else 1 ms. It runs time-first ``(T, B, n_in)``."""
    graph = read_graph(graph)
    dt = require_positive("dt", float((graph.metadata or {}).get(DT_KEY, 1.0)) if dt is None else dt)
    nodes, edges = _flatten(graph)
    for name, node in nodes.items():
        _check_numbers(name, node)
    layer_names, readout_names = _Chain(nodes, edges).walk()
    layers = [tuple(None if name is None else nodes[name] for name in spec) for spec in layer_names]
    built = [_layer(spec, dt) for spec in layers]
    readout_module, readout_weights = _readout(
        tuple(None if name is None else nodes[name] for name in readout_names), built[-1][0].size, dt)
    network = SpikingNetwork([layer for layer, _ in built], readout_module)
    network.to(torch.float64 if np.asarray(layers[0][1].weight).dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for layer, assign in built + [(readout_module, readout_weights)]:
            assign(layer)
    return network


_TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")


def _check_numbers(name: str, node) -> None:
    """Every number a node holds is finite, its time constants positive and its delays not negative,
    or one error naming the node and the field."""
    for field in dataclasses.fields(node) if dataclasses.is_dataclass(node) else ():
        value = getattr(node, field.name)
        if not isinstance(value, (np.ndarray, float, int)) or isinstance(value, bool):
            continue
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.number):
            continue
        if not np.all(np.isfinite(array)):
            raise ValueError(f"NIR node {name!r} ({type(node).__name__}): {field.name} holds NaN or infinite values")
        if field.name in _TIME_CONSTANTS and np.any(array <= 0):
            raise ValueError(f"NIR node {name!r} ({type(node).__name__}): {field.name} must be positive")
        if field.name == "delay" and np.any(array < 0):
            raise ValueError(f"NIR node {name!r} ({type(node).__name__}): delay must not be negative")


def _flatten(graph, prefix: str = ""):
    """The graph's nodes and edges with nested graphs inlined (their ``Input``/``Output`` contracted)."""
    nodes, edges, ports, passing = {}, [], {}, set()
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(node, f"{prefix}{name}/")
            ports[prefix + name] = ([f"{prefix}{name}/{n}" for n, m in node.nodes.items() if isinstance(m, nir.Input)],
                                    [f"{prefix}{name}/{n}" for n, m in node.nodes.items() if isinstance(m, nir.Output)])
            passing.update(*ports[prefix + name])
            nodes.update(inner_nodes)
            edges += inner_edges
        else:
            nodes[prefix + name] = node
    for source, target in graph.edges:
        for name in (source, target):
            if name not in graph.nodes:
                raise ValueError(f"an edge names the node {name!r}, which the graph does not have")
        sources = ports.get(prefix + source, (None, [prefix + source]))[1]
        targets = ports.get(prefix + target, ([prefix + target], None))[0]
        edges += [(a, b) for a in sources for b in targets]
    for name in passing:  # a nested graph's own Input/Output: pass its signal through
        into, out_of = [a for a, b in edges if b == name], [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in into for b in out_of]
        del nodes[name]
    return nodes, edges


class _Chain:
    """Walks a flat graph from its ``Input`` to its ``Output``: the layers' node names
    ``(delay, synapses, neurons, recurrent)`` and the readout's ``(synapses, leaky)``."""

    def __init__(self, nodes: dict, edges: list):
        self.nodes = nodes
        self.after = {name: sorted({b for a, b in edges if a == name}) for name in nodes}
        self.before = {name: sorted({a for a, b in edges if b == name}) for name in nodes}
        self.seen: set[str] = set()

    def walk(self):
        start = self._only(nir.Input)
        self._only(nir.Output)
        width = int(np.prod(start[1].input_type["input"]))
        current, layers, pending = self._next(start[0]), [], []
        self.seen.add(start[0])
        while not isinstance(self.nodes[current], (nir.Output, nir.LI)):
            node, self.seen = self.nodes[current], self.seen | {current}
            if isinstance(node, (nir.Delay, *_SYNAPSES)):
                width = self._check_width(current, node, width)
                pending.append(current)
                current = self._next(current)
            elif isinstance(node, _NEURONS):
                layers.append(self._layer(current, pending, width))
                pending, current = [], self._next(current, skip=layers[-1][3])
            else:
                raise ValueError(f"node {current!r} is a nir.{type(node).__name__}, which has no counterpart here "
                                 "(supported: Input, Output, Linear, Affine, Delay, LIF, CubaLIF, LI)")
        if not layers:
            raise ValueError("the graph has no spiking layer (LIF or CubaLIF)")
        if any(isinstance(self.nodes[name], nir.Delay) for name in pending) or len(pending) > 1:
            raise ValueError(f"the readout takes one Linear or Affine, got {pending}")
        leaky = None
        if isinstance(self.nodes[current], nir.LI):
            if not pending:
                raise ValueError(f"node {current!r} (LI) is not fed by a Linear or Affine")
            leaky, self.seen = current, self.seen | {current}
            self._check_size(current, np.asarray(self.nodes[current].tau).size, width)
            current = self._next(current)
            if not isinstance(self.nodes[current], nir.Output):
                raise ValueError(f"node {current!r} follows the readout; the graph must end there")
        self.seen.add(current)
        left = sorted(set(self.nodes) - self.seen)
        if left:
            raise ValueError(f"nodes {left} are not on the chain from input to output")
        return layers, (pending[0] if pending else None, leaky)

    def _only(self, kind):
        found = [(name, node) for name, node in self.nodes.items() if isinstance(node, kind)]
        if len(found) != 1:
            raise ValueError(f"the graph must have one nir.{kind.__name__} node, it has {len(found)}")
        return found[0]

    def _next(self, name: str, skip: str | None = None) -> str:
        after = [b for b in self.after[name] if b != skip]
        if len(after) != 1:
            raise ValueError(f"node {name!r} leads to {after or 'nothing'}; the graph must be a chain")
        before = [a for a in self.before[after[0]] if a not in self.after[after[0]]]  # but its recurrent loop
        if before != [name]:
            raise ValueError(f"node {after[0]!r} has the inputs {before}; the graph must be a chain")
        return after[0]

    def _layer(self, name: str, pending: list, width: int):
        kinds = [type(self.nodes[n]) for n in pending]
        if kinds not in ([nir.Linear], [nir.Affine], [nir.Delay, nir.Linear], [nir.Delay, nir.Affine]):
            raise ValueError(f"node {name!r} ({type(self.nodes[name]).__name__}) must be fed by [Delay →] Linear or "
                             f"Affine, got {[k.__name__ for k in kinds] or 'nothing'}")
        self._check_size(name, np.asarray(self.nodes[name].v_threshold).size, width)
        loops = [n for n in self.after[name] if n in self.before[name] and isinstance(self.nodes[n], _SYNAPSES)
                 and self.after[n] == [name] and self.before[n] == [name]]
        self.seen.update(loops)
        return (pending[0] if len(pending) == 2 else None, pending[-1], name, loops[0] if loops else None)

    def _check_width(self, name: str, node, width: int) -> int:
        if isinstance(node, nir.Delay):
            self._check_size(name, np.asarray(node.delay).size, width)
            return width
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise ValueError(f"node {name!r} has weights of shape {weight.shape}; only matrices are supported")
        self._check_size(name, weight.shape[1], width)
        return weight.shape[0]

    @staticmethod
    def _check_size(name: str, size: int, width: int) -> None:
        """A node's size must be its input's width; one value (how Norse writes a layer's parameters)
        stands for every neuron."""
        if size not in (1, width):
            raise ValueError(f"shapes don't chain: node {name!r} takes {size} inputs but receives {width}")


def _folded(gain: np.ndarray):
    """The gain per neuron to scale its synapses by, ``None`` where it is 1 to rounding."""
    return None if np.all(np.abs(gain - 1.0) <= 1e-9) else gain


def _layer(spec, dt: float):
    """A layer of ``(delay, synapses, neurons, recurrent)`` node names resolved by the caller, and the
    function that sets its weights once the network has its dtype."""
    delay, synapse_node, neuron_node, recurrent_node = spec
    model, gain = neuron_from_node(neuron_node, dt)
    weight = np.asarray(synapse_node.weight, dtype=np.float64)
    gain = _folded(np.broadcast_to(gain, weight.shape[:1]))
    bias = np.asarray(getattr(synapse_node, "bias", np.zeros(weight.shape[0])), dtype=np.float64)
    recurrent = None
    if recurrent_node is not None:
        recurrent = recurrent_weight(recurrent_node, weight.shape[0]).astype(np.float64)
        bias = bias + np.asarray(getattr(recurrent_node, "bias", 0.0))
    if gain is not None:
        weight, bias = weight * gain[:, None], bias * gain
        recurrent = None if recurrent is None else recurrent * gain[:, None]
    n_out, n_in = weight.shape
    dense = Dense(n_in, n_out, bias=isinstance(synapse_node, nir.Affine) or np.any(bias != 0))
    synapses = dense if delay is None else FixedDelays(
        dense, delays_from_node(delay, dt)[None, :].expand(n_out, n_in).contiguous())
    layer = SpikingLayer(n_in, n_out, model, dt=dt, synapses=synapses,
                         recurrent=False if recurrent is None else Recurrent(n_out))

    def assign(layer):
        dense.weight.copy_(torch.from_numpy(weight))
        if dense.bias is not None:
            dense.bias.copy_(torch.from_numpy(bias))
        if recurrent is not None:
            layer.recurrent.weight = torch.from_numpy(recurrent).to(dense.weight.dtype)
    return layer, assign


def _readout(spec, width: int, dt: float):
    """The :class:`LeakyReadout` of ``(synapses, leaky)`` nodes and the function that sets its weights."""
    synapse_node, leaky = spec
    if synapse_node is None:  # the graph ends at a spiking layer: its spikes are the readout
        weight, bias, decay = np.eye(width), np.zeros(width), 0.0
    else:
        weight = np.asarray(synapse_node.weight, dtype=np.float64)
        bias = np.asarray(getattr(synapse_node, "bias", np.zeros(weight.shape[0])), dtype=np.float64)
        decay, gain = (0.0, None) if leaky is None else readout_decay_from_node(leaky, dt)
        gain = None if gain is None else _folded(np.broadcast_to(gain, weight.shape[:1]))
        if gain is not None:
            weight, bias = weight * gain[:, None], bias * gain
    readout = LeakyReadout(weight.shape[1], weight.shape[0], tau_out=1.0, dt=dt)
    readout.decay = decay

    def assign(readout):
        readout.synapses.weight.copy_(torch.from_numpy(weight))
        readout.synapses.bias.copy_(torch.from_numpy(bias))
    return readout, assign
