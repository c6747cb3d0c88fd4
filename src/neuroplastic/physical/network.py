"""A network that lives on a chip: its digital twin (the ideal equations, whose weights training
changes) and the device that computes it (:class:`~neuroplastic.physical.chip.Chip`).

Its forward pass is the chip's measurement — what a deployed network does, and what evaluation sees.
Physics-aware training (Wright et al. 2022, "Deep physical neural networks trained with
backpropagation", Nature 601:549) needs two more things, both here:

- :func:`physics_aware`: the chip's outputs with the twin's gradients. Each layer of the twin runs on
  the spikes the chip's layer below produced, with the weights the chip holds (within a recurrent
  layer, though, the twin's own spikes of the last step feed its recurrent synapses); its output's
  value is replaced by the chip's, its gradient kept (``y = f_twin(x) + (f_chip − f_twin(x))`` with the
  difference outside autograd). The backward pass then multiplies the twin's Jacobians evaluated at the
  chip's states: ``∂L/∂θ_l = (∂f_twin,l/∂θ_l at (x_l^chip, θ_l))ᵀ ∂L/∂y_l^chip``. Where the chip equals the
  twin, this is backpropagation through the twin exactly;
- :func:`calibrate`: the twin fitted to recordings of the chip — each neuron's gain (its ``resistance``,
  ``I_th/I_τ``) set so that, driven by the same input spikes, it fires at the chip's neuron's rate
  (bisection in the log of the gain, every neuron at once: the rate grows with the gain); neurons the
  chip keeps silent keep their gain.
"""
from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parametrize

from neuroplastic.networks import NetworkOutput, SpikingNetwork
from neuroplastic.physical.chip import Chip, ChipSpec, per_neuron, programmed, quantize
from neuroplastic.validation import require_count, require_finite

__all__ = ["PhysicalNetwork", "physics_aware", "calibrate"]


