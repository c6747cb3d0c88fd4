"""Many independent networks of one shape run as one: a population for evolution, the tasks of a meta-batch.

``M`` :class:`~neuroplastic.networks.SpikingNetwork` s of the same architecture differ only in their
synaptic weights and biases. Stacked (:func:`stack_networks`, the layout of
``torch.func.stack_module_state``: every parameter gains a leading model dimension, a weight
``(M, n_out, n_in)``), each layer runs once for all of them (:func:`population_forward`):

- **Input currents** ``I^m_t = W^m x^m_t``: one grouped product over the models
  (:func:`~neuroplastic.fused.event_linear.grouped_linear`: event by event where no gradient is asked
  for, else ``torch.bmm`` of ``(M, T·B, n_in) × (M, n_in, n_out)``). Where every model reads the same
  input ``x`` (the first layer, unless each model has its own) the M weight matrices are one wide layer
  ``(M·n_out, n_in)``: its currents ``x Wᵀ`` are all the models' at once, event by event where ``x`` is
  spikes (the fused operation of :mod:`neuroplastic.fused`, also fusing the LIF recurrence, where the
  layer can run it).
- **Neurons** act elementwise, so the models fold into the batch: a state ``(M, B, N)`` steps as a
  batch of ``M·B``, or the fused recurrence runs over ``(T, M·B, N)``.
- **Recurrence** ``+ W_rec^m z^m_{t−1}``: one batched product per step over ``(M, B, N)`` — for
  recurrent ALIF/LIF layers inside the fused recurrent kernel
  (:func:`~neuroplastic.fused.recurrent.alif_recurrent_sequence` with the stacked weights: each
  model's rows summed event by event on sparse steps), else ``torch.bmm(z_{t−1}, W_recᵀ)`` per step.
- **Readout** ``y^m_t = κ y^m_{t−1} + W_out^m z^m_t + b^m``: one grouped product (event by event where no
  graph is kept, else ``torch.baddbmm``), then the leaky integration over ``(T, M·B, n_out)``.
- **Readouts only** (``keep_spikes=False``, no graph): a network of one layer on the fused path reading
  spikes (feed-forward LIF, or recurrent ALIF/LIF) runs in one kernel that writes nothing but the readouts
  (:mod:`~neuroplastic.fused.population_lif`); any other runs its models in chunks (:func:`_chunk`).

It computes what a loop over the models computes (``tests/test_population.py``: values and gradients,
to rounding, as products of other shapes sum in other orders), with one graph node per operation for
all models instead of M, and it runs the fused kernel where ``vmap`` must take the step path.
Supported: layers of plain :class:`~neuroplastic.synapses.Dense` input synapses, no or
:class:`~neuroplastic.synapses.Recurrent` recurrent synapses, binary spikes, noiseless neurons whose
parameters are numbers (the same in every model); no dropout while training.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.func import stack_module_state
from torch.nn.utils.parametrize import type_before_parametrizations

from neuroplastic.fused import lif_sequence, linear_lif_sequence, workspace
from neuroplastic.fused.event_linear import grouped_linear
from neuroplastic.fused.population_lif import alif_readouts, lif_readouts
from neuroplastic.fused.recurrent import alif_recurrent_sequence
from neuroplastic.networks import paths
from neuroplastic.networks.layers import SpikingLayer, fused_lif_options
from neuroplastic.networks.network import SpikingNetwork
from neuroplastic.neurons.parameters import holds_tensors
from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.synapses import Recurrent

__all__ = ["PopulationOutput", "stack_networks", "population_forward"]

CHUNK_BYTES = 24 << 20  # a layer's spikes per chunk of models where they are not kept (_chunk)


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


def population_forward(network: SpikingNetwork, parameters: dict[str, torch.Tensor], x: torch.Tensor, *,
                       keep_spikes: bool = True) -> PopulationOutput:
    """The M networks that ``network``'s architecture takes with the stacked ``parameters`` (name →
    ``(M, …)``, as :func:`stack_networks` gives them; the names of ``network.named_parameters()``),
    over the time-first sequence ``x``: ``(T, B, n_in)`` read by every model, or ``(M, T, B, n_in)``
    one per model. Equal to ``torch.func.functional_call(network, parameters[m], (x,))`` for each m.

    ``keep_spikes=False`` returns the readouts alone (``spikes`` empty), as a loop that keeps each
    model's readout does: the models then run in chunks whose memory is reused from one chunk to the
    next (:func:`_chunk`)."""
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
    # with no graph anywhere in the pass, memory read for the last time goes back to the workspace
    reuse = not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, *parameters.values())))
    readout = None if keep_spikes or not reuse else _readouts_in_one_kernel(network, parameters, x)
    if readout is not None:
        return PopulationOutput(readout.permute(2, 0, 1, 3), ())
    chunk = models if keep_spikes else _chunk(network, x)
    weight, bias = parameters["readout.synapses.weight"], parameters.get("readout.synapses.bias")
    currents, layout, spikes = None, None, ()
    for start in range(0, models, chunk):
        part = {name: tensor[start:start + chunk] for name, tensor in parameters.items()}
        spikes = _hidden(network, part, x if x.dim() == 3 else x[start:start + chunk], reuse, keep_spikes)
        last = spikes[-1]
        if chunk >= models:  # one pass: the product's own memory
            currents = _grouped_currents(last, weight, bias)
        else:  # each chunk's currents where they join the others, laid out as the first chunk's
            if currents is None:
                currents, layout = _currents_buffer(last, models, weight.shape[1], reuse)
            _grouped_currents(last, weight[start:start + chunk], None if bias is None else bias[start:start + chunk],
                              out=currents[start:start + chunk], layout=layout)
        if reuse and not keep_spikes:
            _give_back(last)
    time_first, back = _time_first(currents, layout)
    readout = leaky_integrate(time_first, network.readout.decay).permute(back)
    if reuse:
        _give_back(currents)
    return PopulationOutput(readout, tuple(spikes) if keep_spikes else ())


def _readouts_in_one_kernel(network, parameters, x):
    """The readouts ``(T, B, M, n_out)`` of a network of one layer on the fused path — feed-forward LIF or
    recurrent ALIF — computed per model and sample with nothing else written
    (:mod:`~neuroplastic.fused.population_lif`); None where that does not apply."""
    if len(network.layers) != 1:
        return None
    layer, weight = network.layers[0], parameters["layers.0.synapses.weight"]
    neuron = layer.neuron_parameters.model(validate=True)
    bias = parameters.get("layers.0.synapses.bias")
    readout = dict(readout_weight=parameters["readout.synapses.weight"],
                   readout_bias=parameters.get("readout.synapses.bias"), decay=network.readout.decay)
    if layer.recurrent is not None:
        recurrent = _parametrized(layer.recurrent, parameters, "layers.0.recurrent.")
        if not paths.runs_fused(layer.path, paths.why_not_fused(neuron, layer.recurrent), x, recurrent):
            return None  # as _layer: the input currents by the grouped product, then the recurrent kernel
        ran = alif_readouts(x, weight, bias, recurrent, neuron, layer.dt, bias_first=True, **readout)
        return None if ran is None else ran[0]
    if not paths.runs_fused(layer.path, paths.why_not_fused(neuron, None), x, weight):
        return None
    options = fused_lif_options(neuron, layer.dt)
    ran = lif_readouts(x, weight, bias, beta=float(options["beta"]), threshold=float(options["threshold"]), **readout)
    return None if ran is None else ran[0]


def _chunk(network, x) -> int:
    """Models per pass where the spikes are not kept: a layer's spikes within :data:`CHUNK_BYTES`. The
    chunks' buffers go back to the workspace and the next chunk's are taken from it; the memory of
    a whole population's spikes would instead be fresh pages at every pass (the C heap maps blocks
    beyond 32 MB anew each time: 52 MB for 64 × 64 neurons × 32 samples × 100 steps, ~0.4 ms per MB
    to fault in here). The chunks' readout currents are written where they are joined
    (:func:`_currents_buffer`), and filtered once."""
    steps, batch = x.shape[-3:-1]
    widest = max(layer.synapses.weight.shape[0] for layer in network.layers)
    return max(1, CHUNK_BYTES // max(1, steps * batch * widest * x.element_size()))


def _hidden(network, parameters, x, reuse: bool, keep_spikes: bool) -> list[torch.Tensor]:
    """Every hidden layer's spikes ``(M, T, B, N)`` for the models of ``parameters``. ``reuse`` (no graph
    anywhere in the pass) and not ``keep_spikes``: a layer's spikes go to the fused kernels' workspace
    once the next layer has read them (:func:`_give_back`), and only the last layer's are returned."""
    spikes = []
    for index, layer in enumerate(network.layers):
        prefix = f"layers.{index}."
        recurrent = None
        if layer.recurrent is not None:
            recurrent = _parametrized(layer.recurrent, parameters, prefix + "recurrent.")
        bias = parameters.get(prefix + "synapses.bias")
        out = _layer(layer, x, parameters[prefix + "synapses.weight"], bias, recurrent, reuse)
        if reuse and not keep_spikes and index:
            _give_back(x)
            spikes.pop()
        x = out
        spikes.append(x)
    return spikes


