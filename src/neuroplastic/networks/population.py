"""Many independent networks of one shape run as one: a population for evolution, the tasks of a meta-batch.

``M`` :class:`~neuroplastic.networks.SpikingNetwork` s of the same architecture differ only in their
synaptic weights and biases. Stacked (:func:`stack_networks`, the layout of
``torch.func.stack_module_state``: every parameter gains a leading model dimension, a weight
``(M, n_out, n_in)``), each layer runs once for all of them (:func:`population_forward`):

- **Input currents** ``I^m_t = W^m x^m_t``: one batched product ``(M, T·B, n_in) × (M, n_in, n_out)``
  (``torch.bmm``). Where every model reads the same input ``x`` (the first layer, unless each model
  has its own) the M weight matrices are one wide layer ``(M·n_out, n_in)``: its currents
  ``x Wᵀ`` are all the models' at once, event by event where ``x`` is spikes (the fused operation of
  :mod:`neuroplastic.fused`, also fusing the LIF recurrence, where the layer can run it).
- **Neurons** act elementwise, so the models fold into the batch: a state ``(M, B, N)`` steps as a
  batch of ``M·B``, or the fused recurrence runs over ``(T, M·B, N)``.
- **Recurrence** ``+ W_rec^m z^m_{t−1}``: one batched product per step over ``(M, B, N)`` — for
  recurrent ALIF/LIF layers inside the fused recurrent kernel
  (:func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence` with the stacked weights: each
  model's rows summed event by event on sparse steps), else ``torch.bmm(z_{t−1}, W_recᵀ)`` per step.
- **Readout** ``y^m_t = κ y^m_{t−1} + W_out^m z^m_t + b^m``: one ``torch.baddbmm``, then the leaky
  integration over ``(T, M·B, n_out)``.

It computes what a loop over the models computes (``tests/test_population.py``: values and gradients,
to rounding, as products of other shapes sum in other orders), with one graph node per operation for
all models instead of M, and it runs the fused kernel where ``vmap`` must take the step path.
Supported: layers of plain :class:`~neuroplastic.synapses.Dense` input synapses, no or
:class:`~neuroplastic.synapses.Recurrent` recurrent synapses, binary spikes, noiseless neurons whose
parameters are numbers (the same in every model); no dropout while training.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.func import stack_module_state
from torch.nn.utils.parametrize import type_before_parametrizations

from neuroplastic.fused import lif_sequence, linear_lif_sequence
from neuroplastic.fused.recurrent import alif_recurrent_sequence
from neuroplastic.networks import paths
from neuroplastic.networks.layers import SpikingLayer
from neuroplastic.networks.network import SpikingNetwork
from neuroplastic.neurons.base import exp_decay
from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.spikes import Rescaled
from neuroplastic.synapses import Recurrent

__all__ = ["PopulationOutput", "stack_networks", "population_forward"]


class PopulationOutput(NamedTuple):
    readout: torch.Tensor  # (M, T, B, n_out)
    spikes: tuple[torch.Tensor, ...]  # one (M, T, B, n) per hidden layer


def stack_networks(networks) -> dict[str, torch.Tensor]:
    """The parameters of ``networks`` (of one architecture) stacked along a new first dimension,
    named as in ``networks[0].named_parameters()``: new leaves, which require gradients where the
    networks' parameters do (``torch.func.stack_module_state``)."""
    networks = list(networks)
    if not networks or not all(isinstance(network, SpikingNetwork) for network in networks):
        raise ValueError("stack_networks takes one or more SpikingNetworks")
    for network in networks:
        check_batchable(network)
    parameters, _ = stack_module_state(networks)
    return parameters


def check_batchable(network: SpikingNetwork) -> None:
    """Refuses, with the reason, a network that :func:`population_forward` cannot run."""
    if not isinstance(network, SpikingNetwork):
        raise ValueError(f"a population is made of SpikingNetworks, got {type(network).__name__}")
    if network.training and network.dropout.p > 0:
        raise ValueError("dropout while training draws other masks than a loop over the models would; "
                         "call network.eval() or build it without dropout")
    for index, layer in enumerate(network.layers):
        neuron = layer.neuron
        reasons = [
            (not paths.plain(layer.synapses), "its input synapses are not a plain Dense"),
            (layer.recurrent is not None and type_before_parametrizations(layer.recurrent) is not Recurrent,
             "its recurrent synapses are not a Recurrent"),
            (layer.payload is not None, "its spikes carry a payload"),
            (neuron.noisy, "its neurons are noisy"),
            (holds_tensors(neuron), "its neurons' parameters are tensors (they would be stacked too)"),
        ]
        for refused, reason in reasons:
            if refused:
                raise ValueError(f"layer {index} cannot run as a population: {reason}")


