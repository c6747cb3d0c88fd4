"""The search space: cells of spiking nodes whose edges are the library's own connection types.

A cell (Liu, Simonyan & Yang 2019, "DARTS: Differentiable architecture search", ICLR; with the
backward connections of Kim, Li, Park, Venkatesha & Panda 2022, "Neural architecture search for
spiking neural networks", ECCV — SNASNet) is a small graph over node activities ``x_0 … x_N``
``(T, B, width)``. Node 0 is a stem, a feed-forward layer of discrete LIF neurons fed by the task's
inputs; every other node sums what its incoming edges deliver::

    x_j(t) = Σ_{i<j} o_ij(x_i)(t)  +  Σ_{k>j} o_kj(x_k)(t − 1)        (forward, then backward edges)

Forward edges run from every earlier node; backward edges (SNASNet) from every later hidden node and
see its activity of the previous step. The readout (:class:`~neuroplastic.networks.LeakyReadout`)
reads the hidden nodes side by side, ``[x_1, …, x_N]``. An operation is one of :data:`OPERATIONS`,
built from the library's layers (:class:`~neuroplastic.networks.SpikingLayer`, ``Dense``,
``Recurrent``, ``FixedDelays``, the neurons of :data:`~neuroplastic.training.recipes.NEURONS`).

A :class:`CellNetwork` built without a :class:`Cell` is DARTS' supernet: every edge is a
:class:`MixedOperation` over its candidates with architecture weights ``α`` (the parameters
``alphas.k``), mixed as ``softmax(α)`` (:mod:`.darts`). With a cell, every edge is its one operation.
Without active backward edges the network runs node by node over whole sequences (each layer's fast
path); with them, step by step (``step`` is the truth, tested equal).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from neuroplastic.networks import LeakyReadout, NetworkOutput, SpikingLayer
from neuroplastic.networks.layers import LayerState
from neuroplastic.synapses import Dense, FixedDelays
from neuroplastic.training.recipes import NEURONS, Recipe
from neuroplastic.validation import lookup, require_count

__all__ = ["OPERATIONS", "BACKWARD_OPERATIONS", "Edge", "SearchSpace", "Cell", "MixedOperation", "CellNetwork",
           "Zero", "Identity"]


class Zero(nn.Module):
    """The ``none`` operation: no connection, ``o(x) = 0``."""

    def init_state(self, batch: int, **options) -> tuple:
        return ()

    def step(self, state, x):
        return torch.zeros_like(x), state

    def forward(self, x, state=()):
        return torch.zeros_like(x), state


class Identity(Zero):
    """The ``skip`` operation: ``o(x) = x``."""

    def step(self, state, x):
        return x, state

    def forward(self, x, state=()):
        return x, state


def _spiking(neuron: str, *, recurrent=False, delayed=False):
    def build(width: int, dt: float, recipe: Recipe, generator: torch.Generator) -> SpikingLayer:
        synapses = Dense(width, width, scale=recipe.scale, generator=generator)
        if delayed:
            synapses = FixedDelays(synapses, max_delay=recipe.max_delay, generator=generator)
        return SpikingLayer(width, width, NEURONS[neuron](recipe), dt=dt, recurrent=recurrent, scale=recipe.scale,
                            generator=generator, synapses=synapses)
    return build


OPERATIONS = {  # name -> builder(width, dt, recipe, generator)
    "none": lambda *_: Zero(),
    "skip": lambda *_: Identity(),
    "lif": _spiking("discrete-lif"),  # feed-forward LIF
    "lif-recurrent": _spiking("discrete-lif", recurrent=True),
    "alif": _spiking("discrete-alif"),  # e-prop's adaptive LIF, feed-forward
    "delayed": _spiking("discrete-lif", delayed=True),  # feed-forward LIF behind FixedDelays
}
BACKWARD_OPERATIONS = ("none", "lif")  # what a backward edge may be


class Edge(NamedTuple):
    source: int
    target: int
    backward: bool  # sees the source's activity of the previous step


@dataclass(frozen=True)
class SearchSpace:
    """Cells of ``nodes`` hidden nodes of ``width`` neurons; forward edges over ``operations``,
    backward edges (if ``backward``) over ``backward_operations``; ``max_delay`` of ``delayed`` (steps)."""

    nodes: int = 3
    width: int = 32
    backward: bool = True
    operations: tuple = tuple(OPERATIONS)
    backward_operations: tuple = BACKWARD_OPERATIONS
    max_delay: int = 5

    def __post_init__(self):
        require_count("nodes", self.nodes)
        require_count("width", self.width, minimum=2)
        require_count("max_delay", self.max_delay)
        for name in (*self.operations, *self.backward_operations):
            lookup("operation", name, OPERATIONS)
        if not self.operations or (self.backward and not self.backward_operations):
            raise ValueError("every kind of edge needs at least one candidate operation")

    @property
    def edges(self) -> tuple[Edge, ...]:
        forward = [Edge(i, j, False) for j in range(1, self.nodes + 1) for i in range(j)]
        backward = [Edge(k, j, True) for j in range(1, self.nodes + 1) for k in range(j + 1, self.nodes + 1)]
        return tuple(forward + (backward if self.backward else []))

    def candidates(self, edge: Edge) -> tuple[str, ...]:
        return self.backward_operations if edge.backward else self.operations

    def sample(self, generator: torch.Generator) -> Cell:
        """A cell with every edge's operation drawn uniformly from its candidates."""
        return Cell(self, tuple(choices[int(torch.randint(len(choices), (), generator=generator))]
                                for choices in map(self.candidates, self.edges)))