def _currents_buffer(last, models: int, outputs: int, reuse: bool):
    """Memory for ``models`` models' currents ``(M, T, B, n_out)`` read from ``last``, a layer's spikes
    ``(M_c, T, B, n)``, laid out in time as :func:`_grouped_currents` gives them: the chunks' slices
    along the models are each one product's ``out``. From the workspace where no graph is kept
    (``reuse``); and its layout (:func:`_layout`)."""
    back = _layout(last)
    steps, batch = last.shape[-3:-1]
    shape = [models, steps, batch, outputs]
    time_first_shape = tuple(shape[i] for i in _time_first_order(back))
    memory = workspace.take(time_first_shape, last) if reuse else last.new_empty(time_first_shape)
    return memory.permute(back), back


def _parametrized(module, parameters, prefix):
    """The recurrent weight the module computes from the stacked trained tensor (its parametrizations,
    such as the zero diagonal, applied to all the models at once)."""
    if prefix + "weight" in parameters:
        return parameters[prefix + "weight"]
    weight = parameters[prefix + "parametrizations.weight.original"]
    for parametrization in module.parametrizations.weight:
        weight = parametrization(weight)
    return weight


def _layer(layer: SpikingLayer, x, weight, bias, recurrent, reuse: bool):
    """Spikes ``(M, T, B, N)`` of one layer for all the models (a view of time-first memory); ``reuse``:
    the currents go back to the workspace once read (no graph holds them)."""
    models, size = weight.shape[0], weight.shape[1]
    neuron = layer.neuron_parameters.model(validate=True)
    # the fused LIF recurrence of a feed-forward layer (a recurrent one: the recurrent kernel, below)
    fused = recurrent is None and paths.runs_fused(layer.path, paths.why_not_fused(neuron, None), x, weight)
    options = fused_lif_options(neuron, layer.dt) if fused else None
    if fused and x.dim() == 3:  # one wide layer of M·N neurons
        wide_bias = None if bias is None else bias.reshape(-1)
        spikes, _ = linear_lif_sequence(x, weight.reshape(models * size, -1), wide_bias, **options)
        steps, batch = x.shape[:2]
        return spikes.view(steps, batch, models, size).permute(2, 0, 1, 3)
    currents = _grouped_currents(x, weight, bias)  # (M, T, B, N)
    steps, batch = currents.shape[1:3]
    if fused:  # the neurons act elementwise: the models fold into the batch of the fused recurrence
        time_first, back = _time_first(currents)
        spikes, _ = lif_sequence(time_first.reshape(steps, -1, size), **options)
        if reuse:
            _give_back(currents)
        return spikes.view(time_first.shape).permute(back)
    if recurrent is not None and paths.runs_fused(layer.path, paths.why_not_fused(neuron, layer.recurrent),
                                                  currents, recurrent):  # every model's in one fused pass
        time_first = currents.transpose(0, 1).reshape(steps, models * batch, size)  # model-major rows
        start = neuron.init_state((models * batch, size), dtype=currents.dtype, device=currents.device)
        spikes, _ = alif_recurrent_sequence(time_first, recurrent, neuron, layer.dt, start)
        if reuse:
            _give_back(currents)
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


