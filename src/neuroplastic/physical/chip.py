"""A simulated mixed-signal chip: a network of DPI neurons (:class:`~neuroplastic.neurons.DPI`) as a
physical device computes it, behind an interface that gives outputs and no gradients.

A chip differs from the network's ideal equations (its digital twin) in three ways:

- **mismatch**, fixed per device: every neuron's bias currents (leak ``I_τ``, threshold ``I_th``,
  synaptic leak, spiking threshold ``I_spk``) and every synapse's weight current is its nominal value
  times an independent log-normal factor ``exp(σ ξ)``, ``ξ ~ N(0, 1)``, drawn once from the chip's
  seed; the neuron's gain (``resistance``, ``I_th/I_τ``), time constants (``tau_m``, ``tau_s``, ``∝ 1/I_τ``)
  and threshold (``v_th``) follow from them (:func:`draw_mismatch`).
  Subthreshold currents are exponential in the transistors' threshold voltages, so their spread is
  log-normal; ``σ`` (``mismatch``, 0–0.4) is close to the coefficient of variation, typically 0.1–0.3 on
  CMOS chips (Chicca et al. 2014, Proc. IEEE 102:1367);
- **noise**, fresh in every run: each neuron's ``I_mem`` receives a normal current of standard
  deviation ``noise`` (threshold units) at every step;
- **quantized weights**: the synaptic weights are stored in ``bits`` bits (:func:`quantize`); the
  current a synapse makes of its stored weight carries the synapse's mismatch.

The spiking layers run on the chip; the host reads their spikes into the network's leaky readout,
which stays digital and exact. :meth:`Chip.measure` returns what the device did — the readout, the
spikes of every layer — as tensors without an autograd graph, whatever requires gradients around it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from neuroplastic.networks import NetworkOutput, SpikingNetwork
from neuroplastic.neurons import DPI
from neuroplastic.validation import require_count, require_non_negative

__all__ = ["ChipSpec", "Chip", "quantize", "programmed", "per_neuron", "on_device", "draw_mismatch", "MISMATCHED",
           "GAIN"]

MISMATCHED = ("tau_m", "tau_s", "resistance", "v_th")  # the DPI parameters each neuron has its own of
GAIN = "gain:"  # a synapse's mismatch, named after its weight


def quantize(weight: torch.Tensor, bits: int | None) -> torch.Tensor:
    """``weight`` stored in ``bits`` bits: for ``b ≥ 2`` a symmetric grid of ``2^b − 1`` levels ``k·Δ``,
    ``|k| ≤ 2^{b−1} − 1``, ``Δ`` set by the largest magnitude of the tensor; for ``b = 1`` two levels,
    ``±`` its mean magnitude (a zero weight is stored as ``+``); ``None``: unchanged."""
    if bits is None:
        return weight
    magnitude = weight.detach().abs()
    if bits == 1:
        return torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype) * magnitude.mean()
    scale = magnitude.amax()
    step = torch.where(scale > 0, scale / (2 ** (bits - 1) - 1), torch.ones_like(scale))
    return torch.round(weight / step) * step


def programmed(weight: torch.Tensor, bits: int | None, gain=None, *, straight_through: bool) -> torch.Tensor:
    """The current a synapse makes of ``weight`` stored in ``bits`` bits, times its ``gain`` (mismatch;
    ``None``: 1); ``straight_through``: gradients reach ``weight`` as if unquantized, else no graph."""
    stored = quantize(weight, bits)
    stored = weight + (stored - weight).detach() if straight_through else stored.detach()
    return stored if gain is None else stored * gain


@dataclass(frozen=True)
class ChipSpec:
    """One device: ``mismatch`` σ of the log-normal factors, ``noise`` per step, weights in ``bits``
    bits (``None``: full precision), and ``seed``, which draws its mismatch."""

    mismatch: float = 0.0
    noise: float = 0.0
    bits: int | None = None
    seed: int = 0

    def __post_init__(self):
        require_non_negative("mismatch", self.mismatch)
        require_non_negative("noise", self.noise)
        if self.bits is not None:
            require_count("bits", self.bits)
        require_count("chip seed", self.seed, minimum=0)


def nominal(twin: SpikingNetwork) -> dict:
    """What mismatch changes, at its nominal values: the twin's per-neuron DPI parameters (:func:`per_neuron`)
    by their names in its buffers, and a gain of 1 per synaptic weight (``gain:`` and the weight's name)."""
    buffers = dict(twin.named_buffers())
    values = {f"layers.{index}.neuron_parameters.{name}": buffers[f"layers.{index}.neuron_parameters.{name}"]
              .detach().clone() for index in range(len(twin.layers)) for name in MISMATCHED}
    gains = {f"{GAIN}{name}": torch.ones_like(weight.detach()) for name, weight in twin.named_parameters()
             if name.startswith("layers.")}
    return {**values, **gains}


def device_network(twin: SpikingNetwork, noise: float = 0.0) -> SpikingNetwork:
    """A copy of ``twin`` (whose neurons hold a tensor per neuron of each mismatched parameter, to be
    substituted by ``functional_call``) with the noise ``sigma``, its weights outside autograd."""
    device = copy.deepcopy(twin).eval()  # no dropout on a device
    for layer in device.layers:
        layer.neuron = layer.neuron.replace(sigma=float(noise))
    for parameter in device.parameters():
        parameter.requires_grad_(False)
    return device


def per_neuron(twin: SpikingNetwork) -> None:
    """Gives every DPI layer of ``twin`` one tensor per neuron of each mismatched parameter (buffers
    of ``twin``, holding the nominal values): what a chip's mismatch and a calibration change. Layers
    whose parameters are not all synaptic weights (learned delays, payloads) are refused; fixed delays
    are wiring and pass."""
    for index, layer in enumerate(twin.layers):
        if not isinstance(layer.neuron, DPI):
            raise ValueError(f"a chip computes DPI neurons; layer {index} has {type(layer.neuron).__name__}")
        others = [name for name, _ in layer.named_parameters()  # a parametrized weight is held as ….original
                  if not name.endswith(("weight", "weight.original"))]
        if others or layer.payload is not None:
            raise ValueError(f"a chip's synapses are weights only: layer {index} has "
                             f"{', '.join(others) or 'a payload'} (no biases, learned delays or graded spikes on a "
                             "chip)")
        like = next(layer.parameters(), torch.empty((), device="cpu"))  # the layer's dtype and device
        values = {name: torch.as_tensor(getattr(layer.neuron, name), dtype=like.dtype, device=like.device).detach()
                  .expand(layer.size).clone() for name in MISMATCHED}
        layer.neuron = layer.neuron.replace(**values)


def draw_mismatch(values: dict, sigma: float, generator: torch.Generator) -> dict:
    """A device drawn around ``values`` (:func:`nominal`): each neuron's leak current ``I_τ``, threshold
    current ``I_th``, synaptic leak current and spiking threshold ``I_spk``, and each synapse's weight
    current, times an independent log-normal factor ``exp(σ ξ)``. The parameters follow the circuit:
    ``τ_mem ∝ 1/I_τ``, gain ``∝ I_th/I_τ`` (so a neuron's τ_mem and gain share its ``I_τ``),
    ``τ_syn ∝ 1/I_τ,syn``, ``v_th ∝ I_spk``."""
    def factor(like):
        xi = torch.randn(like.shape, generator=generator, dtype=torch.float64, device=generator.device)
        return torch.exp(sigma * xi).to(like.device, like.dtype)

    drawn = {}
    for name, value in values.items():
        if name.startswith(GAIN):
            drawn[name] = value * factor(value)
        elif name.endswith(".tau_m"):
            neuron = name[:-len("tau_m")]
            leak, threshold_current, synapse_leak, spike_threshold = (factor(value) for _ in range(4))
            drawn[neuron + "tau_m"] = value / leak
            drawn[neuron + "resistance"] = values[neuron + "resistance"] * threshold_current / leak
            drawn[neuron + "tau_s"] = values[neuron + "tau_s"] / synapse_leak
            drawn[neuron + "v_th"] = values[neuron + "v_th"] * spike_threshold
    return {name: drawn[name] for name in values}


def on_device(device: SpikingNetwork, twin: SpikingNetwork, parameters: dict, inputs, *, bits, noise, generator,
              straight_through: bool = False) -> NetworkOutput:
    """``device`` (a :func:`device_network`) run on ``inputs`` with the twin's weights quantized to
    ``bits`` and the mismatched ``parameters`` (:func:`nominal`'s names); ``straight_through``: the
    quantization passes gradients to the twin's weights unchanged (quantization-aware training), else no
    graph is kept."""
    weights = {}
    for name, weight in twin.named_parameters():
        if not name.startswith("layers."):  # the readout is digital
            weights[name] = weight if straight_through else weight.detach()
        else:
            weights[name] = programmed(weight, bits, parameters[GAIN + name].to(inputs.dtype),
                                       straight_through=straight_through)
    buffers = {name: value.to(inputs.dtype) for name, value in parameters.items() if not name.startswith(GAIN)}
    return functional_call(device, {**weights, **buffers}, (inputs,), {"noise": generator if noise else None})


class Chip(nn.Module):
    """The device ``spec`` with ``twin``'s structure and nominal parameters, programmed with the twin's
    current weights at every :meth:`measure`."""

    def __init__(self, twin: SpikingNetwork, spec: ChipSpec):
        super().__init__()
        self.spec = spec
        # not a submodule: its weights are the twin's, programmed at every measurement
        object.__setattr__(self, "_device", device_network(twin, spec.noise))
        drawn = draw_mismatch(nominal(twin), spec.mismatch, torch.Generator().manual_seed(spec.seed))
        self._names = list(drawn)
        for index, name in enumerate(self._names):
            self.register_buffer(f"parameter_{index}", drawn[name])
        self._noise = self._fresh_noise("cpu")

    def _fresh_noise(self, device) -> torch.Generator:
        """The chip's noise from its start, drawn on ``device``."""
        return torch.Generator(device=device).manual_seed(self.spec.seed + 1)

    def get_extra_state(self):
        """The noise generator's state travels with the chip in a checkpoint (a resumed run continues it)."""
        return {"noise": self._noise.get_state(), "device": str(self._noise.device)}

    def set_extra_state(self, state):
        device = torch.device(state["device"])
        if device.type != "cpu" and not getattr(torch, device.type).is_available():  # resumed elsewhere
            self._noise = self._fresh_noise("cpu")
            return
        self._noise = torch.Generator(device=device)
        self._noise.set_state(state["noise"])

    @property
    def parameters_by_name(self) -> dict:
        """This chip's per-neuron DPI parameters and per-synapse gains (:func:`nominal`'s names)."""
        return {name: getattr(self, f"parameter_{index}") for index, name in enumerate(self._names)}

    @torch.no_grad()
    def measure(self, twin: SpikingNetwork, inputs: torch.Tensor) -> NetworkOutput:
        """The chip programmed with ``twin``'s weights, run on ``inputs`` ``(T, B, n_in)``: readout, spikes
        and state, all without a graph."""
        self._device.to(device=inputs.device)
        if self._noise.device != inputs.device:  # noise is drawn where the chip runs
            self._noise = self._fresh_noise(inputs.device)
        return on_device(self._device, twin, self.parameters_by_name, inputs, bits=self.spec.bits,
                         noise=self.spec.noise, generator=self._noise)

