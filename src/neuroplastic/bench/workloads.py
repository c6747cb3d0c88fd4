"""The standard workload in each library: ``Linear(N → N)`` (no bias), then a LIF layer, loss = spike count.

Every implementation gets the same weights and the same input (Bernoulli spikes of rate 0.2), float32,
time-first ``(T, B, N)``, and the same matrix product: one ``nn.functional.linear`` over all steps
(the peers' users could also call their ``Linear`` inside the time loop; that only adds T small
products and T weight-gradient sums, so one product is the comparison most favourable to them). What
differs is the LIF layer, each configured as its users would for ``β = 0.9``, ``θ = 1``, reset by
subtraction, each with its library's default surrogate gradient:

- **neuroplastic**: :class:`~neuroplastic.networks.SpikingLayer` with ``ALIF(beta=0, t_ref=0,
  ResetBySubtraction())``, ``τ_m = −dt/ln β``: the fused path, ``v_t = β v_{t−1} + I_t − θ z_{t−1}``,
  ``z_t = H(v_t − θ)`` with ``H(0) = 1``.
- **snntorch**: ``snntorch.Leaky(beta=0.9, threshold=1, reset_mechanism="subtract")`` called in a
  Python loop over T. The same recurrence (reset one step late, with the previous step's spike), so
  the same spikes; ``H(0) = 0`` (a tie ``v = θ`` has probability zero); the reset is detached.
- **spikingjelly**: ``neuron.LIFNode(tau=10, decay_input=False, v_reset=None, step_mode="m")``:
  ``h_t = v_{t−1} − v_{t−1}/τ + I_t``, ``z_t = H(h_t − θ)``, ``v_t = h_t − θ z_t``. SpikingJelly 2
  has no ``backend`` argument: on CPU its registered operator runs a Python loop without a graph and
  a hand-written backward (its ``cupy`` and Triton kernels are GPU-only). The reset acts at once and
  then decays: a spike lowers the next step's voltage by ``βθ`` where neuroplastic's lowers it by ``θ``.
  Spikes agree up to each neuron's first spike, and rates nearly, after it.
- **norse**: ``norse.torch.LIFBoxCell`` (the LIF without a synaptic current) with its default
  ``dt·τ_mem⁻¹ = 0.001·100`` and ``reset_method=reset_subtract``, in a Python loop over T:
  ``v ← v + dt τ⁻¹ (I − v)``, ``z = H(v − θ)``, ``v ← v − θ z``. Its input is scaled by ``dt τ⁻¹``,
  so its weights are ``1/(dt τ⁻¹) = 10`` times the others'; its reset acts at once, as
  SpikingJelly's. (Norse's ``LIFCell`` adds a synaptic current, a second state per neuron.)

:func:`neuron` gives each library's LIF layer alone (currents to spikes), for the tests that check the
configurations against neuroplastic's :func:`~neuroplastic.fused.lif_sequence`.

**With learned delays** (``neuroplastic-delays``, issue 13): the same layer with its synapses behind
:class:`~neuroplastic.synapses.LearnedDelays` of ``MAX_DELAY`` = 25 steps at their initial width
``σ = D/2``: each synapse's weight spread over ``D + 1`` taps, the currents one causal convolution
of the whole sequence. Its floor is that convolution and its weight gradient, done densely: ``D + 1``
times the FLOPs of the product it replaces (the ``delay_floor`` pass of the GEMM process).
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from neuroplastic.fused import lif_sequence
from neuroplastic.networks import SpikingLayer
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.synapses import Dense, LearnedDelays

__all__ = ["BETA", "DELAYED", "INPUT_SCALE", "MAX_DELAY", "NAMES", "PEERS", "THRESHOLD", "Workload", "build",
           "installed", "neuron", "spiking_layer"]

BETA, THRESHOLD, INPUT_RATE = 0.9, 1.0, 0.2
PEERS = ("snntorch", "norse", "spikingjelly")
NAMES = ("neuroplastic",) + PEERS
DELAYED = "neuroplastic-delays"  # neuroplastic's layer with learned delays (module docstring)
MAX_DELAY = 25
INPUT_SCALE = {"norse": 10.0}  # Norse integrates dt·τ⁻¹·I: its weights are 1/(dt·τ⁻¹) times larger
_SJ_TAU = 10.0  # SpikingJelly leaks v/τ per step: 1 − 1/τ = β


@dataclass
class Workload:
    """A layer ready to run: ``forward(x)`` maps input spikes ``(T, B, N)`` to output spikes."""

    parameters: list[torch.Tensor]
    forward: Callable[[torch.Tensor], torch.Tensor]


def installed(name: str) -> bool:
    """Whether the peer library ``name`` (its package has the same name) is installed here."""
    return importlib.util.find_spec(name) is not None


def build(name: str, size: int, steps: int, batch: int, *, seed: int = 0,
          device: str = "cpu") -> tuple[Workload, torch.Tensor]:
    """The workload of library ``name`` for ``N = size`` on ``device``, and its input ``(steps, batch,
    size)``.

    Weights ``U(±1/√N)`` and input spikes come from ``seed`` (drawn on the CPU), identical for every
    library and device; on the CPU they are drawn in place, so building leaves no temporaries behind
    to blur the memory measurement.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(steps, batch, size).bernoulli_(INPUT_RATE, generator=generator).to(device)
    weight = torch.empty(size, size).uniform_(-1.0, 1.0, generator=generator).mul_(1.0 / math.sqrt(size)).to(device)
    if name in ("neuroplastic", DELAYED):
        layer = spiking_layer(size, delayed=name == DELAYED).to(device)
        dense = layer.synapses.synapses if name == DELAYED else layer.synapses  # the delays wrap it
        with torch.no_grad():
            dense.weight.copy_(weight)
        return Workload(list(layer.parameters()), lambda inputs: layer(inputs)[0]), x
    weight.mul_(INPUT_SCALE.get(name, 1.0)).requires_grad_()
    lif = neuron(name)
    return Workload([weight], lambda inputs: lif(torch.nn.functional.linear(inputs, weight))), x