@dataclass(frozen=True)
class Cell:
    """A discrete cell: one operation per edge of ``space.edges``. Written (``str``) as its edges other
    than ``none``: ``i>j:op`` a forward edge from node ``i`` to ``j``, ``k<j:op`` a backward edge from
    the later node ``k`` to ``j``."""

    space: SearchSpace
    operations: tuple[str, ...]

    def __post_init__(self):
        edges = self.space.edges
        if len(self.operations) != len(edges):
            raise ValueError(f"a cell of this space has {len(edges)} edges, got {len(self.operations)} operations")
        for edge, name in zip(edges, self.operations):
            if name not in self.space.candidates(edge):
                raise ValueError(f"{name!r} is not a candidate of edge {edge}: {self.space.candidates(edge)}")

    def to_json(self) -> dict:
        return {"space": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self.space).items()},
                "edges": [{"from": e.source, "to": e.target, "backward": e.backward, "op": op}
                          for e, op in zip(self.space.edges, self.operations)]}

    @classmethod
    def from_json(cls, data: dict) -> Cell:
        space = SearchSpace(**{k: tuple(v) if isinstance(v, list) else v for k, v in data["space"].items()})
        return cls(space, tuple(edge["op"] for edge in data["edges"]))

    def __str__(self) -> str:
        return " ".join(f"{e.source}{'<' if e.backward else '>'}{e.target}:{op}"
                        for e, op in zip(self.space.edges, self.operations) if op != "none")


class MixedOperation(nn.Module):
    """``ō(x) = Σ_o w_o o(x)`` over ``candidates`` (name → operation), ``w`` given per call (DARTS:
    ``softmax(α)``); ``w = None`` with one candidate is that operation. Returns the mixture, the new
    state, and the binary spikes of the candidates that are spiking layers."""

    def __init__(self, candidates: dict[str, nn.Module]):
        super().__init__()
        self.candidates = nn.ModuleDict(candidates)

    def init_state(self, batch: int, **options) -> tuple:
        return tuple(op.init_state(batch, **options) for op in self.candidates.values())

    def step(self, state, x, weights=None):
        return self._mix([op.step(s, x) for op, s in zip(self.candidates.values(), state)], weights)

    def forward(self, x, weights=None, state=None):
        state = self.init_state(x.shape[1], dtype=x.dtype, device=x.device) if state is None else state
        return self._mix([op(x, s) for op, s in zip(self.candidates.values(), state)], weights)

    def _mix(self, results, weights):
        outputs = [y for y, _ in results]
        events = tuple(y for y, op in zip(outputs, self.candidates.values()) if isinstance(op, SpikingLayer))
        if weights is None:
            if len(outputs) != 1:
                raise ValueError(f"mixing {len(outputs)} candidates needs their weights")
            mixed = outputs[0]
        else:
            mixed = sum(w * y for w, y in zip(weights, outputs))
        return mixed, tuple(s for _, s in results), events


class CellState(NamedTuple):
    stem: LayerState
    edges: tuple
    nodes: tuple  # each hidden node's activity of the last step (B, width)
    readout: torch.Tensor


