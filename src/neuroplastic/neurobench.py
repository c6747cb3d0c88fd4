"""NeuroBench's metrics of a network over a task's split: footprint, connection sparsity, activation
sparsity and synaptic operations (dense, effective MACs, effective ACs).

The definitions are NeuroBench's (Yik et al. 2025, "The neurobench framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 16:1545), as its package
(``neurobench`` 2.x, ``metrics/static`` and ``metrics/workload``) counts them; here they are computed
from the network's own tensors and from the spikes its forward pass returns, in the evaluation's one
pass over the split, without hooks and without a Python operation per time step.

Static, of the network alone:

- **footprint** = ``Σ numel · bytes per element`` over the parameters and buffers: what it stores.
- **connection sparsity** = ``(zero entries) / (entries)`` over the weights of the connections: each
  layer's input synapses, its recurrent synapses and the readout's. Biases are not weights (NeuroBench
  counts a ``Linear``'s weight only). A weight is the effective one (``synapses.weight``): the missing
  self-connections of recurrent synapses are zeros of it; delayed synapses count their weight ``W``,
  one entry per synapse whatever its delay.

Workload, over the samples of a split, each run from rest in ``eval()``:

- **activation sparsity** = ``1 − events / (samples · T · Σ_l n_l)``: the fraction of the hidden
  neurons' steps without a spike, over every layer, step and sample (NeuroBench hooks the outputs of
  the spiking neurons; the readout integrates and does not fire). Events are the binary spikes
  (``NetworkOutput.events``, counted by :func:`~neuroplastic.training.problem.traffic`): a graded
  spike whose payload is 0 is still an event.
- **synaptic operations**, per sample. A connection reads presynaptic activity ``x_t`` ``(B, n_in)``
  (the input, or the payloads the layer below sends) through a kernel ``K[k, j, i]`` over the taps
  ``k = 0 … D`` of delay: ``W`` as its one tap for plain synapses, ``kernel()`` for delayed ones; the
  recurrent synapses read the previous step's spikes, a lag ``λ = 1`` (``λ = 0`` otherwise)::

      dense     = T · numel(K)
      effective = Σ_{t, b} Σ_{k, j, i} [K[k, j, i] ≠ 0] · [x_{t−k−λ, b, i} ≠ 0]    (x before step 0 = 0)

  An effective operation is an accumulate (AC) where the presynaptic row ``x_{t, b}`` holds only 0 and
  ±1 (a spike adds or subtracts a weight), a multiply-accumulate (MAC) otherwise (rates, graded spikes).
  Biases are not synaptic operations. ``dense`` counts every weight at every step, zeros and silent
  inputs included (NeuroBench's ``Dense``: its recurrent synapses run at the first step too).

Where the counting differs from NeuroBench's by construction:

- NeuroBench decides AC or MAC once per call of a layer (a step of a whole batch); here per sample and
  step, so that the numbers do not depend on the batching. Both agree wherever a step's inputs are
  binary for every sample of a batch or for none (spike data).
- NeuroBench knows ``torch.nn`` connections only (``Linear``, ``Conv``, ``RNN`` cells); our synapses are
  our own modules. It has no delayed synapse: ``K`` is what a causal ``Conv1d`` over time computes, and
  the counts above are NeuroBench's for that ``Conv1d``.

The training count ``synops`` (:func:`~neuroplastic.training.problem.synaptic_operations`) is a
different quantity: events times every postsynaptic neuron of a layer, zero weights and the missing
self-connection included, with no split into ACs and MACs. It equals ``samples · (effective ACs +
MACs)`` of the same pass for networks without zero weights, recurrence or delays; with recurrence it
exceeds it by one per recurrent event delivered (the self-connection it counts).

Networks without spiking layers (:class:`~neuroplastic.networks.EnergyNetwork`, equilibrium
propagation, and its spiking form :class:`~neuroplastic.networks.SpikingEnergyNetwork`, whose forward
pass also returns only the output layer) relax to a fixed point: footprint, connection sparsity (of
their ``weights``) and the dense operations (their own ``pass_operations``: every weight read at every
relaxation step, bottom-up and top-down) apply; activation sparsity and the effective operations,
which need the activities of every relaxation step, are reported as ``None``.

Two readings to keep in mind: the dense operations of delayed synapses count every tap of their
kernel (``D + 1`` per synapse, as NeuroBench counts the ``Conv1d``), while their connection sparsity
counts ``W`` (one entry per synapse). A :class:`~neuroplastic.physical.PhysicalNetwork` (``pat``,
``twin``) is measured as the device: the spikes are the chip's, its layers' weights count as the chip
stores them (quantized: a weight rounded to 0 is a zero of the connection sparsity and costs no
operation), and the footprint is what the deployed system stores (the chip's weights in ``bits`` bits,
the host's readout), not the twin's parameters and the simulated mismatch.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from neuroplastic.synapses import FixedDelays, LearnedDelays
from neuroplastic.training.problem import synaptic_operations, traffic

__all__ = [
    "Workload",
    "connection_sparsity",
    "connection_weights",
    "connections",
    "effective_operations",
    "footprint_bytes",
]

DELAYED = (FixedDelays, LearnedDelays)


def footprint_bytes(network: nn.Module) -> int:
    """Bytes of the network's parameters and buffers; a network on a chip says what it stores itself
    (:meth:`~neuroplastic.physical.PhysicalNetwork.footprint_bytes`)."""
    if hasattr(network, "footprint_bytes"):
        return network.footprint_bytes()
    return sum(t.numel() * t.element_size() for t in itertools.chain(network.parameters(), network.buffers()))


def _layer_weight(network):
    """``synapses → W`` of the spiking layers' connections: as the chip stores them for a network on a
    chip (:meth:`~neuroplastic.physical.PhysicalNetwork.stored_weight`; a delayed synapse's wrapped
    weight), as they are otherwise."""
    stored = getattr(network, "stored_weight", None)
    if stored is None:
        return _weight
    return lambda synapses: stored(synapses.synapses if isinstance(synapses, DELAYED) else synapses)


def _layer_kernel(network):
    """``synapses → K`` of the spiking layers' connections (:func:`_kernel`; on a chip from its stored
    ``W``: a delayed synapse's taps ``profile · W``, as the chip computes them)."""
    if not hasattr(network, "stored_weight"):
        return _kernel
    weight = _layer_weight(network)

    def kernel(synapses):
        if isinstance(synapses, DELAYED):
            return (synapses.profile() * weight(synapses)).detach()
        return weight(synapses)[None]
    return kernel


