"""Published plasticity experiments, reproduced end to end: ``neuroplastic reproduce NAME``.

Each experiment is a function ``run(*, quick=False, seed=0, progress=True) -> Outcome``: ``quick`` is
the scaled configuration the default tests use, the full one is what ``reproduce`` runs. An
:class:`Outcome` holds what was measured, the published numbers it is compared with, whether the
experiment's criteria passed, and a function that draws its figure.
"""
from __future__ import annotations

from neuroplastic.experiments.base import EXPERIMENTS, Outcome, get_experiment

__all__ = ["EXPERIMENTS", "Outcome", "get_experiment"]
