"""One mapping per NIR node type: the library's neurons, synapses, delays and readout to NIR nodes and
back (NIR: Pedersen et al. 2024, "Neuromorphic intermediate representation: A unified instruction set
for interoperable brain-inspired computing", Nat. Commun. 15:8122).

**Units.** NIR is continuous-time; every peer's exporter writes its times in seconds (snnTorch and
SpikingJelly from a step of ``dt = 10⁻⁴`` s, Norse from ``10⁻³`` s), so NIR times here are seconds
and the library's milliseconds are divided by :data:`MS_PER_SECOND` on the way out.

**Neurons** (``τ dv/dt = (v_leak − v) + R I``; CubaLIF adds ``τ_syn dI/dt = −I + w_in S``):

========================  ==========  ========================================================================
library                   NIR         fields
========================  ==========  ========================================================================
``LIF``                   ``LIF``     ``tau = τ_m``, ``r = R``, ``v_leak = E_L``, ``v_threshold = ϑ``, ``v_reset = V_r``
``CurrentLIF``            ``CubaLIF`` the LIF's, ``tau_syn = τ_s`` and ``w_in = τ_s/dt``
``ALIF`` (``beta = 0``)   ``LIF``     ``tau = τ_m``, ``r = τ_m/dt``, ``v_leak = 0``, ``v_reset = 0``
``LeakyReadout``          ``LI``      ``tau = τ_out``, ``r = τ_out/dt``, ``v_leak = 0``
========================  ==========  ========================================================================

The per-step input of a layer is read as a current held over the step (what each peer's forward-Euler
step assumes): it adds ``(dt/τ)·R·I`` to ``v``. The discrete maps (``ALIF``, the readout) add their
input unscaled, hence ``r = τ/dt``, as snnTorch's and SpikingJelly's exporters write for their
``Leaky``/``LIFNode``; ``CurrentLIF``'s input is a jump of ``I_syn``, hence ``w_in = τ_s/dt`` (snnTorch's
``Synaptic`` exports the same). On import the inverse gain, ``r·dt/τ`` (``w_in·dt/τ_s``), is folded into
the synapses feeding the neuron (one within 10⁻⁹ of 1 is rounding of the unit conversion, and left out).

NIR has no reset by subtraction, no refractoriness, no adaptive threshold and no noise. A reset by
subtraction is written as ``v_reset = E_L`` (where it lands from a crossing at exactly ``ϑ``) and
named in the node's metadata, which this library reads back (peers see the reset to ``E_L``).
``ALIF``'s discrete map, whose reset acts one step late, is named there too; refractory, adaptive
and noisy neurons are refused. Integrators other than the model's default are named there as well,
so a round trip is bit for bit. Surrogate gradients do not travel (an imported model has its class's
default). A plain NIR ``LIF``/``CubaLIF`` imports as the continuous ``LIF``/``CurrentLIF``.

**Synapses**: ``Dense`` ↔ ``Linear`` (``Affine`` with a bias), ``Recurrent`` ↔ a ``Linear`` from the
layer back to itself, which every discrete simulator (here, snnTorch, SpikingJelly) delays by one step;
``FixedDelays`` whose delay depends on the presynaptic neuron alone ↔ ``Delay`` before the ``Linear``.
"""
from __future__ import annotations

import math

import nir
import numpy as np
import torch

from neuroplastic import integrators
from neuroplastic.neurons import ALIF, LIF, CurrentLIF, ResetBySubtraction, ResetTo
from neuroplastic.synapses import Dense, FixedDelays

__all__ = [
    "MS_PER_SECOND",
    "delays_from_node",
    "neuron_from_node",
    "neuron_node",
    "readout_decay_from_node",
    "readout_node",
    "recurrent_weight",
    "synapse_nodes",
    "weight_node",
]

MS_PER_SECOND = 1000.0
_MODEL, _RESET, _DETACH, _INTEGRATOR = ("neuroplastic_model", "neuroplastic_reset", "neuroplastic_detach_reset",
                                        "neuroplastic_integrator")
_DEFAULT_INTEGRATOR = {LIF: integrators.Exponential, CurrentLIF: integrators.Exact}


def _seconds(ms):
    return _per_neuron(ms) / MS_PER_SECOND


def _per_neuron(value, size: int | None = None) -> np.ndarray:
    """A parameter (a number, or a tensor per neuron) as a float64 array of ``size`` values."""
    array = value.detach().cpu().double().numpy().copy() if isinstance(value, torch.Tensor) else np.asarray(value, float)
    return array if size is None else np.broadcast_to(array, (size,)).copy()


