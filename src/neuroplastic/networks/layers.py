"""Layers of spiking neurons and a leaky-integrator readout, over one step or a whole sequence.

A :class:`SpikingLayer` is a population of any neuron model fed by synapses ``I_t = W x_t`` (any
module of the synapse protocol, :mod:`neuroplastic.synapses.protocol`; dense by default) and, if
recurrent, by its own spikes of the previous step through recurrent synapses ``+ W_rec z_{t−1}``
(no self-connections). ``step`` is the readable truth; ``forward`` runs a whole time-first sequence
and is tested equal to it: the input currents of all steps come from the synapses at once (one matrix
product), then the neurons step through time. :mod:`neuroplastic.networks.paths` says when a
feed-forward layer of plain LIF neurons, or a recurrent layer of e-prop's ALIF, runs the fused
operation of :mod:`neuroplastic.fused` instead (``path=``), an equivalent form tested equal to it.

With a ``payload`` (:mod:`neuroplastic.spikes`) the layer emits graded spikes ``s = z · c``: what the
next layer, the recurrent synapses and the readout receive; the neurons reset on ``z`` as before.

The neuron model's tensor parameters (per-neuron values, ``nn.Parameter`` s to learn) belong to the
layer's ``neuron_parameters`` module; ``layer.neuron`` is the model with their current values, which
``init_state`` and ``forward`` check again once per run (not ``step``, at every time step).

:class:`LeakyReadout` is e-prop's output (Bellec et al. 2020): ``y_t = κ y_{t−1} + W_out z_t + b``,
``κ = exp(−dt/τ_out)``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from neuroplastic.fused import LeakyState, lif_sequence, linear_lif_sequence, spike_linear
from neuroplastic.fused.recurrent import alif_recurrent_sequence
from neuroplastic.networks import paths
from neuroplastic.neurons import NeuronModel
from neuroplastic.neurons.alif import ALIFState
from neuroplastic.neurons.base import exp_decay
from neuroplastic.neurons.parameters import ModelParameters
from neuroplastic.sim.filters import leaky_integrate
from neuroplastic.sim.loop import noise_at, real_valued
from neuroplastic.spikes import Payload, Rescaled
from neuroplastic.synapses import Dense, Recurrent
from neuroplastic.validation import all_finite, require_finite_tensor, require_positive

__all__ = ["SpikingLayer", "LayerState", "LeakyReadout"]


class LayerState(NamedTuple):
    neuron: tuple  # the neuron model's state
    z: torch.Tensor  # spikes of the previous step (B, N); graded: their payloads
    synapses: tuple = ()  # the input synapses' own state (() for synapses without)
    recurrent: tuple = ()  # the recurrent synapses' own state


class SpikingLayer(nn.Module):
    """``n_in → n_out`` spiking neurons of model ``neuron`` advancing by ``dt`` ms per step.

    ``synapses``: the input synapses (default ``Dense(n_in, n_out, scale=scale)``); ``recurrent``:
    ``True`` for ``Recurrent(n_out, scale=scale)``, or recurrent synapses of one's own (e.g.
    ``DaleRecurrent``); ``path``: ``"auto"``, ``"step"`` or ``"fused"`` (:mod:`~neuroplastic.networks.paths`);
    ``payload``: what each spike carries (a :class:`~neuroplastic.spikes.Payload`; ``None``: binary).
    """

    def __init__(self, n_in: int, n_out: int, neuron: NeuronModel, *, dt: float = 1.0, recurrent=False,
                 scale: float = 1.0, generator: torch.Generator | None = None, synapses: nn.Module | None = None,
                 path: str = "auto", payload: Payload | None = None):
        super().__init__()
        if not isinstance(neuron, NeuronModel):
            raise ValueError(f"neuron must be a neuroplastic neuron model, got {neuron!r}")
        _check_parameter_shapes(neuron, n_out)
        self.neuron_parameters = ModelParameters(neuron)
        self.dt = require_positive("dt", dt)
        self.size = n_out
        self.path = paths.check_path(path)
        self.synapses = Dense(n_in, n_out, scale=scale, generator=generator) if synapses is None else synapses
        if isinstance(recurrent, bool):
            recurrent = Recurrent(n_out, scale=scale, generator=generator) if recurrent else None
        self.recurrent = recurrent
        self.payload = _checked_payload(payload, neuron, n_out)
        if path == "fused" and self.why_not_fused is not None:
            raise ValueError(f"path='fused' cannot run this layer: {self.why_not_fused}")

    @property
    def neuron(self) -> NeuronModel:
        """The neuron model, with the current values of its tensor parameters."""
        return self.neuron_parameters.model()

    @neuron.setter
    def neuron(self, model: NeuronModel) -> None:
        if not isinstance(model, NeuronModel):
            raise ValueError(f"neuron must be a neuroplastic neuron model, got {model!r}")
        _check_parameter_shapes(model, self.size)
        self.neuron_parameters = ModelParameters(model)

    @property
    def why_not_fused(self) -> str | None:
        """Why the fused operation cannot run this layer, ``None`` where it can."""
        return paths.why_not_fused(self.neuron, self.recurrent, self.payload)

    @property
    def fused(self) -> bool:
        """Whether ``forward`` runs the fused operation (outside ``torch.func`` transforms)."""
        return paths.runs_fused(self.path, self.why_not_fused)

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> LayerState:
        shape = (batch, self.size)
        options = dict(dtype=dtype, device=device)
        recurrent = () if self.recurrent is None else self.recurrent.init_state(batch, **options)
        neuron = self.neuron_parameters.model(validate=True)  # once per run: out-of-range tensors refused
        return LayerState(neuron.init_state(shape, **options), torch.zeros(shape, **options),
                          self.synapses.init_state(batch, **options), recurrent)

    def step(self, state: LayerState, x: torch.Tensor, noise=None) -> tuple[torch.Tensor, LayerState]:
        """One step: ``x`` is ``(B, n_in)``; ``noise`` a standard-normal ``(B, n_out)``, a generator to
        draw it from, or ``None``."""
        neuron = self.neuron
        current, synapse_state = self.synapses.step(state.synapses, x)
        _, s, state = self._integrate(neuron, state, current, synapse_state,
                                      noise_at(noise, None, state.z) if neuron.noisy else None)
        return s, state

    def presynaptic(self, state: LayerState, x: torch.Tensor) -> torch.Tensor:
        """The presynaptic activity that reaches the weights at the step from ``state`` with input ``x``,
        in the order of the layer's weight columns: the input synapses', then the recurrent ones'
        (what plasticity and online rules see as ``StepInfo.pre``; the synapse protocol's
        ``presynaptic``)."""
        pre = self.synapses.presynaptic(state.synapses, x)
        if self.recurrent is None:
            return pre
        return torch.cat([pre, self.recurrent.presynaptic(state.recurrent, state.z)], -1)

    def forward(self, x: torch.Tensor, state: LayerState | None = None, noise=None):
        """A whole sequence: ``x`` is ``(T, B, n_in)``; returns spikes ``(T, B, n_out)`` (graded: their
        payloads) and the state. ``noise``: standard normals ``(T, B, n_out)``, a generator, or ``None``."""
        spikes, _, state = self.forward_events(x, state, noise)
        return spikes, state

    def forward_events(self, x: torch.Tensor, state: LayerState | None = None, noise=None):
        """:meth:`forward`, also returning the binary spikes under the payloads (the events, with their
        surrogate gradients: what firing-rate terms read; the spikes themselves where there is no payload):
        ``(spikes, events, state)``."""
        x = self._checked_input(x)
        if state is None:
            state = self.init_state(x.shape[1], dtype=x.dtype, device=x.device)
        neuron = self.neuron_parameters.model(validate=True)
        reason = paths.why_not_fused(neuron, self.recurrent, self.payload)
        if paths.runs_fused(self.path, reason, x, *self.parameters(), *self.buffers(), *state.neuron):
            return self._forward_fused(neuron, x, state)
        currents, synapse_state = self.synapses.sequence(state.synapses, x)
        outputs, events = [], []
        with parametrize.cached():  # recurrent weights computed once per sequence
            for t, current in enumerate(currents.unbind(0)):
                z, s, state = self._integrate(neuron, state, current, synapse_state,
                                              noise_at(noise, t, state.z) if neuron.noisy else None)
                outputs.append(s)
                events.append(z)
        spikes = torch.stack(outputs)
        _check_settled(neuron, state.neuron, len(outputs), self.dt)
        return spikes, (spikes if self.payload is None else torch.stack(events)), state

    def _checked_input(self, x):
        """A sequence ``(T, B, n_in)`` of finite values (integers and booleans as floats), or a clear error."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[0] == 0:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"layer input must be a sequence (T, B, n_in) with T >= 1, got shape {shape}")
        width = _input_width(self.synapses)
        if width is not None and x.shape[-1] != width:
            raise ValueError(f"layer input has {x.shape[-1]} inputs per sample; the layer's synapses take {width}")
        return require_finite_tensor("layer input", as_weights_dtype("layer input", x, self.synapses))

    def _integrate(self, neuron, state, current, synapse_state, noise):
        """The rest of a step once the input synapses gave ``current``: recurrence, then the neurons."""
        recurrent_state = state.recurrent
        if self.recurrent is not None:
            feedback, recurrent_state = self.recurrent.step(state.recurrent, state.z)
            current = current + feedback
        z, neuron_state = neuron.step(state.neuron, current, self.dt, noise)
        s = z
        if self.payload is not None:
            s = self.payload(z, neuron.crossing_potential(neuron_state) if self.payload.reads_potential else None)
        return z, s, LayerState(neuron_state, s, synapse_state, recurrent_state)

    @property
    def payload_bits(self) -> int:
        """Bits per emitted event: 1 for a binary spike, the payload's width for a graded one."""
        return 1 if self.payload is None else self.payload.bits

    def _forward_fused(self, neuron, x, state):
        if self.recurrent is not None:  # plain synapses: their product event by event where x is spikes
            currents, synapse_state = (spike_linear(x, self.synapses.weight, self.synapses.bias), state.synapses) \
                if paths.plain(self.synapses) else self.synapses.sequence(state.synapses, x)
            previous = state.neuron._replace(z=state.z)  # the spikes the recurrence reads, as the step path
            spikes, final = alif_recurrent_sequence(currents, self.recurrent.weight, neuron, self.dt, previous,
                                                    reuse_currents=paths.plain(self.synapses))
            _check_settled(neuron, final, len(x), self.dt)  # off the CPU kernel, the step path's own check
            return spikes, spikes, LayerState(final, final.z, synapse_state, state.recurrent)
        options = dict(fused_lif_options(neuron, self.dt), state=LeakyState(state.neuron.v, state.neuron.z))
        synapse_state = state.synapses
        if paths.plain(self.synapses):  # its product is fused in
            spikes, final = linear_lif_sequence(x, self.synapses.weight, self.synapses.bias, **options)
        else:
            currents, synapse_state = self.synapses.sequence(state.synapses, x)
            spikes, final = lif_sequence(currents, **options)
        # beta = 0: the adaptation a has no effect, and is not tracked on this path.
        neuron_state = ALIFState(final.v, state.neuron.a, final.z, state.neuron.refractory)
        if self.payload is None:
            return spikes, spikes, LayerState(neuron_state, final.z, synapse_state, state.recurrent)
        graded = self.payload(spikes)  # a payload that does not read the potential
        return graded, spikes, LayerState(neuron_state, graded[-1], synapse_state, state.recurrent)


