"""Outer loops: how the learning itself is learned. Meta-learning (:mod:`.maml`) over the inner loops
of :mod:`.inner` (gradient steps, or one of the library's online rules), through ``torch.func``."""
from neuroplastic.outer.inner import INNER_LOOPS, GradientSteps, OnlineSteps, make_inner
from neuroplastic.outer.maml import MetaLearner

__all__ = ["INNER_LOOPS", "GradientSteps", "OnlineSteps", "make_inner", "MetaLearner"]
