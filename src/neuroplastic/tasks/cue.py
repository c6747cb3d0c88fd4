"""Evidence accumulation with cues (Bellec et al., "A solution to the learning dilemma for recurrent
networks of spiking neurons", Nature Communications 11, 2020, Fig. 3; parameters from the reference
code, github.com/IGITUGraz/eligibility_propagation, ``generate_click_task_data``).

40 inputs in four groups of 10: left cue (0–9), right cue (10–19), recall cue (20–29) and
background noise (30–39). A sample first picks its majority side: the left side's cue probability
is 0.3 or 0.7 with equal chance. Then ``n_cues`` cues follow, cue ``k`` drawn left with that
probability and shown from ``50 + 150 k`` to ``150 + 150 k`` ms: its group fires Poisson spikes at
40 Hz for those 100 ms while the other cue group is silent. After the last 150 ms slot comes a
``delay_ms`` pause, then the recall group fires at 40 Hz for the final 150 ms; the noise group fires
at 10 Hz throughout. The label is the side that got more cues (0 left, 1 right; ``n_cues`` is odd,
so there are no ties) and the loss is read over the recall window: ``loss_steps = 150 ms / dt``.

Defaults are the paper's: 7 cues, 1050 ms delay, a 2250 ms sequence at ``dt = 1`` ms. The data are
drawn once with the seed (the reference draws fresh batches; 2048 training samples stand in for
them) and stored sparse.
"""
from __future__ import annotations

import torch

from neuroplastic.coding import poisson_encode, whole_steps
from neuroplastic.tasks.base import Split, Task, event_tensor
from neuroplastic.validation import (
    require_count,
    require_non_negative,
    require_positive,
)

__all__ = ["cue_task", "GROUP", "CUE_MS", "SLOT_MS", "RECALL_MS", "CUE_RATE_HZ", "NOISE_RATE_HZ",
           "MINORITY_PROBABILITY"]

GROUP = 10  # neurons per input group
CUE_MS = 100.0
SLOT_MS = 150.0  # one cue every 150 ms, starting 50 ms into its slot
RECALL_MS = 150.0
CUE_RATE_HZ = 40.0
NOISE_RATE_HZ = 10.0
MINORITY_PROBABILITY = 0.3
_CHUNK = 256  # samples drawn at a time, to bound the dense intermediate


def _group_events(samples, steps, rate_hz, dt, generator, first_sample, first_step, first_unit):
    """Poisson spikes of one group of ``GROUP`` neurons for ``steps`` steps in each of ``samples``
    samples, as event coordinates shifted to ``first_sample``, ``first_step`` and ``first_unit``
    (a scalar or one unit offset per sample)."""
    rates = torch.full((samples, GROUP), rate_hz)
    step, sample, unit = poisson_encode(rates, steps, dt, generator).nonzero(as_tuple=True)
    return sample + first_sample, step + first_step, unit + first_unit.expand(samples)[sample]


def cue_task(*, seed: int = 0, n_cues: int = 7, delay_ms: float = 1050.0, dt: float = 1.0,
             train_samples: int = 2048, test_samples: int = 512) -> Task:
    """The cue-accumulation task (see the module docstring)."""
    n_cues = require_count("n_cues", n_cues)
    if n_cues % 2 == 0:
        raise ValueError(f"n_cues must be odd so that one side has the majority, got {n_cues}")
    dt = require_positive("dt", dt)
    delay_ms = require_non_negative("delay_ms", delay_ms)
    slot = whole_steps("the cue spacing (150 ms)", SLOT_MS, dt)
    onset = whole_steps("the cue onset (50 ms)", SLOT_MS - CUE_MS, dt)
    recall = whole_steps("the recall cue (150 ms)", RECALL_MS, dt)
    steps = n_cues * slot + whole_steps("delay_ms", delay_ms, dt) + recall
    generator = torch.Generator().manual_seed(seed)

    def split(samples):
        p_left = torch.where(torch.rand(samples, generator=generator) < 0.5,
                             MINORITY_PROBABILITY, 1.0 - MINORITY_PROBABILITY)
        right = (torch.rand(samples, n_cues, generator=generator) >= p_left[:, None]).long()
        labels = (right.sum(1) > n_cues // 2).long()
        events = []
        for first in range(0, samples, _CHUNK):
            chunk = right[first:first + _CHUNK]
            for k in range(n_cues):  # the chosen cue group of each sample, the other stays silent
                events.append(_group_events(chunk.shape[0], slot - onset, CUE_RATE_HZ, dt, generator,
                                            first, k * slot + onset, GROUP * chunk[:, k]))
            events.append(_group_events(chunk.shape[0], recall, CUE_RATE_HZ, dt, generator, first,
                                        steps - recall, torch.tensor(2 * GROUP)))
            events.append(_group_events(chunk.shape[0], steps, NOISE_RATE_HZ, dt, generator, first,
                                        0, torch.tensor(3 * GROUP)))
        sample, step, unit = (torch.cat(column) for column in zip(*events, strict=True))
        return Split(event_tensor(sample, step, unit, (samples, steps, 4 * GROUP)), labels)

    train_samples = require_count("train_samples", train_samples)
    test_samples = require_count("test_samples", test_samples)
    return Task(name="cue", train=split(train_samples), test=split(test_samples),
                n_inputs=4 * GROUP, n_outputs=2, dt=dt, kind="classification", loss_steps=recall)
