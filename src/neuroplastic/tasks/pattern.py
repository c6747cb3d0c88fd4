"""Pattern generation (Bellec et al. 2020, Nature Communications 11; reference tutorial
``tutorial_pattern_generation.py`` of github.com/IGITUGraz/eligibility_propagation): regression of
one frozen 1 s pattern.

Input: 100 neurons firing frozen Poisson spike trains at 50 Hz for 1000 ms. Target: one output

    y*(t) = Σ_{j=1}^{4} a_j sin(2π t / P_j + φ_j),   t = k·dt,  k = 0 … T − 1,

with periods ``P = 1000, 500, 1000/3, 200`` ms (the paper's "333 ms" is a third of the sequence,
as in the reference code, so the pattern is periodic over 1 s), amplitudes ``a_j ~ U(0.5, 2)``
and phases ``φ_j ~ U(0, 2π)``. There is a single sample: train and test are the same pattern
(the task is to memorize it), targets have shape ``(1, T, 1)``. One version of the reference
code can shift and rescale the target (start at 0, peak magnitude 1); the plain sum of the paper's
text is used here.
"""
from __future__ import annotations

import math

import torch

from neuroplastic.coding import poisson_encode, whole_steps
from neuroplastic.tasks.base import Split, Task
from neuroplastic.validation import require_positive

__all__ = ["pattern_task", "PERIODS_MS", "DURATION_MS", "INPUTS", "INPUT_RATE_HZ"]

PERIODS_MS = (1000.0, 500.0, 1000.0 / 3.0, 200.0)
DURATION_MS = 1000.0
INPUTS = 100
INPUT_RATE_HZ = 50.0


def pattern_task(*, seed: int = 0, dt: float = 1.0) -> Task:
    """The pattern-generation task (see the module docstring)."""
    dt = require_positive("dt", dt)
    steps = whole_steps("the pattern duration (1000 ms)", DURATION_MS, dt)
    generator = torch.Generator().manual_seed(seed)
    spikes = poisson_encode(torch.full((INPUTS,), INPUT_RATE_HZ), steps, dt, generator)
    amplitudes = 0.5 + 1.5 * torch.rand(len(PERIODS_MS), generator=generator, dtype=torch.float64)
    phases = 2 * math.pi * torch.rand(len(PERIODS_MS), generator=generator, dtype=torch.float64)
    t = torch.arange(steps, dtype=torch.float64)[:, None] * dt
    periods = torch.tensor(PERIODS_MS, dtype=torch.float64)
    target = (amplitudes * torch.sin(2 * math.pi * t / periods + phases)).sum(1)
    split = Split(spikes[None], target.to(torch.float32).reshape(1, steps, 1))
    return Task(name="pattern", train=split, test=split, n_inputs=INPUTS, n_outputs=1, dt=dt,
                kind="regression")