def _give_back(values):
    """The memory of ``values`` — a view of a tensor that only this pass holds (currents from
    :func:`_grouped_currents`, a layer's spikes), read for the last time in a pass with no graph
    anywhere (a graph of a later layer may have saved an earlier layer's spikes) — to the fused
    kernels' workspace: the next layer, chunk or pass takes it instead of fresh pages (~0.4 ms per MB
    to fault in here). CPU memory only: elsewhere the allocator already reuses it."""
    if values._base is not None and values.device.type == "cpu":
        workspace.give(values._base)


def _layout(x):
    """The permutation that gives ``x`` ``(M, T, B, n)`` back from its time-first memory — ``(T, B, M, n)``
    (a wide layer's) or ``(T, M, B, n)`` (the models folded into the batch; also where ``x`` is neither)."""
    for order, back in (((1, 2, 0, 3), (2, 0, 1, 3)), ((1, 0, 2, 3), (1, 0, 2, 3))):
        if x.permute(order).is_contiguous():
            return back
    return (1, 0, 2, 3)


def _time_first_order(back):
    """The permutation of ``(M, T, B, n)`` into its time-first memory: the inverse of ``back``."""
    return tuple(back.index(i) for i in range(4))


def _time_first(x, layout=None):
    """``x`` ``(M, T, B, n)`` as contiguous time-first memory (``layout``, else :func:`_layout`'s): a view
    where ``x`` is one, else a copy — and the permutation that gives the ``(M, T, B, n)`` view back. (A
    chunk of one model is laid out both ways: ``layout`` names the way of the memory it joins.)"""
    back = layout or _layout(x)
    return x.permute(_time_first_order(back)).contiguous(), back