def _parameter(array):
    """A NIR array as a model parameter: a number where every neuron shares it, else a tensor."""
    array = np.asarray(array, dtype=np.float64).reshape(-1)
    return float(array[0]) if np.all(array == array[0]) else torch.tensor(array, dtype=torch.get_default_dtype())


# ------------------------------------------------------------------------------------------------ neurons


def _reset_fields(model, resting) -> tuple[np.ndarray, dict]:
    """``v_reset`` and the metadata that names a reset NIR lacks."""
    if isinstance(model.reset, ResetTo):
        return model.reset.value, {_DETACH: int(model.reset.detach)} if model.reset.detach else {}
    return resting, {_RESET: "subtract", **({_DETACH: 1} if model.reset.detach else {})}


def _refuse(model, name: str, layer: str, why: str) -> None:
    value = getattr(model, name)
    if isinstance(value, torch.Tensor) or value != 0:
        raise ValueError(f"{layer}: {type(model).__name__} with {name} = {value}: {why}; NIR cannot carry it")


def neuron_node(model, size: int, dt: float, layer: str):
    """The NIR node of a layer of ``size`` neurons of ``model`` stepping by ``dt`` ms."""
    if type(model) not in (LIF, CurrentLIF, ALIF):
        raise ValueError(f"{layer}: NIR has no node for {type(model).__name__} neurons (LIF, CurrentLIF and "
                         "ALIF with beta = 0 export)")
    if isinstance(model, ALIF):
        _refuse(model, "beta", layer, "an adaptive threshold")
    _refuse(model, "t_ref", layer, "a refractory period")
    if isinstance(model, ALIF):
        v_reset, metadata = _reset_fields(model, 0.0)
        zeros = np.zeros(size)
        return nir.LIF(tau=_seconds(_per_neuron(model.tau_m, size)), r=_per_neuron(model.tau_m, size) / dt,
                       v_leak=zeros, v_threshold=_per_neuron(model.v_th, size),
                       v_reset=_per_neuron(v_reset, size), metadata={_MODEL: "ALIF", **metadata})
    if isinstance(model, LIF):
        _refuse(model, "sigma", layer, "a noise term")
    v_reset, metadata = _reset_fields(model, model.e_l)
    if not isinstance(model.integrator, _DEFAULT_INTEGRATOR[type(model)]):
        metadata[_INTEGRATOR] = type(model.integrator).__name__
    fields = dict(r=_per_neuron(model.resistance, size), v_leak=_per_neuron(model.e_l, size),
                  v_threshold=_per_neuron(model.v_th, size), v_reset=_per_neuron(v_reset, size), metadata=metadata)
    if isinstance(model, LIF):
        return nir.LIF(tau=_seconds(_per_neuron(model.tau_m, size)), **fields)
    return nir.CubaLIF(tau_mem=_seconds(_per_neuron(model.tau_m, size)),
                       tau_syn=_seconds(_per_neuron(model.tau_s, size)),
                       w_in=_per_neuron(model.tau_s, size) / dt, **fields)


def _reset_from(node):
    metadata = node.metadata or {}
    detach = bool(metadata.get(_DETACH, 0))
    if metadata.get(_RESET) == "subtract":
        return ResetBySubtraction(detach=detach)
    value = _parameter(node.v_reset)
    if isinstance(value, torch.Tensor):
        raise ValueError("a reset potential per neuron is not supported (one v_reset per layer)")
    return ResetTo(value, detach=detach)


def neuron_from_node(node, dt: float):
    """The model of a NIR ``LIF``/``CubaLIF`` node for a step of ``dt`` ms, and the gain per neuron
    (``(n,)`` array) of the input it expects, to be folded into its synapses."""
    metadata = node.metadata or {}
    reset = _reset_from(node)
    if isinstance(node, nir.LIF):
        tau_m = _per_neuron(node.tau) * MS_PER_SECOND
        if metadata.get(_MODEL) == "ALIF":
            if np.any(np.asarray(node.v_leak) != 0):
                raise ValueError("an ALIF node with v_leak ≠ 0")
            return (ALIF(tau_m=_parameter(tau_m), v_th=_parameter(node.v_threshold), beta=0.0, t_ref=0.0, reset=reset),
                    _per_neuron(node.r) * dt / tau_m)
        model = LIF(tau_m=_parameter(tau_m), e_l=_parameter(node.v_leak), v_th=_parameter(node.v_threshold),
                    resistance=_parameter(node.r), t_ref=0.0, reset=reset)
    else:
        tau_s = _per_neuron(node.tau_syn) * MS_PER_SECOND
        model = CurrentLIF(tau_m=_parameter(_per_neuron(node.tau_mem) * MS_PER_SECOND), tau_s=_parameter(tau_s),
                           e_l=_parameter(node.v_leak), v_th=_parameter(node.v_threshold),
                           resistance=_parameter(node.r), t_ref=0.0, reset=reset)
    if _INTEGRATOR in metadata:
        model = model.replace(integrator=_integrator(metadata[_INTEGRATOR]))
    gain = _per_neuron(node.w_in) * dt / tau_s if isinstance(node, nir.CubaLIF) else np.ones(np.asarray(node.r).size)
    return model, gain