def _weight(synapses) -> torch.Tensor:
    return (synapses.synapses if isinstance(synapses, DELAYED) else synapses).weight.detach()


def _kernel(synapses) -> torch.Tensor:
    """``K`` ``(D + 1, n_out, n_in)``: a delayed synapse's taps, or the weight as the one tap."""
    return synapses.kernel().detach() if isinstance(synapses, DELAYED) else _weight(synapses)[None]


def connection_weights(network) -> list[torch.Tensor]:
    """The weights of every connection: per layer its input and recurrent synapses', then the readout's;
    a network without spiking layers: its ``weights``."""
    if not hasattr(network, "layers"):
        return [weight.detach() for weight in network.weights]
    weight = _layer_weight(network)
    weights = [weight(synapses) for layer in network.layers
               for synapses in (layer.synapses, layer.recurrent) if synapses is not None]
    return weights + [_weight(network.readout.synapses)]


def connection_sparsity(network) -> float:
    """The fraction of zero entries over :func:`connection_weights`."""
    weights = connection_weights(network)
    zeros = sum(int(torch.count_nonzero(weight == 0)) for weight in weights)
    return zeros / sum(weight.numel() for weight in weights)


def connections(network, inputs: torch.Tensor, spikes) -> list[tuple]:
    """``(x, K, λ)`` of each connection of a spiking network for a pass on ``inputs`` ``(T, B, n_in)``
    with hidden ``spikes`` (``NetworkOutput.spikes``: the payloads each layer sends): the presynaptic
    activity ``(T, B, n_in)``, the kernel ``(D + 1, n_out, n_in)`` and the lag in steps."""
    found, pre, kernel = [], inputs, _layer_kernel(network)
    for layer, sent in zip(network.layers, spikes):
        found.append((pre, kernel(layer.synapses), 0))
        if layer.recurrent is not None:
            found.append((sent, kernel(layer.recurrent), 1))
        pre = sent
    return found + [(pre, _kernel(network.readout.synapses), 0)]


def effective_operations(x: torch.Tensor, kernel: torch.Tensor, lag: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ACs, MACs)`` of one connection over a pass: activity ``x`` ``(T, B, n_in)`` read through
    ``kernel`` ``(D + 1, n_out, n_in)`` ``lag`` steps late (module docstring), as int64 tensors on
    ``x``'s device.

    A nonzero ``x_{t, b, i}`` reaches tap ``k`` at step ``t + k + λ``, inside the pass when
    ``t < T − k − λ``, and there costs one operation per nonzero ``K[k, :, i]``; so with ``c_i(τ)`` the
    nonzero inputs of ``i`` before step ``τ`` (a cumulative sum over time), the count is
    ``Σ_{k, i} c_i(T − k − λ) · #{j: K[k, j, i] ≠ 0}``.
    """
    steps = x.shape[0]
    nonzero = x != 0
    graded = nonzero & (x.abs() != 1)  # entries that are not spikes (±1)
    fan_out = torch.count_nonzero(kernel, dim=1)  # (D + 1, n_in)
    taps = torch.arange(kernel.shape[0], device=x.device)
    window = (steps - lag - taps).clamp(min=0)  # inputs before this step of each tap arrive in the pass

    def arrived(mask):
        counts = mask.sum(1)  # (T, n_in)
        before = torch.cat([counts.new_zeros(1, counts.shape[1]), counts.cumsum(0)])  # (T + 1, n_in)
        return (before[window] * fan_out).sum()

    every = arrived(nonzero)
    if not bool(graded.any()):  # spikes only (the usual case): every operation an accumulate; one
        return every, torch.zeros_like(every)  # reduction over all entries, not one per row (2.3 → 1 ms)
    binary_rows = ~graded.any(-1, keepdim=True)  # (T, B, 1): rows of spikes
    accumulates = arrived(nonzero & binary_rows)
    return accumulates, every - accumulates


def _reached(kernel: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The accumulates of a connection without delays (``kernel`` ``(1, n_out, n_in)``) whose
    presynaptic neurons sent ``counts`` ``(n_in,)`` spikes within the pass: an accumulate per nonzero
    weight of the sender's column (:func:`effective_operations` with one tap)."""
    return (counts * torch.count_nonzero(kernel[0], dim=0)).sum()