class PhysicalNetwork(nn.Module):
    """``twin`` (a :class:`~neuroplastic.networks.SpikingNetwork` of DPI layers; its neurons are given
    per-neuron parameters) deployed on the chip ``spec``."""

    output_name = "readout"

    def __init__(self, twin: SpikingNetwork, spec: ChipSpec):
        super().__init__()
        per_neuron(twin)
        self.twin = twin
        self.chip = Chip(twin, spec)
        for index, layer in enumerate(twin.layers):  # what calibration searches around
            self.register_buffer(f"nominal_gain_{index}", layer.neuron_parameters.resistance.detach().clone())

    @property
    def layers(self):
        return self.twin.layers

    @property
    def readout(self):
        return self.twin.readout

    def deployed(self, spec: ChipSpec) -> "PhysicalNetwork":
        """The twin's weights on the chip ``spec``, with the nominal twin (a calibration stays behind:
        it described this chip)."""
        twin = copy.deepcopy(self.twin)
        with torch.no_grad():
            for index, layer in enumerate(twin.layers):
                layer.neuron_parameters.resistance.copy_(getattr(self, f"nominal_gain_{index}"))
        return PhysicalNetwork(twin, spec)

    def forward(self, inputs: torch.Tensor, state=None, noise=None) -> NetworkOutput:
        """The chip's measurement on ``inputs`` ``(T, B, n_in)`` (no graph; a state or noise of one's
        own cannot be given to a device)."""
        if state is not None or noise is not None:
            raise ValueError("a chip runs from rest with its own noise: state and noise cannot be given")
        return self.chip.measure(self.twin, inputs)

    def stored_weight(self, synapses: nn.Module) -> torch.Tensor:
        """The weight of a spiking layer's ``synapses`` as the chip computes with it: the trained tensor
        quantized to the chip's ``bits`` (the grid set by that tensor, as
        :func:`~neuroplastic.physical.chip.on_device` programs it), then the synapses' own constraints (a
        recurrent layer's missing self-connections). What NeuroBench's connection sparsity and effective
        operations count on a chip."""
        if not parametrize.is_parametrized(synapses, "weight"):
            return quantize(synapses.weight.detach(), self.chip.spec.bits)
        stored = quantize(synapses.parametrizations.weight.original.detach(), self.chip.spec.bits)
        for constraint in synapses.parametrizations.weight:
            stored = constraint(stored)
        return stored

    def footprint_bytes(self) -> int:
        """What the deployed system stores: every parameter of the spiking layers in the chip's ``bits``
        per entry (rounded up to whole bytes) plus the one scale ``Δ`` of its grid, fixed delays in
        ``⌈log₂(D + 1)⌉`` bits each, and the host's digital readout as it is. The twin's neuron parameters, the nominal gains and the mismatch draws
        describe the device; they are not stored by it."""
        bits = self.chip.spec.bits
        stored = sum(-(-p.numel() * bits // 8) + p.element_size() if bits else p.numel() * p.element_size()
                     for p in self.twin.layers.parameters())
        delays = sum(-(-m.delays.numel() * max(1, m.max_delay.bit_length()) // 8)  # fixed delays: an integer each
                     for m in self.twin.layers.modules() if isinstance(getattr(m, "delays", None), torch.Tensor))
        readout = itertools.chain(self.twin.readout.parameters(), self.twin.readout.buffers())
        return stored + delays + sum(t.numel() * t.element_size() for t in readout)


def _programmed(module: nn.Module, bits, gains: dict) -> dict:
    """``module``'s weights as the chip stores them (quantized to ``bits``), passing gradients to the
    twin's unchanged (straight through), times the synapse gains the twin assumes (``gains`` by name)."""
    return {name: programmed(weight, bits, gains.get(name), straight_through=True)
            for name, weight in module.named_parameters()}


def physics_aware(network: PhysicalNetwork, inputs: torch.Tensor, measured: NetworkOutput, *,
                  gains: dict | None = None) -> NetworkOutput:
    """The chip's output ``measured`` on ``inputs`` with the gradients of the twin evaluated at the chip's
    states (module docstring). ``gains``: per-synapse gains the twin assumes, by the network's parameter
    names (default: none, the nominal twin)."""
    bits, x = network.chip.spec.bits, inputs
    spikes = []
    for index, (layer, chip_spikes) in enumerate(zip(network.twin.layers, measured.spikes)):
        prefix = f"layers.{index}."
        assumed = {name[len(prefix):]: gain for name, gain in (gains or {}).items() if name.startswith(prefix)}
        twin_spikes, _ = functional_call(layer, _programmed(layer, bits, assumed), (x,), strict=False)
        x = twin_spikes + (chip_spikes - twin_spikes).detach()
        spikes.append(x)
    readout = network.twin.readout(x)  # digital: computed alike by host and twin
    return NetworkOutput(readout, tuple(spikes), measured.state, tuple(spikes))


@torch.no_grad()
def calibrate(network: PhysicalNetwork, inputs: torch.Tensor, *, span: float = 8.0, iterations: int = 24) -> None:
    """Fits each twin neuron's gain to the chip's recordings on ``inputs`` (module docstring), searching
    within ``span`` times below and above its nominal gain (each calibration afresh). A neuron silent on
    the chip says nothing about its gain and keeps the one it has."""
    if not require_finite("calibration span", span) > 1:
        raise ValueError(f"calibration span must exceed 1, got {span!r}")
    require_count("calibration iterations", iterations)
    measured = network.chip.measure(network.twin, inputs)
    bits, x = network.chip.spec.bits, inputs
    for index, (layer, chip_spikes) in enumerate(zip(network.twin.layers, measured.spikes)):
        nominal = getattr(network, f"nominal_gain_{index}")
        target = chip_spikes.mean((0, 1))
        weights = {name: programmed(w, bits, straight_through=False) for name, w in layer.named_parameters()}
        low = torch.full_like(nominal, -math.log(span))
        high = -low
        for _ in range(iterations):
            middle = (low + high) / 2
            gain = {"neuron_parameters.resistance": nominal * torch.exp(middle)}
            rate = functional_call(layer, {**weights, **gain}, (x,), strict=False)[0].mean((0, 1))
            below = rate < target
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        fitted = nominal * torch.exp((low + high) / 2)
        gains = layer.neuron_parameters.resistance
        gains.copy_(torch.where(target > 0, fitted, gains))
        x = chip_spikes