def _integrator(name: str):
    kind = getattr(integrators, str(name), None)
    if kind not in (integrators.Euler, integrators.RK4, integrators.Exponential, integrators.Exact):
        raise ValueError(f"unknown integrator {name!r} in the node's metadata")
    return kind()


# ------------------------------------------------------------------------------------------------ readout


def readout_node(decay: float, size: int, dt: float):
    """The NIR ``LI`` of a :class:`LeakyReadout` of decay ``κ = e^{−dt/τ_out}`` (``None`` for ``κ = 0``:
    no memory, the readout is its synapses alone)."""
    if decay == 0:
        return None
    tau_out = np.full(size, -dt / math.log(decay))
    return nir.LI(tau=_seconds(tau_out), r=tau_out / dt, v_leak=np.zeros(size), metadata={_MODEL: "LeakyReadout"})


def readout_decay_from_node(node, dt: float) -> tuple[float, np.ndarray]:
    """A NIR ``LI``'s decay per step of ``dt`` ms and the gain of its input (see the module docstring)."""
    if np.any(np.asarray(node.v_leak) != 0):
        raise ValueError("a leaky-integrator readout with v_leak ≠ 0 is not supported")
    tau = _per_neuron(node.tau) * MS_PER_SECOND
    if np.any(tau != tau.flat[0]):
        raise ValueError("a readout time constant per neuron is not supported (one per readout)")
    return math.exp(-dt / float(tau.flat[0])), _per_neuron(node.r) * dt / tau


# ------------------------------------------------------------------------------------------------ synapses


def weight_node(synapses):
    """``Linear`` (``Affine`` with a bias) of a ``Dense`` or ``Recurrent``'s effective weight."""
    weight = synapses.weight.detach().cpu().numpy().copy()  # the graph must not share the network's memory
    bias = getattr(synapses, "bias", None)
    return nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias.detach().cpu().numpy().copy())


def synapse_nodes(synapses, dt: float, layer: str) -> list:
    """The NIR nodes of a layer's input synapses, in signal order: ``[Delay,] Linear|Affine``."""
    if type(synapses) is Dense:
        return [weight_node(synapses)]
    if type(synapses) is FixedDelays and type(synapses.synapses) is Dense:
        delays = synapses.delays
        if not torch.equal(delays, delays[:1].expand_as(delays)):
            raise ValueError(f"{layer}: its delays differ between synapses of one presynaptic neuron; nir.Delay "
                             "delays a neuron's signal, so only delays per presynaptic neuron export")
        return [nir.Delay(delay=_seconds(delays[0].double() * dt)), weight_node(synapses.synapses)]
    raise ValueError(f"{layer}: NIR export takes Dense synapses (behind FixedDelays or not), got "
                     f"{type(synapses).__name__}")


def delays_from_node(node, dt: float) -> torch.Tensor:
    """A NIR ``Delay`` as whole steps of ``dt`` ms per presynaptic neuron."""
    steps = _per_neuron(node.delay) * MS_PER_SECOND / dt
    whole = np.round(steps)
    if np.any(np.abs(steps - whole) > 1e-6) or np.any(whole < 0):
        raise ValueError(f"delays of {steps.tolist()} steps of {dt} ms: only whole, non-negative steps are supported")
    return torch.as_tensor(whole, dtype=torch.long)


def recurrent_weight(node, size: int) -> np.ndarray:
    """The weight of a NIR ``Linear``/``Affine`` from a layer of ``size`` neurons back to itself, checked
    to fit the library's ``Recurrent`` (no self-connections)."""
    weight = np.asarray(node.weight)
    if weight.shape != (size, size):
        raise ValueError(f"recurrent weights of shape {weight.shape} for a layer of {size} neurons")
    if np.any(np.diagonal(weight) != 0):
        raise ValueError("recurrent weights with self-connections (a non-zero diagonal): the library's Recurrent "
                         "has none")
    return weight