class CellNetwork(nn.Module):
    """A network of one cell of ``space`` between a stem and a leaky readout (module docstring):
    ``cell`` ``None`` for the supernet. ``forward`` returns a :class:`~neuroplastic.networks.NetworkOutput`
    with no per-layer spikes (a graph, not a stack); :meth:`run` also returns every layer's spikes."""

    output_name = "readout"

    def __init__(self, space: SearchSpace, n_inputs: int, n_outputs: int, recipe: Recipe, *, dt: float = 1.0,
                 cell: Cell | None = None, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        recipe = dataclasses.replace(recipe, max_delay=space.max_delay)
        self.space, self.cell, self.edges = space, cell, space.edges
        self.stem = SpikingLayer(n_inputs, space.width, NEURONS["discrete-lif"](recipe), dt=dt, scale=recipe.scale,
                                 generator=generator)
        chosen = [space.candidates(e) for e in self.edges] if cell is None else [(op,) for op in cell.operations]
        self.operations = nn.ModuleList(MixedOperation({name: OPERATIONS[name](space.width, dt, recipe, generator)
                                                        for name in names}) for names in chosen)
        self.alphas = nn.ParameterList([nn.Parameter(torch.zeros(len(names))) for names in chosen]
                                       if cell is None else [])
        self.readout = LeakyReadout(space.nodes * space.width, n_outputs, tau_out=recipe.tau_out, dt=dt,
                                    generator=generator)

    @property
    def weights(self) -> list[torch.Tensor]:
        """Every synaptic weight (what NeuroBench's connection sparsity reads)."""
        return [p.detach() for name, p in self.named_parameters() if name.endswith("weight")]

    def mixing(self) -> list[torch.Tensor | None]:
        """Each edge's ``softmax(α)`` (supernet), or ``None`` (one operation per edge)."""
        return [torch.softmax(a, 0) for a in self.alphas] if self.cell is None else [None] * len(self.edges)

    @property
    def runs_stepwise(self) -> bool:
        """Whether a backward edge carries anything: then the nodes advance together, step by step."""
        return any(e.backward and any(not isinstance(op, Zero) for op in mixed.candidates.values())
                   for e, mixed in zip(self.edges, self.operations))

    def init_state(self, shape, *, dtype=torch.float32, device=None) -> CellState:
        (batch,) = shape
        options = dict(dtype=dtype, device=device)
        nodes = tuple(torch.zeros(batch, self.space.width, **options) for _ in range(self.space.nodes))
        return CellState(self.stem.init_state(batch, **options),
                         tuple(op.init_state(batch, **options) for op in self.operations), nodes,
                         self.readout.init_state(batch, **options))

    def forward(self, x, state: CellState | None = None) -> NetworkOutput:
        readout, state, _ = self.run(x, state)
        return NetworkOutput(readout, (), state, ())

    def run(self, x, state: CellState | None = None):
        """``x`` ``(T, B, n_in)`` → readout ``(T, B, n_out)``, state, and the binary spikes of every
        spiking layer (the stem's first), each ``(T, B, width)``."""
        if state is None:
            state = self.init_state(x.shape[1:2], dtype=x.dtype, device=x.device)
        if self.runs_stepwise:
            steps = []
            for x_t in x.unbind(0):
                y, state, events = self.step(state, x_t)
                steps.append((y, events))
            return torch.stack([y for y, _ in steps]), state, tuple(map(torch.stack, zip(*[e for _, e in steps])))
        stem, stem_state = self.stem(x, state.stem)
        nodes, edge_states, events = [stem], list(state.edges), [stem]
        mixing = self.mixing()
        for j in range(1, self.space.nodes + 1):
            total = 0
            for k, edge in enumerate(self.edges):
                if edge.target == j and not edge.backward:
                    y, edge_states[k], spikes = self.operations[k](nodes[edge.source], mixing[k], edge_states[k])
                    total, events = total + y, events + list(spikes)
            nodes.append(total if isinstance(total, torch.Tensor) else torch.zeros_like(stem))
        readout = self.readout(torch.cat(nodes[1:], -1), state.readout)
        last = tuple(node[-1] for node in nodes[1:])
        return readout, CellState(stem_state, tuple(edge_states), last, readout[-1]), tuple(events)

    def step(self, state: CellState, x):
        """One step ``x`` ``(B, n_in)``: the readout ``(B, n_out)``, the state, the spiking layers' spikes."""
        stem, stem_state = self.stem.step(state.stem, x)
        nodes, edge_states, events = [stem], list(state.edges), [stem]
        mixing = self.mixing()
        for j in range(1, self.space.nodes + 1):
            total = 0
            for k, edge in enumerate(self.edges):
                if edge.target == j:
                    source = state.nodes[edge.source - 1] if edge.backward else nodes[edge.source]
                    y, edge_states[k], spikes = self.operations[k].step(edge_states[k], source, mixing[k])
                    total, events = total + y, events + list(spikes)
            nodes.append(total if isinstance(total, torch.Tensor) else torch.zeros_like(stem))
        y = self.readout.step(state.readout, torch.cat(nodes[1:], -1))
        return y, CellState(stem_state, tuple(edge_states), tuple(nodes[1:]), y), tuple(events)