class Workload:
    """NeuroBench's metrics of ``network`` over a split, added up batch by batch: :meth:`add` each
    evaluated batch, then :meth:`metrics`. Also the split's ``events`` and ``bits`` (``traffic``)."""

    def __init__(self, network: nn.Module):
        self.network = network
        self.samples = self.events = self.bits = self.neuron_steps = 0
        self.accumulates = self.multiply_accumulates = self.dense = 0
        self.spiking = True

    @torch.no_grad()
    def add(self, inputs: torch.Tensor, output) -> None:
        """One batch: ``inputs`` ``(T, B, n_in)`` and the network's ``NetworkOutput`` for them."""
        steps, batch = inputs.shape[:2]
        self.samples += batch
        if not output.spikes:  # no spiking layers: the network's own count of a pass
            self.spiking = False
            self.dense += synaptic_operations(self.network, inputs, output.spikes)
            return
        events, bits = traffic(self.network, output.events)
        self.events, self.bits = self.events + events, self.bits + bits
        self.neuron_steps += steps * batch * sum(layer.size for layer in self.network.layers)
        for x, kernel, lag in connections(self.network, inputs, output.spikes):
            accumulates, multiply_accumulates = effective_operations(x, kernel, lag)
            self.accumulates = self.accumulates + accumulates  # on the device: read once in metrics()
            self.multiply_accumulates = self.multiply_accumulates + multiply_accumulates
            self.dense += steps * batch * kernel.numel()

    @torch.no_grad()
    def add_counted(self, inputs: torch.Tensor, counted) -> None:
        """One batch evaluated by :func:`~neuroplastic.networks.evaluation.counted_pass` (plain synapses,
        binary hidden spikes): what :meth:`add` sums, the input's operations from its spikes' count per
        input (``counted.input_counts``; graded input, from the input), the hidden layers' from each
        neuron's spike counts. A neuron's spikes reach the layer above and the readout
        within the pass, its recurrent synapses all but those of the last step (λ = 1): each costs an
        accumulate per nonzero weight of its column."""
        steps, batch = inputs.shape[:2]
        self.samples += batch
        layers, kernel = self.network.layers, _layer_kernel(self.network)
        events = [int(counts.sum()) for counts in counted.spike_counts]
        self.events += sum(events)
        self.bits += sum(count * layer.payload_bits for count, layer in zip(events, layers))
        self.neuron_steps += steps * batch * sum(layer.size for layer in layers)
        first = kernel(layers[0].synapses)
        if counted.input_counts is None:  # graded input: its multiply-accumulates too
            accumulates, multiply_accumulates = effective_operations(inputs, first)
            self.multiply_accumulates = self.multiply_accumulates + multiply_accumulates
        else:  # spikes: each input's over the pass, counted from the kernel's index of them
            accumulates = _reached(first, counted.input_counts)
        self.dense += steps * batch * first.numel()
        reads = []  # (K, the spikes that reach it within the pass)
        for index, (layer, counts, last) in enumerate(zip(layers, counted.spike_counts, counted.last_spikes)):
            if layer.recurrent is not None:
                reads.append((kernel(layer.recurrent), counts - last))
            above = kernel(layers[index + 1].synapses) if index + 1 < len(layers) else \
                _kernel(self.network.readout.synapses)
            reads.append((above, counts))
        for weights, counts in reads:
            accumulates = accumulates + _reached(weights, counts.sum(0))
            self.dense += steps * batch * weights.numel()
        self.accumulates = self.accumulates + accumulates

    def metrics(self) -> dict:
        """``footprint_bytes``, ``connection_sparsity``, ``activation_sparsity`` and the synaptic
        operations per sample (``dense_operations_per_sample``, ``effective_macs_per_sample``,
        ``effective_acs_per_sample``); ``None`` for what a network without spiking layers does not show."""
        samples = max(self.samples, 1)
        measured = self.spiking and self.neuron_steps > 0
        return {
            "footprint_bytes": footprint_bytes(self.network),
            "connection_sparsity": connection_sparsity(self.network),
            "activation_sparsity": 1.0 - self.events / self.neuron_steps if measured else None,
            "dense_operations_per_sample": self.dense / samples,
            "effective_macs_per_sample": int(self.multiply_accumulates) / samples if measured else None,
            "effective_acs_per_sample": int(self.accumulates) / samples if measured else None,
        }
