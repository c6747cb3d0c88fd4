"""Spike-timing reliability (Mainen & Sejnowski 1995, Science 268:1503).

A noisy neuron driven repeatedly by one frozen fluctuating current fires at the same times on every
trial; under a constant current of similar mean the same intrinsic noise makes the spike times drift
apart. Reliability is Schreiber et al.'s (2003) correlation measure.
"""
import math

import pytest
import torch

from neuroplastic import LIF, ResetTo, run
from neuroplastic.analysis import reliability

DT, TRIALS, STEPS = 0.1, 20, 10_000  # 1 s


def frozen_fluctuating_current(mean, std, tau_c, seed):
    """One Ornstein–Uhlenbeck sample (correlation time tau_c ms), repeated on every trial."""
    generator = torch.Generator().manual_seed(seed)
    decay = math.exp(-DT / tau_c)
    kicks = torch.randn(STEPS, generator=generator, dtype=torch.float64) * math.sqrt(1 - decay**2)
    x = torch.zeros(STEPS, dtype=torch.float64)
    for t in range(1, STEPS):  # test set-up only: the input signal, not the simulation
        x[t] = decay * x[t - 1] + kicks[t]
    return (mean + std * x)[:, None].expand(STEPS, TRIALS)


def test_reliability_measure_bounds():
    raster = torch.zeros(STEPS, 2)
    raster[1000::500] = 1.0
    assert reliability(raster, DT) == pytest.approx(1.0)
    raster[:, 1] = torch.roll(raster[:, 0], 250)  # 25 ms apart: no overlap at σ = 3 ms
    assert reliability(raster, DT) < 1e-3


def test_frozen_noise_gives_reliable_spike_times_and_dc_does_not():
    neuron = LIF(tau_m=20.0, e_l=0.0, v_th=20.0, reset=ResetTo(10.0), t_ref=2.0, sigma=1.0)
    frozen = run(neuron, frozen_fluctuating_current(20.0, 8.0, 3.0, seed=0), DT,
                 noise=torch.Generator().manual_seed(1)).spikes
    constant = run(neuron, torch.full((STEPS, TRIALS), 20.0, dtype=torch.float64), DT,
                   noise=torch.Generator().manual_seed(1)).spikes
    settled = slice(STEPS // 5, None)  # leave out the first 200 ms, where both start aligned
    rates = frozen[settled].sum(0).mean(), constant[settled].sum(0).mean()
    assert 0.7 < rates[0] / rates[1] < 1.5  # comparable firing rates
    frozen_r, constant_r = reliability(frozen[settled], DT), reliability(constant[settled], DT)
    assert frozen_r > 0.5
    assert constant_r < 0.25
    assert frozen_r > 3 * constant_r
