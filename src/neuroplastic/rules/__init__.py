"""Learning rules under one interface (``init`` / ``update``), and the bridge to ``torch.optim``."""
from neuroplastic.rules.base import Rule, Segment, apply_updates, segments
from neuroplastic.rules.bptt import BPTT, TruncatedBPTT
from neuroplastic.validation import lookup

RULES = {"bptt": BPTT, "tbptt": TruncatedBPTT}


def make_rule(name: str, **options) -> Rule:
    return lookup("rule", name, RULES)(**options)


__all__ = ["Rule", "Segment", "apply_updates", "segments", "BPTT", "TruncatedBPTT", "RULES", "make_rule"]
