"""Every learning method by name: the gradient rules trained by :class:`Trainer` (``bptt``,
``tbptt``) and the online and local ones, each an :class:`OnlineMethod` — an eligibility-trace rule
per layer and a source of learning signals:

| name | layer rule | learning signal | default schedule |
|---|---|---|---|
| ``eprop`` | e-prop traces (reset path dropped) | random feedback (``feedback=symmetric``, ``adaptive``) | per sequence |
| ``ostl`` | traces with the reset path (exact for one layer) | symmetric (spatial backprop) | per sequence |
| ``fa`` | e-prop traces | feedback alignment | per sequence |
| ``dfa`` | e-prop traces | direct feedback alignment | per sequence |
| ``decolle`` | e-prop traces | fixed random local readouts | every step |
| ``etl`` | e-prop traces | local readouts, quantized (error-triggered) | every step |
"""
from __future__ import annotations

from functools import partial

from neuroplastic.rules import RULES, make_rule
from neuroplastic.rules.eprop import EProp
from neuroplastic.rules.signals import SIGNALS, DirectFeedback, LocalReadouts, Quantized, RandomFeedback, Symmetric
from neuroplastic.training.online import OnlineMethod
from neuroplastic.validation import lookup

__all__ = ["ONLINE_METHODS", "METHODS", "make_method", "is_online"]


def eprop(feedback: str = "random", mode: str = "sequence", apply_every: int | None = None):
    signal = lookup("e-prop feedback", feedback, {k: SIGNALS[k] for k in ("symmetric", "random", "adaptive")})()
    return OnlineMethod("eprop", EProp, signal, mode, apply_every)


def ostl(mode: str = "sequence", apply_every: int | None = None):
    return OnlineMethod("ostl", partial(EProp, reset_path=True), Symmetric(), mode, apply_every)


def fa(mode: str = "sequence", apply_every: int | None = None):
    return OnlineMethod("fa", EProp, RandomFeedback(), mode, apply_every)


def dfa(mode: str = "sequence", apply_every: int | None = None):
    return OnlineMethod("dfa", EProp, DirectFeedback(), mode, apply_every)


def decolle(mode: str = "online", apply_every: int | None = 1):
    return OnlineMethod("decolle", EProp, LocalReadouts(), mode, apply_every)


def etl(threshold: float = 1e-3, target_rate: float = 0.02, gain: float = 0.5, mode: str = "online",
        apply_every: int | None = 1):
    signal = Quantized(LocalReadouts(), threshold=threshold, target_rate=target_rate, gain=gain)
    return OnlineMethod("etl", EProp, signal, mode, apply_every)


ONLINE_METHODS = {"eprop": eprop, "ostl": ostl, "fa": fa, "dfa": dfa, "decolle": decolle, "etl": etl}
METHODS = {**RULES, **ONLINE_METHODS}


def is_online(name: str) -> bool:
    return lookup("rule", name, METHODS) in ONLINE_METHODS.values()


def make_method(name: str, **options):
    """The rule (``bptt``, ``tbptt``) or online method called ``name``, with ``options``."""
    if not is_online(name):
        return make_rule(name, **options)
    try:
        return ONLINE_METHODS[name](**options)
    except TypeError as error:
        raise ValueError(f"rule {name!r}: {error}") from None
