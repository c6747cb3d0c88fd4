"""Learning rules under one interface (``init`` / ``update``), combinators, and the bridges to
``torch.optim`` (gradient rules) and to in-place changes (plasticity rules)."""
from neuroplastic.rules.base import (
    Rule,
    Segment,
    StepInfo,
    apply_changes,
    apply_updates,
    count_changes,
    segments,
)
from neuroplastic.rules.bptt import BPTT, TruncatedBPTT
from neuroplastic.rules.combinators import Transform, bound, chain, clip, every, gate, partition, scale
from neuroplastic.rules.hebbian import DecayingHebb, Hebb, Oja
from neuroplastic.rules.homeostasis import AdaptiveThreshold, Normalize, SynapticScaling
from neuroplastic.rules.modulated import Dopamine, Reward, RewardPrediction, ThreeFactor
from neuroplastic.rules.stdp import Additive, AllToAll, Nearest, PairSTDP, SoftBounds
from neuroplastic.rules.superspike import DoubleExponential, RMSScale, SuperSpike
from neuroplastic.rules.triplet import TripletSTDP
from neuroplastic.validation import lookup

RULES = {"bptt": BPTT, "tbptt": TruncatedBPTT}


def make_rule(name: str, **options) -> Rule:
    rule = lookup("rule", name, RULES)
    try:
        return rule(**options)
    except TypeError as error:
        raise ValueError(f"rule {name!r}: {error}") from None


__all__ = ["Rule", "Segment", "StepInfo", "apply_changes", "apply_updates", "count_changes", "segments",
           "Transform", "chain", "partition", "scale", "clip", "bound", "every", "gate",
           "BPTT", "TruncatedBPTT", "RULES", "make_rule",
           # plasticity rules (changes, not gradients: not trainer methods, so not in RULES)
           "PairSTDP", "Additive", "SoftBounds", "AllToAll", "Nearest", "TripletSTDP", "Hebb", "Oja", "DecayingHebb",
           "ThreeFactor", "Reward", "RewardPrediction", "Dopamine", "AdaptiveThreshold", "SynapticScaling",
           "Normalize",
           # SuperSpike (a layer rule for online learning, like e-prop) and its per-synapse rate
           "SuperSpike", "RMSScale", "DoubleExponential"]