def neuron(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Library ``name``'s LIF layer alone: currents ``(T, B, N)`` (times ``INPUT_SCALE``) to spikes."""
    return {"neuroplastic": _neuroplastic, "snntorch": _snntorch, "norse": _norse,
            "spikingjelly": _spikingjelly}[name]()


def spiking_layer(size: int, *, delayed: bool = False) -> SpikingLayer:
    """neuroplastic's layer of the workload, ``N → N``; its ``forward`` takes the fused path (the
    recurrence alone where ``delayed``: its currents come from the delays' convolution)."""
    synapses = LearnedDelays(Dense(size, size), MAX_DELAY) if delayed else None
    return SpikingLayer(size, size, _alif(), synapses=synapses)


def _alif():
    return ALIF(tau_m=-1.0 / math.log(BETA), v_th=THRESHOLD, beta=0.0, t_ref=0.0, reset=ResetBySubtraction())


def _neuroplastic():
    model = _alif()  # the parameters SpikingLayer's fused path passes (surrogate rescaled by v_th = 1)
    beta = math.exp(-1.0 / model.tau_m)
    return lambda currents: lif_sequence(currents, beta=beta, threshold=model.v_th, surrogate=model.surrogate)[0]


def _snntorch():
    import snntorch

    lif = snntorch.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="subtract")

    def run(currents):
        mem = lif.init_leaky()
        spikes = []
        for current in currents:
            spike, mem = lif(current, mem)
            spikes.append(spike)
        return torch.stack(spikes)
    return run


def _norse():
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract

    cell = LIFBoxCell(LIFBoxParameters(v_th=torch.as_tensor(THRESHOLD), reset_method=reset_subtract))

    def run(currents):
        state, spikes = None, []
        for current in currents:
            spike, state = cell(current, state)
            spikes.append(spike)
        return torch.stack(spikes)
    return run


def _spikingjelly():
    from spikingjelly.activation_based import neuron as sj_neuron

    node = sj_neuron.LIFNode(tau=_SJ_TAU, decay_input=False, v_threshold=THRESHOLD, v_reset=None,
                             step_mode="m")

    def run(currents):
        node.reset()  # forget the last sequence's voltage
        return node(currents)
    return run
