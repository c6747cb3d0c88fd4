"""A genetic algorithm over the topology and weights of small spiking networks, in the manner of EONS
(Schuman, Mitchell, Patton, Potok & Plank 2020, "Evolutionary optimization for neuromorphic
systems", NICE '20): each genome is the network's weights and a mask of which synapses exist, and
children are mutated copies of tournament winners —

- perturb: every existing weight ``w ← w + σ ξ``, ``ξ ~ N(0, 1)``;
- add or remove a synapse (one entry of a weight matrix switched on with a fresh weight, or off);
- add or remove a neuron (every synapse into and out of one hidden neuron switched on or off).

A structural mutation happens with probability ``structure_rate`` per child, each kind equally
likely. The ``elite`` best genomes pass unchanged to the next generation. The network a genome
stands for has weights ``w ⊙ mask``: that vector is what :meth:`ask` proposes, so the problem never
knows about masks. Neurons are named by :func:`hidden_neurons` from the network's own layers.
"""
from __future__ import annotations

import torch

from neuroplastic.validation import require_count, require_positive

__all__ = ["GeneticTopology", "hidden_neurons"]


def hidden_neurons(network, genome, prefix: str = "") -> list[torch.Tensor]:
    """For each hidden neuron of a ``SpikingNetwork``, the flat genome indices of its synapses: the
    row of its input (and recurrent) weights, and its column in the next layer's or readout's
    (``prefix``: the network's name in the genome's parameter names, e.g. ``"network."``)."""
    offsets, shapes = genome.offsets, dict(zip(genome.names, genome.shapes))

    def entries(name, dim, index):
        grid = torch.arange(torch.Size(shapes[name]).numel()).reshape(shapes[name])
        return offsets[name] + grid.select(dim, index).reshape(-1)

    neurons = []
    names = [f"{prefix}layers.{i}.synapses.weight" for i in range(len(network.layers))]
    names.append(f"{prefix}readout.synapses.weight")
    for i, layer in enumerate(network.layers):
        recurrent = f"{prefix}layers.{i}.recurrent.weight"
        for j in range(layer.size):
            parts = [entries(names[i], 0, j), entries(names[i + 1], 1, j)]
            if recurrent in offsets:
                parts += [entries(recurrent, 0, j), entries(recurrent, 1, j)]
            neurons.append(torch.cat(parts).unique())
    return neurons


class GeneticTopology:
    """EONS-style GA (module docstring) from the weights ``centre`` over ``population`` genomes;
    ``synapses``: the genome indices that may be switched on and off (the weight matrices' entries);
    ``neurons``: the indices of each hidden neuron's synapses (:func:`hidden_neurons`)."""

    name = "ga"

    def __init__(self, centre: torch.Tensor, *, population: int, synapses: torch.Tensor, neurons: list[torch.Tensor],
                 sigma: float = 0.05, structure_rate: float = 0.3, elite: int = 2, tournament: int = 3,
                 init_scale: float | None = None, seed: int = 0):
        require_count("population", population, minimum=2)
        if not 0 <= elite < population:
            raise ValueError(f"the GA keeps {elite} elite genomes: population must exceed it, got {population}")
        if not 0.0 <= structure_rate <= 1.0:
            raise ValueError(f"structure_rate must lie in [0, 1], got {structure_rate}")
        self.sigma, self.population = require_positive("sigma", sigma), population
        self.structure_rate, self.elite = structure_rate, elite
        self.tournament = require_count("tournament", tournament)
        self.synapses, self.neurons = synapses, neurons
        start = centre.detach().double()
        self.init_scale = float(start[synapses].std()) if init_scale is None else init_scale
        self.generator = torch.Generator().manual_seed(seed)
        self.weights = start + self.sigma * torch.randn(population, len(start), generator=self.generator,
                                                        dtype=torch.float64)
        self.weights[0] = start  # the starting network itself competes
        self.masks = torch.ones(population, len(start), dtype=torch.bool)
        self.best = start.clone()

    def ask(self) -> torch.Tensor:
        return self.weights * self.masks

    def tell(self, candidates: torch.Tensor, fitness: torch.Tensor) -> None:
        if len(fitness) != self.population:
            raise ValueError(f"tell expects the fitness of the {self.population} candidates of the last ask")
        order = fitness.argsort(descending=True, stable=True)
        self.best = candidates[order[0]].clone()  # the last generation's winner, not a lucky draw of long ago
        children = [order[:self.elite]]
        contenders = torch.randint(self.population, (self.population - self.elite, self.tournament),
                                   generator=self.generator)
        children.append(contenders.gather(1, fitness[contenders].argmax(1, keepdim=True)).squeeze(1))
        parents = torch.cat(children)
        self.weights, self.masks = self.weights[parents].clone(), self.masks[parents].clone()
        for child in range(self.elite, self.population):
            self._mutate(child)

    def _mutate(self, child: int) -> None:
        weights, mask, draw = self.weights[child], self.masks[child], self.generator
        weights.add_(self.sigma * torch.randn(len(weights), generator=draw, dtype=torch.float64) * mask)
        if float(torch.rand((), generator=draw)) >= self.structure_rate:
            return
        kind = int(torch.randint(4, (), generator=draw))
        if kind < 2:  # add (0) or remove (1) one synapse
            pool = self.synapses[mask[self.synapses] == (kind == 1)]
            if len(pool):
                index = pool[torch.randint(len(pool), (), generator=draw)]
                mask[index] = kind == 0
                weights[index] = self.init_scale * torch.randn((), generator=draw, dtype=torch.float64)
            return
        alive = torch.tensor([bool(mask[n].any()) for n in self.neurons])
        pool = (~alive if kind == 2 else alive).nonzero().flatten()
        if len(pool):  # add (2) or remove (3) one hidden neuron
            indices = self.neurons[int(pool[torch.randint(len(pool), (), generator=draw)])]
            mask[indices] = kind == 2
            weights[indices] = self.init_scale * torch.randn(len(indices), generator=draw, dtype=torch.float64)

    def centre(self) -> torch.Tensor:
        return self.best.clone()

    def state_dict(self) -> dict:
        return {"weights": self.weights, "masks": self.masks, "best": self.best,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.weights, self.masks, self.best = state["weights"].clone(), state["masks"].clone(), state["best"].clone()
        self.generator.set_state(state["generator"])
