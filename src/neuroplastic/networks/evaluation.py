"""An evaluation pass that writes nothing but the readouts and each hidden neuron's spike count.

Evaluation needs the readouts (the metrics) and how many spikes each neuron sent (NeuroBench's
activation sparsity and synaptic operations, the events per sample), not every spike: a network's
forward pass writes its input currents and its spikes, ``(T, B, N)`` each, to memory and reads them
back (for cue's test batch of 256 samples × 2250 steps, 230 MB each, in fresh pages every pass).
:func:`counted_pass` runs a network of one layer on the fused path — recurrent ALIF or LIF (e-prop's
LSNN cell), or feed-forward LIF — fed spikes in one kernel per sample instead, with its state in cache
(:func:`~neuroplastic.fused.population_lif.alif_readouts` and
:func:`~neuroplastic.fused.population_lif.lif_readouts`, a population of one): the same operations in
the same order as the layer's kernels — the input's events summed as the layer's event-driven currents
sum them, the recurrent product event by event, the neurons' update — so the spikes are the same;
only the readout's product sums in another order than the forward pass's matrix product, and the
readouts agree to rounding (``tests/test_evaluation_pass.py``).
:meth:`Trainer.evaluate <neuroplastic.training.trainer.Trainer.evaluate>` takes it wherever it
applies and the network's forward pass elsewhere, through :func:`counted_passes`: the checks of the
network and the kernel's padded weights made once for a split rather than once a batch (digits' test
split, two batches: 2.6–2.8 → 2.3 ms, of which the kernel 1.55).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import torch

from neuroplastic.fused.population_lif import kernel_weights, layer_events, run_alif, run_lif
from neuroplastic.networks import paths
from neuroplastic.networks.layers import LeakyReadout, SpikingLayer, as_weights_dtype, fused_lif_options
from neuroplastic.networks.network import SpikingNetwork
from neuroplastic.networks.population import check_batchable

__all__ = ["CountedPass", "counted_pass", "counted_passes"]


class CountedPass(NamedTuple):
    readout: torch.Tensor  # (T, B, n_out)
    spike_counts: tuple[torch.Tensor, ...]  # per hidden layer (B, N): each neuron's spikes over the pass
    last_spikes: tuple[torch.Tensor, ...]  # per hidden layer (B, N): its spikes of the last step
    input_counts: torch.Tensor | None = None  # (n_in,): each input's spikes over the batch (None: graded)


@torch.no_grad()
def counted_pass(network, x: torch.Tensor) -> CountedPass | None:
    """``network``'s readout for ``x`` ``(T, B, n_in)`` from rest, with each hidden neuron's spike counts,
    computed in one kernel; None where that does not apply — any network but a
    :class:`~neuroplastic.networks.SpikingNetwork` of one layer on the fused path (recurrent ALIF or
    LIF, feed-forward LIF) and a :class:`~neuroplastic.networks.LeakyReadout`, none of them subclassed or hooked, with
    plain synapses, binary spikes and noiseless neurons, in ``eval()`` (or without dropout), fed spikes
    (or graded input) on CPU outside autocast — and its forward pass is the one to run."""
    passes = counted_passes(network)
    return None if passes is None else passes(x)


@torch.no_grad()
def counted_passes(network) -> Callable[[torch.Tensor], CountedPass | None] | None:
    """:func:`counted_pass` for the batches of one evaluation: the network's checks and the kernel's
    padded weights (:func:`~neuroplastic.fused.population_lif.kernel_weights`) made once, and a function
    of each batch ``x`` that gives its :class:`CountedPass`, or None where the kernel does not take that
    batch. None where it applies to no batch of ``network``. The network is read now — its weights,
    mode, hooks: a change afterwards goes unseen by the function (build another)."""
    if (type(network) is not SpikingNetwork or len(network.layers) != 1
            or (network.training and network.dropout.p > 0) or type(network.layers[0]) is not SpikingLayer
            or type(network.readout) is not LeakyReadout or not paths.plain(network.readout.synapses)
            or any(paths.hooked(module) for module in (network, network.layers[0], network.readout))):
        return None
    try:
        check_batchable(network)
    except ValueError:
        return None
    layer, readout = network.layers[0], network.readout.synapses
    neuron = layer.neuron_parameters.model(validate=True)
    recurrent = None if layer.recurrent is None else layer.recurrent.weight
    # off the fused path (path="fused" asked for: the forward pass says why it cannot), or on the step path
    # now: no kernel built, no weights padded
    if paths.why_not_fused(neuron, layer.recurrent) is not None or not paths.runs_fused(layer.path, None):
        return None
    tensors = [layer.synapses.weight, *([] if recurrent is None else [recurrent])]

    def one(tensor):  # a population of one; a bias may be a plain tensor
        return None if tensor is None else tensor.detach()[None]
    weights = kernel_weights(one(layer.synapses.weight), one(layer.synapses.bias), one(readout.weight),
                             one(readout.bias), one(recurrent))
    if weights is None:
        return None
    decay = network.readout.decay
    if recurrent is None:  # the feed-forward layer's fused LIF recurrence, its currents summed by spike_sum
        options = fused_lif_options(neuron, layer.dt)
        beta, threshold = float(options["beta"]), float(options["threshold"])
        run = partial(run_lif, weights=weights, beta=beta, threshold=threshold, decay=decay, neuron_counts=True)
    else:
        run = partial(run_alif, weights=weights, neuron=neuron, dt=layer.dt, decay=decay, bias_first=False,
                      neuron_counts=True)

    @torch.no_grad()
    def counted(x: torch.Tensor) -> CountedPass | None:
        if torch.is_autocast_enabled("cpu"):
            return None
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise ValueError(f"network input must be (T, B, n_inputs), got shape {tuple(getattr(x, 'shape', ()))}")
        x = as_weights_dtype("network input", x, layer.synapses)
        if not paths.runs_fused(layer.path, None, x, *tensors):
            return None
        events = layer_events(x, weights)
        ran = None if events is None else run(x, events=events)
        if ran is None:
            return None
        readouts, counts = ran
        # each input's spikes, where they are spikes (the index lists no values: every entry 0 or 1)
        inputs = None if events.values.numel() else torch.bincount(events.columns, minlength=x.shape[-1])
        return CountedPass(readouts[:, :, 0], (counts[:, 0, 0],), (counts[:, 0, 1],), inputs)
    return counted