def _grouped_currents(x, weight, bias, out=None, layout=None):
    """``x^m W^mᵀ + b^m`` for every model m, ``(M, T, B, n_out)``, from ``x`` ``(T, B, n_in)`` (read by
    every model: the currents come out with the models folded into the batch) or ``(M, T, B, n_in)``
    (in its time-first memory, the currents laid out the same), ``weight`` ``(M, n_out, n_in)``, ``bias``
    ``(M, n_out)`` or ``None``: :func:`~neuroplastic.fused.event_linear.grouped_linear`. ``out`` (with a
    layer's spikes ``x``): memory laid out so (a slice along the models of :func:`_currents_buffer`'s,
    whose ``layout`` it gives) to write them into."""
    if x.dim() == 3:  # the first layer's input, read by every model
        steps, batch, inputs = x.shape
        return grouped_linear(x.reshape(steps, 1, batch, inputs), weight, bias).transpose(0, 1)
    time_first, back = _time_first(x, layout)
    axis = back[0]  # where the models are in the time-first memory
    shape = time_first.shape
    grouped = (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:-1]))
    if out is not None:
        out = out.permute(_time_first_order(back)).view(*grouped, weight.shape[1])
    currents = grouped_linear(time_first.reshape(*grouped, shape[-1]), weight, bias, out=out)
    return currents.view(*shape[:-1], weight.shape[1]).permute(back)
