"""Learning rules under one interface (``init`` / ``update``), and the bridge to ``torch.optim``."""
from neuroplastic.rules.base import Rule, Segment, apply_updates, segments
from neuroplastic.rules.bptt import BPTT, TruncatedBPTT

RULES = {"bptt": BPTT, "tbptt": TruncatedBPTT}


def make_rule(name: str, **options) -> Rule:
    try:
        cls = RULES[name]
    except KeyError:
        raise ValueError(f"unknown rule {name!r}; choose from {', '.join(sorted(RULES))}") from None
    return cls(**options)


__all__ = ["Rule", "Segment", "apply_updates", "segments", "BPTT", "TruncatedBPTT", "RULES", "make_rule"]