def fused_lif_options(neuron, dt: float) -> dict:
    """The fused LIF operation's arguments for a feed-forward layer of the discrete LIF ``neuron``
    (``β = exp(−dt/τ_m)``, ``θ``, the surrogate rescaled by ``θ``, the reset's detachment)."""
    return dict(beta=exp_decay(dt, neuron.tau_m), threshold=neuron.v_th,
                surrogate=Rescaled(neuron.surrogate, neuron.v_th), detach_reset=neuron.reset.detach)


def _check_parameter_shapes(neuron, size: int) -> None:
    """Tensor parameters hold one value, or one per neuron."""
    for name, value in vars(neuron).items():
        if isinstance(value, torch.Tensor) and value.shape not in ((), (size,)):
            raise ValueError(f"{type(neuron).__name__}.{name} has shape {tuple(value.shape)}; a layer of {size} "
                             f"neurons takes one value or one per neuron, shape () or ({size},)")


def _checked_payload(payload, neuron, size: int):
    if payload is None:
        return None
    if not isinstance(payload, Payload):
        raise ValueError(f"payload must be a neuroplastic.spikes.Payload or None, got {payload!r}")
    magnitude = getattr(payload, "magnitude", None)
    if magnitude is not None and magnitude.shape != (size,):
        raise ValueError(f"a payload of {magnitude.numel()} magnitudes for a layer of {size} neurons")
    if payload.reads_potential and type(neuron).crossing_potential is NeuronModel.crossing_potential:
        neuron.crossing_potential(None)  # the model does not keep it: raises, naming the model
    return payload


