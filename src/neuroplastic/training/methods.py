"""Every learning method by name (:func:`make_method`), each a method object of the protocol in
:mod:`~neuroplastic.training.problem`: the gradient rules (``bptt``, ``tbptt``) as
:class:`GradientMethod` s, exact RTRL, and the online and local ones, each an :class:`OnlineMethod` —
an eligibility-trace rule per layer and a source of learning signals:

| name | layer rule | learning signal | default schedule |
|---|---|---|---|
| ``eprop`` | e-prop traces (reset path dropped) | random feedback (``feedback=symmetric``, ``adaptive``; ``reward=true``: from a reward) | per sequence |
| ``ostl`` | traces with the reset path (exact for one layer) | symmetric (spatial backprop) | per sequence |
| ``fa`` | e-prop traces | feedback alignment | per sequence |
| ``dfa`` | e-prop traces | direct feedback alignment | per sequence |
| ``decolle`` | e-prop traces | fixed random local readouts | every step |
| ``etl`` | e-prop traces | local readouts, quantized (error-triggered) | every step |
| ``superspike`` | SuperSpike traces (ε and α double exponentials) | symmetric (spatial backprop) | per sequence |
| ``rtrl`` | exact forward sensitivities of the whole network (small networks) | the readout error | per sequence |

and ``eqprop`` (:mod:`~neuroplastic.training.eqprop`): equilibrium propagation, which trains an energy
network of its own (``beta``, ``symmetric``); ``pat`` and ``twin`` (:mod:`~neuroplastic.training.pat`),
which train a network deployed on a simulated chip (``substrate``, ``mismatch``, ``noise``, ``bits``,
``chip``): physics-aware (``calibrate``), or on its digital twin (``aware``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from neuroplastic.rules import RULES, make_rule
from neuroplastic.rules.base import Rule
from neuroplastic.rules.eprop import EProp
from neuroplastic.rules.signals import (
    SIGNALS,
    DirectFeedback,
    LocalReadouts,
    Quantized,
    RandomFeedback,
    Reinforce,
    Symmetric,
)
from neuroplastic.rules.superspike import DoubleExponential, SuperSpike
from neuroplastic.training.eqprop import EqPropMethod
from neuroplastic.training.online import OnlineMethod
from neuroplastic.training.pat import ChipMethod
from neuroplastic.training.problem import GradientMethod
from neuroplastic.training.rtrl import RTRLMethod
from neuroplastic.validation import lookup

__all__ = ["ONLINE_METHODS", "METHODS", "make_method", "as_method"]


def eprop(feedback: str = "random", reward: bool = False, mode: str = "sequence", apply_every: int | None = None,
          filter_readout: bool = True):
    """e-prop; ``reward=True`` learns from a reward for the sampled class instead of the label;
    ``filter_readout=False`` drops the readout's filter from the eligibility traces (an approximation
    whose LIF traces factorize: online, no per-synapse tensor)."""
    signal = lookup("e-prop feedback", feedback, {k: SIGNALS[k] for k in ("symmetric", "random", "adaptive")})()
    _flag("reward", reward)
    return OnlineMethod("eprop", EProp, Reinforce(signal) if reward else signal, mode, apply_every,
                        filter_readout=_flag("filter_readout", filter_readout))


def ostl(mode: str = "sequence", apply_every: int | None = None):
    return OnlineMethod("ostl", partial(EProp, reset_path=True), Symmetric(), mode, apply_every)


def fa(mode: str = "sequence", apply_every: int | None = None, filter_readout: bool = True):
    return OnlineMethod("fa", EProp, RandomFeedback(), mode, apply_every,
                        filter_readout=_flag("filter_readout", filter_readout))


def dfa(mode: str = "sequence", apply_every: int | None = None, filter_readout: bool = True):
    return OnlineMethod("dfa", EProp, DirectFeedback(), mode, apply_every,
                        filter_readout=_flag("filter_readout", filter_readout))


def decolle(mode: str = "online", apply_every: int | None = 1, filter_readout: bool = True):
    return OnlineMethod("decolle", EProp, LocalReadouts(), mode, apply_every, momentum=False,
                        filter_readout=_flag("filter_readout", filter_readout))


def etl(threshold: float = 1e-3, target_rate: float = 0.005, gain: float = 0.5, mode: str = "online",
        apply_every: int | None = 1, filter_readout: bool = True):
    signal = Quantized(LocalReadouts(), threshold=threshold, target_rate=target_rate, gain=gain)
    return OnlineMethod("etl", EProp, signal, mode, apply_every, momentum=False,
                        filter_readout=_flag("filter_readout", filter_readout))


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class ErrorAsGradient(Rule):
    """SuperSpike reads the error ``e = −∂E/∂S`` per unit time; the learner's signals are ``∂E/∂z``."""

    rule: SuperSpike

    def update(self, info, state, params, *, learning_signal, **signals):
        return self.rule.update(info, state, params, learning_signal=-learning_signal / info.dt)

    def sequence_update(self, info, state, params, *, learning_signal, **signals):
        return self.rule.sequence_update(info, state, params, learning_signal=-learning_signal / info.dt)