def population_forward(network: SpikingNetwork, parameters: dict[str, torch.Tensor], x: torch.Tensor
                       ) -> PopulationOutput:
    """The M networks that ``network``'s architecture takes with the stacked ``parameters`` (name →
    ``(M, …)``, as :func:`stack_networks` gives them; the names of ``network.named_parameters()``),
    over the time-first sequence ``x``: ``(T, B, n_in)`` read by every model, or ``(M, T, B, n_in)``
    one per model. Equal to ``torch.func.functional_call(network, parameters[m], (x,))`` for each m."""
    check_batchable(network)
    names = {name for name, _ in network.named_parameters()}
    if set(parameters) != names:
        raise ValueError(f"parameters must be exactly the network's, {sorted(names)}; got {sorted(parameters)}")
    models = {tensor.shape[0] if tensor.dim() else None for tensor in parameters.values()}
    if len(models) != 1 or None in models:
        raise ValueError("every stacked parameter needs the same leading model dimension M")
    (models,) = models
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[0] != models):
        raise ValueError(f"x must be (T, B, n_in) or ({models}, T, B, n_in), got {tuple(getattr(x, 'shape', ()))}")
    spikes = []
    for index, layer in enumerate(network.layers):
        prefix = f"layers.{index}."
        recurrent = None
        if layer.recurrent is not None:
            recurrent = _parametrized(layer.recurrent, parameters, prefix + "recurrent.")
        bias = parameters.get(prefix + "synapses.bias")
        x = _layer(layer, x, parameters[prefix + "synapses.weight"], bias, recurrent)
        spikes.append(x)
    readout = network.readout
    weight, bias = parameters["readout.synapses.weight"], parameters.get("readout.synapses.bias")
    currents = _batched_linear(x, weight, bias)  # (M, T, B, n_out)
    models, steps, batch, outputs = currents.shape
    time_first = currents.transpose(0, 1).reshape(steps, models * batch, outputs)
    y = leaky_integrate(time_first, readout.decay).view(steps, models, batch, outputs).transpose(0, 1)
    return PopulationOutput(y, tuple(spikes))


def _parametrized(module, parameters, prefix):
    """The recurrent weight the module computes from the stacked trained tensor (its parametrizations,
    such as the zero diagonal, applied to all the models at once)."""
    if prefix + "weight" in parameters:
        return parameters[prefix + "weight"]
    weight = parameters[prefix + "parametrizations.weight.original"]
    for parametrization in module.parametrizations.weight:
        weight = parametrization(weight)
    return weight


def _layer(layer: SpikingLayer, x, weight, bias, recurrent):
    """Spikes ``(M, T, B, N)`` of one layer for all the models."""
    models, size = weight.shape[0], weight.shape[1]
    neuron = layer.neuron_parameters.model(validate=True)
    # the fused LIF recurrence of a feed-forward layer (a recurrent one: the recurrent kernel, below)
    fused = recurrent is None and paths.runs_fused(layer.path, paths.why_not_fused(neuron, None), x, weight)
    options = _fused_options(neuron, layer.dt) if fused else None
    if fused and x.dim() == 3:  # one wide layer of M·N neurons
        wide_bias = None if bias is None else bias.reshape(-1)
        spikes, _ = linear_lif_sequence(x, weight.reshape(models * size, -1), wide_bias, **options)
        steps, batch = x.shape[:2]
        return spikes.view(steps, batch, models, size).permute(2, 0, 1, 3)
    currents = _batched_linear(x, weight, bias)  # (M, T, B, N)
    steps, batch = currents.shape[1:3]
    if fused:  # the models folded into the batch of the fused recurrence
        time_first = currents.transpose(0, 1).reshape(steps, models * batch, size)
        spikes, _ = lif_sequence(time_first, **options)
        return spikes.view(steps, models, batch, size).transpose(0, 1)
    if recurrent is not None and paths.runs_fused(layer.path, paths.why_not_fused(neuron, layer.recurrent),
                                                  currents, recurrent):  # every model's in one fused pass
        time_first = currents.transpose(0, 1).reshape(steps, models * batch, size)
        start = neuron.init_state((models * batch, size), dtype=currents.dtype, device=currents.device)
        spikes, _ = alif_recurrent_sequence(time_first, recurrent, neuron, layer.dt, start)
        return spikes.view(steps, models, batch, size).transpose(0, 1)
    state = neuron.init_state((models, batch, size), dtype=currents.dtype, device=currents.device)
    transposed = None if recurrent is None else recurrent.transpose(1, 2)
    z, outputs = torch.zeros_like(currents[:, 0]), []
    for current in currents.unbind(1):
        if transposed is not None:
            current = current + torch.bmm(z, transposed)
        z, state = neuron.step(state, current, layer.dt)
        outputs.append(z)
    return torch.stack(outputs, 1)


def _fused_options(neuron, dt):
    """The fused operation's arguments for the discrete LIF ``neuron`` (as ``SpikingLayer``'s fused path)."""
    return dict(beta=exp_decay(dt, neuron.tau_m), threshold=neuron.v_th,
                surrogate=Rescaled(neuron.surrogate, neuron.v_th), detach_reset=neuron.reset.detach)


def _batched_linear(x, weight, bias):
    """``x^m W^mᵀ + b^m`` for every model m: ``(M, T, B, n_out)`` from ``x`` ``(T, B, n_in)`` (shared) or
    ``(M, T, B, n_in)``, ``weight`` ``(M, n_out, n_in)``, ``bias`` ``(M, n_out)`` or ``None``."""
    models, outputs = weight.shape[:2]
    shape = x.shape[-3:-1]
    rows = x.reshape(1 if x.dim() == 3 else models, -1, x.shape[-1]).expand(models, -1, -1)
    if bias is None:
        product = torch.bmm(rows, weight.transpose(1, 2))
    else:
        product = torch.baddbmm(bias.unsqueeze(1), rows, weight.transpose(1, 2))
    return product.view(models, *shape, outputs)
