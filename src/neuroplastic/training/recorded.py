"""What the online rules read of a sequence, and its recording by the layers' fused operations.

A :class:`Recording` holds what :class:`~neuroplastic.training.online.OnlineLearner` hands the rules of
one step, or stacked, of a whole sequence: each layer's :class:`~neuroplastic.rules.base.StepInfo`
(presynaptic activity, spikes, pseudo-derivatives ``ψ``), the readout's input and output, and the
local readouts' outputs.

:func:`fused_recording` records a whole sequence in one pass per layer instead of the network's
one-step ``transition`` T times: by the recurrent ALIF kernel, which computes ``ψ`` at every step
(:func:`~neuroplastic.fused.recurrent.recorded_sequence`; without a recurrent weight for a
feed-forward layer), or, for a feed-forward LIF with a ``τ_m`` per neuron, by the LIF kernel keeping
every voltage (``ψ`` from them). The same spikes and ``ψ`` as the steps (``tests/test_eprop.py``
holds the rules' estimates from both to 1e-12); the readout's output, by its leaky integration over
the sequence, to rounding. It applies without gradients (the whole-sequence mode; a meta-learning
loop that differentiates the estimate takes the steps), on the C++ backend
(:func:`~neuroplastic.fused.backend`: CPU float32/float64), where every layer has
:class:`~neuroplastic.synapses.Dense` input synapses (no subclass) and runs a fused operation (no
``torch.func`` transform, binary spikes) and no local readout (DECOLLE's) needs the steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.fused import extension, spike_linear
from neuroplastic.fused.lif import _rows
from neuroplastic.fused.recurrent import recorded_sequence, why_not
from neuroplastic.networks import paths
from neuroplastic.neurons.alif import ALIFState
from neuroplastic.neurons.base import exp_decay
from neuroplastic.rules.base import StepInfo
from neuroplastic.synapses import Dense

__all__ = ["Recording", "fused_recording"]


@dataclass
class Recording:
    """What one step (or, stacked, a whole sequence) hands the rules."""

    infos: list  # one StepInfo per layer
    readout_input: torch.Tensor
    readout: torch.Tensor
    head_outputs: list


def fused_recording(network, inputs: torch.Tensor) -> Recording | None:
    """The whole sequence ``inputs`` ``(T, B, n_in)`` from rest, recorded by the fused operations; ``None``
    where a layer cannot run one (module docstring)."""
    kernel_dtypes = (torch.float32, torch.float64)
    if (torch.is_grad_enabled() or inputs.device.type != "cpu" or inputs.dtype not in kernel_dtypes
            or extension.backend(inputs) != "cpp" or any(
                type(layer.synapses) is not Dense or layer.payload is not None
                or not paths.runs_fused(layer.path, layer.why_not_fused, inputs, *layer.parameters(), *layer.buffers())
                for layer in network.layers)):
        return None
    x, infos = inputs, []
    for layer in network.layers:
        neuron, (steps, batch) = layer.neuron_parameters.model(validate=True), x.shape[:2]
        start = neuron.init_state((batch, layer.size), dtype=x.dtype, device=x.device)
        # event by event as the layer's own fused path, unless hooks ask for the module's call
        plain = paths.plain(layer.synapses)
        currents = spike_linear(x, layer.synapses.weight, layer.synapses.bias) if plain else layer.synapses(x)
        if layer.recurrent is None and why_not(neuron) is not None:  # per-neuron τ_m: ψ from the voltages
            spikes, psi = _feed_forward(currents, neuron, layer.dt, start)
            pre = x
        elif layer.recurrent is None:  # the recurrent kernel without recurrence: ψ inside its loop
            spikes, psi = recorded_sequence(currents, None, neuron, layer.dt, start)
            pre = x
        else:
            spikes, psi = recorded_sequence(currents, layer.recurrent.weight, neuron, layer.dt, start)
            pre = torch.cat([x, torch.cat([start.z[None], spikes[:-1]])], -1)
        infos.append(StepInfo(0, steps, layer.dt, pre, spikes, None, psi, neuron))
        x = spikes
    return Recording(infos, x, network.readout(x), [])


def _feed_forward(currents, neuron, dt, start):
    """Spikes and ``ψ`` of a feed-forward LIF layer (``beta = 0``, no refractoriness): the fused
    recurrence keeping every voltage."""
    beta = _rows(exp_decay(dt, neuron.tau_m), start.v)
    threshold = float(neuron.v_th)
    spikes, voltages = extension.forward(currents, beta, threshold, start.v, start.z, 1)
    return spikes, neuron.pseudo_derivative(start, ALIFState(voltages, 0.0, spikes, None), dt)
