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
from neuroplastic.validation import lookup

RULES = {"bptt": BPTT, "tbptt": TruncatedBPTT}


def make_rule(name: str, **options) -> Rule:
    return lookup("rule", name, RULES)(**options)


__all__ = ["Rule", "Segment", "StepInfo", "apply_changes", "apply_updates", "count_changes", "segments",
           "Transform", "chain", "partition", "scale", "clip", "bound", "every", "gate",
           "BPTT", "TruncatedBPTT", "RULES", "make_rule"]