def superspike(tau_rise: float = 5.0, tau_decay: float = 10.0, mode: str = "sequence",
               apply_every: int | None = None):
    """SuperSpike's eligibility (its own output filter α instead of the readout's) on readout errors."""
    kernel = DoubleExponential(tau_rise, tau_decay)
    rule = ErrorAsGradient(SuperSpike(epsilon=kernel, alpha=kernel))
    return OnlineMethod("superspike", lambda decay: rule, Symmetric(), mode, apply_every, filter_readout=False)


def rtrl(apply_every: int | None = None, max_sensitivity: int = 2**24):
    return RTRLMethod(apply_every=apply_every, max_sensitivity=max_sensitivity)


def eqprop(beta: float = 0.5, symmetric: bool = False, spiking: bool = False):
    return EqPropMethod(beta=beta, symmetric=symmetric, spiking=spiking)


def pat(substrate: str = "dpi", mismatch: float = 0.0, noise: float = 0.0, bits: int | None = None, chip: int = 0,
        calibrate: bool = False, recalibrate: int = 50):
    return ChipMethod("pat", substrate, mismatch, noise, bits, chip, calibrate=calibrate, recalibrate=recalibrate)


def twin(substrate: str = "dpi", mismatch: float = 0.0, noise: float = 0.0, bits: int | None = None, chip: int = 0,
         aware: bool = False):
    return ChipMethod("twin", substrate, mismatch, noise, bits, chip, aware=aware)


ONLINE_METHODS = {"eprop": eprop, "ostl": ostl, "fa": fa, "dfa": dfa, "decolle": decolle, "etl": etl,
                  "superspike": superspike, "rtrl": rtrl}
METHODS = {**RULES, **ONLINE_METHODS, "eqprop": eqprop, "pat": pat, "twin": twin}


def make_method(name: str, **options):
    """The method called ``name`` (``bptt``, ``tbptt``, or an online one), with ``options``."""
    factory = lookup("rule", name, METHODS)
    if name in RULES:
        return GradientMethod(make_rule(name, **options), name=name)
    try:
        return factory(**options)
    except TypeError as error:
        raise ValueError(f"rule {name!r}: {error}") from None


def as_method(rule, **options):
    """A method object for ``rule``: a name (with ``options``), a gradient :class:`Rule` (wrapped in a
    :class:`GradientMethod`), or a method object itself."""
    if isinstance(rule, str):
        return make_method(rule, **options)
    if options:
        raise ValueError("rule options apply to a rule given by name")
    if isinstance(rule, Rule):
        return GradientMethod(rule, name=type(rule).__name__.lower())
    if not callable(getattr(rule, "learner", None)):
        raise ValueError(f"a rule must be a name, a gradient Rule or a method with learner(problem), got {rule!r}")
    return rule
