"""Spike timing: classes told apart only by the relative timing of spikes across channels, over a span
several times a membrane time constant — a task that needs synaptic delays.

``channels`` groups of ``per_channel`` input neurons. Each class is a permutation of the channels over
the slots ``0, spacing, 2·spacing, …`` (drawn once from the seed): in a sample of class ``k``, channel
``c`` fires once, at ``t₀ + o_{k,c}``, where the onset ``t₀`` is drawn uniformly over the sequence so
that absolute times say nothing. Each of the channel's neurons fires at that time (jittered by up to
``jitter`` steps) with probability ``reliability``; every input also fires at random, ``noise`` spikes
per step. Every class has the same spikes per channel and every pair of channel spikes is at least
``spacing`` steps apart, so a neuron whose memory is shorter than the spacing (the recipe: τ_m = 5
steps, spacing 10, offsets up to 40) sees the same isolated events in every class, and a readout
that integrates without leak (the recipe's) sees the same counts: only neurons that re-align the
channels by delays, ``d_c ≈ o_max − o_{k,c}``, detect a class by the coincidence of its spikes.
"""
from __future__ import annotations

import itertools

import torch

from neuroplastic.tasks.base import Split, Task, event_tensor
from neuroplastic.validation import require_count, require_finite, require_non_negative

__all__ = ["timing_task"]


def timing_task(*, seed: int = 0, classes: int = 4, channels: int = 3, per_channel: int = 8, spacing: int = 20,
                steps: int = 100, samples_per_class: int = 300, test_fraction: float = 0.25, jitter: int = 1,
                reliability: float = 0.9, noise: float = 0.002, dt: float = 1.0) -> Task:
    """The spike-timing task (see the module docstring)."""
    classes, channels = require_count("classes", classes, minimum=2), require_count("channels", channels, minimum=2)
    per_channel, spacing = require_count("per_channel", per_channel), require_count("spacing", spacing)
    span = spacing * (channels - 1) + 2 * require_count("jitter", jitter, minimum=0)
    if channels > 8:
        raise ValueError(f"channels must be at most 8 (their orders are enumerated), got {channels}")
    if require_count("steps", steps) <= span:
        raise ValueError(f"steps = {steps} leave no room for the {span}-step pattern (spacing · (channels − 1) "
                         "+ 2 · jitter); give more steps")
    if not 0 < require_finite("reliability", reliability) <= 1 or not 0 < require_finite("test_fraction",
                                                                                          test_fraction) < 1:
        raise ValueError("reliability must lie in (0, 1] and test_fraction in (0, 1)")
    noise = require_non_negative("noise", noise)
    generator = torch.Generator().manual_seed(seed)
    orders = list(itertools.permutations(range(channels)))
    if classes > len(orders):
        raise ValueError(f"{channels} channels have {len(orders)} orders, fewer than {classes} classes")
    chosen = torch.randperm(len(orders), generator=generator)[:classes]
    offsets = torch.tensor([orders[i] for i in chosen]) * spacing  # (classes, channels): slot of each channel
    count = classes * require_count("samples_per_class", samples_per_class)
    test = round(test_fraction * count)
    if not 0 < test < count:
        raise ValueError(f"test_fraction = {test_fraction!r} leaves no training or no test samples out of "
                         f"{count} (classes · samples_per_class)")
    labels = torch.arange(classes).repeat_interleave(samples_per_class)
    labels = labels[torch.randperm(count, generator=generator)]
    onsets = torch.randint(jitter, steps - span + jitter, (count,), generator=generator)
    unit = torch.arange(channels * per_channel)
    times = onsets[:, None] + offsets[labels].repeat_interleave(per_channel, 1)  # (count, inputs)
    times = times + torch.randint(-jitter, jitter + 1, times.shape, generator=generator)
    fires = torch.rand(times.shape, generator=generator) < reliability
    sample, neuron = torch.nonzero(fires, as_tuple=True)
    background = torch.nonzero(torch.rand(count, steps, len(unit), generator=generator) < noise, as_tuple=True)
    inputs = event_tensor(torch.cat([sample, background[0]]), torch.cat([times[sample, neuron], background[1]]),
                          torch.cat([neuron, background[2]]), (count, steps, len(unit)))
    inputs = torch.sparse_coo_tensor(inputs.indices(), inputs.values().clamp(max=1.0), inputs.shape,
                                     check_invariants=True).coalesce()
    train_split = Split(inputs.index_select(0, torch.arange(test, count)), labels[test:])
    test_split = Split(inputs.index_select(0, torch.arange(test)), labels[:test])
    return Task(name="timing", train=train_split, test=test_split, n_inputs=len(unit), n_outputs=classes, dt=dt,
                kind="classification", loss_steps=1)