def _check_settled(neuron, state, steps: int, dt: float) -> None:
    """A clear error where the neurons diverged over the sequence (finite inputs, yet a NaN or infinite
    state: too strong weights or inputs for the model, or too large a ``dt``), as the fused path
    refuses an overflowing voltage; a NaN stays in the state, so the last one shows every step."""
    for name, value in zip(state._fields, state):
        if not all_finite(value):
            raise ValueError(f"the layer's {type(neuron).__name__} neurons diverged: their {name} holds NaN or "
                             f"infinite values after {steps} steps of dt = {dt} ms; smaller weights, inputs or dt "
                             "keep it finite")


def as_weights_dtype(name: str, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """``x`` in the dtype of ``module``'s weights (integers and booleans converted), or a clear error for
    floats of another dtype, which a matrix product would refuse."""
    parameters = module.parameters() if isinstance(module, nn.Module) else ()
    dtype = next((p.dtype for p in parameters if p.is_floating_point()), None)
    x = real_valued(name, x, dtype)
    if dtype is not None and x.dtype != dtype and not _autocast(x.device.type):
        raise ValueError(f"{name} is {x.dtype}, the weights {dtype}: convert one of them (x.to({dtype}) or "
                         f"module.to({x.dtype}))")
    return x


def _autocast(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (where it casts the products' operands itself)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no argument
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def _input_width(synapses) -> int | None:
    """How many inputs ``synapses`` take (``None`` where they do not say)."""
    for name in ("n_in", "n", "n_pre"):
        if isinstance(getattr(synapses, name, None), int):
            return getattr(synapses, name)
    weight = getattr(synapses, "weight", None)
    return weight.shape[-1] if isinstance(weight, torch.Tensor) and weight.dim() == 2 else None


class LeakyReadout(nn.Module):
    """Leaky-integrator output neurons: ``y_t = κ y_{t−1} + W z_t + b`` with ``κ = e^{−dt/τ_out}``."""

    def __init__(self, n_in: int, n_out: int, *, tau_out: float = 20.0, dt: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.decay = math.exp(-require_positive("dt", dt) / require_positive("tau_out", tau_out))
        self.synapses = Dense(n_in, n_out, bias=True, generator=generator)
        self.size = n_out

    def init_state(self, batch: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.size, dtype=dtype, device=device)

    def step(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decay * y + self.synapses(z)

    def forward(self, z: torch.Tensor, y0: torch.Tensor | None = None) -> torch.Tensor:
        """Readout ``(T, B, n_out)`` of spikes ``(T, B, n_in)``."""
        return leaky_integrate(self.synapses(z), self.decay, y0)
