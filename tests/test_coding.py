"""Encoders and rate estimators against probability theory, closed forms and numpy/scipy."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from neuroplastic.coding import (
    CausalExponentialKernel,
    GaussianKernel,
    RectangularKernel,
    binned_rate,
    count_rate,
    kernel_rate,
    latency_encode,
    poisson_encode,
)
from neuroplastic.synapses import Trace


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _regular_train(steps, period_steps, neurons=1, dtype=torch.float64):
    spikes = torch.zeros(steps, neurons, dtype=dtype)
    spikes[::period_steps] = 1.0
    return spikes


# ----------------------------------------------------------------------------------------- poisson


def test_poisson_rate_is_within_three_standard_errors():
    dt, steps = 1.0, 1000
    requested = torch.tensor([5.0, 20.0, 80.0])
    spikes = poisson_encode(requested.reshape(3, 1).expand(3, 1000), steps, dt, _gen())
    assert spikes.shape == (steps, 3, 1000) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    for i, rate in enumerate(requested.tolist()):
        p, n = rate * dt / 1000, spikes[:, i].numel()
        standard_error = math.sqrt(p * (1 - p) / n) * 1000 / dt  # of the rate estimate, Hz
        empirical = spikes[:, i].mean().item() * 1000 / dt
        assert abs(empirical - rate) < 3 * standard_error


def test_poisson_intervals_are_geometric_with_cv_near_one():
    dt, rate = 1.0, 20.0
    p = rate * dt / 1000
    spikes = poisson_encode(torch.full((50,), rate), 20000, dt, _gen(1)).numpy()
    isis = np.concatenate([np.diff(np.flatnonzero(spikes[:, i])) for i in range(50)])
    assert len(isis) > 15000
    # Bernoulli steps: geometric intervals, mean 1/p steps, CV √(1 − p) ≈ 0.99.
    cv = isis.std() / isis.mean()
    assert cv == pytest.approx(math.sqrt(1 - p), abs=0.02)
    assert isis.mean() == pytest.approx(1 / p, rel=0.02)
    edges = np.append(np.arange(1, 200, 5), np.inf)
    observed = np.histogram(isis, bins=edges)[0]
    expected = np.diff(scipy.stats.geom.cdf(edges - 1, p)) * len(isis)
    expected *= observed.sum() / expected.sum()
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_poisson_is_reproducible_and_handles_the_extremes():
    rates = torch.tensor([0.0, 50.0, 1000.0])
    a = poisson_encode(rates, 500, 1.0, _gen(7))
    torch.testing.assert_close(a, poisson_encode(rates, 500, 1.0, _gen(7)))
    assert not torch.equal(a, poisson_encode(rates, 500, 1.0, _gen(8)))
    assert a[:, 0].sum() == 0 and a[:, 2].sum() == 500  # p = 0 never fires, p = 1 always
    assert poisson_encode(20.0, 4, 0.5).shape == (4,)


@pytest.mark.parametrize("rates, steps, dt, message", [
    ([10.0, -1.0], 10, 1.0, "non-negative"),
    ([10.0, float("nan")], 10, 1.0, "NaN"),
    ([600.0], 10, 2.0, "<= 1"),
    ([10.0], 0, 1.0, "steps"),
    ([10.0], 10, 0.0, "dt"),
])
def test_poisson_rejects_bad_inputs(rates, steps, dt, message):
    with pytest.raises(ValueError, match=message):
        poisson_encode(torch.tensor(rates), steps, dt)


# ----------------------------------------------------------------------------------------- latency


def test_latency_exact_spike_times():
    values = torch.tensor([1.0, 0.5, 0.0, 0.25, 0.9, 0.33])
    spikes = latency_encode(values, 11)
    assert spikes.shape == (11, 6)
    torch.testing.assert_close(spikes.sum(0), torch.ones(6))
    # t = round((1 − x)·10): 0, 5, 10, 7.5 → 8 (ties to even), 1, 6.7 → 7
    assert spikes.argmax(0).tolist() == [0, 5, 10, 8, 1, 7]


def test_latency_order_and_threshold():
    values = torch.rand(2, 300, generator=_gen())
    spikes = latency_encode(values, 50, threshold=0.2)
    fired = spikes.sum(0)
    assert torch.equal(fired, (values >= 0.2).float())
    times = spikes.argmax(0)[values >= 0.2]
    order = torch.argsort(values[values >= 0.2], descending=True)
    assert torch.all(times[order].diff() >= 0)  # larger values never fire later
    assert latency_encode(torch.tensor([0.7]), 1).tolist() == [[1.0]]


@pytest.mark.parametrize("values, kwargs, message", [
    ([0.5, 1.2], {}, r"\[0, 1\]"),
    ([-0.1], {}, r"\[0, 1\]"),
    ([0.5, float("nan")], {}, "NaN"),
    ([0.5], dict(threshold=2.0), "threshold"),
])
def test_latency_rejects_bad_inputs(values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        latency_encode(torch.tensor(values), 10, **kwargs)


# ---------------------------------------------------------------------------------- rate estimators


def test_count_rate_of_a_regular_train_is_exact():
    dt = 0.5
    spikes = _regular_train(2000, 50)  # one spike every 25 ms for 1 s: 40 Hz
    assert count_rate(spikes, dt).tolist() == [40.0]
    assert count_rate(spikes, dt, start=100.0, stop=600.0).tolist() == [40.0]
    assert count_rate(spikes, dt, start=0.0, stop=12.5).tolist() == [80.0]  # 1 spike in 12.5 ms


def test_binned_rate_is_exact_per_bin():
    dt = 0.5
    slow, fast = _regular_train(1000, 50), _regular_train(1100, 20)  # 40 Hz then 100 Hz
    rates = binned_rate(torch.cat([slow, fast]), dt, 100.0)
    assert rates.shape == (10, 1)  # 1050 ms: the last 50 ms are not a full bin
    assert rates[:, 0].tolist() == [40.0] * 5 + [100.0] * 5
    assert binned_rate(torch.ones(6, 2, 3), 1.0, 1.0).shape == (6, 2, 3)


def test_gaussian_kernel_rate_of_a_regular_train_is_flat_away_from_the_edges():
    dt, sigma = 0.5, 25.0
    rates = kernel_rate(_regular_train(8000, 50), dt, GaussianKernel(sigma))
    edge = int(4 * sigma / dt) + 1
    interior = rates[edge:-edge, 0]
    assert torch.all((interior / 40.0 - 1).abs() < 0.01)
    # At t = 0 only the spikes at t ≥ 0 count: half the sum, plus half the centre term
    # (Euler–Maclaurin; the Gaussian's odd derivatives vanish at 0): ν/2 + K(0)/2.
    half_centre = 500.0 / (sigma * math.sqrt(2 * math.pi))
    assert rates[0, 0].item() == pytest.approx(20.0 + half_centre, rel=1e-3)


def test_gaussian_kernel_rate_matches_the_poisson_summation_formula():
    # A periodic train (period P, rate ν = 1/P) smoothed by a unit Gaussian is
    # ν [1 + 2 Σ_n exp(−2π²n²σ²/P²) cos(2πn t/P)].
    dt, period, sigma = 0.5, 25.0, 10.0
    rates = kernel_rate(_regular_train(4000, 50), dt, GaussianKernel(sigma, truncate=8.0))[:, 0]
    t = torch.arange(4000, dtype=torch.float64) * dt
    closed_form = 40.0 * (1 + 2 * sum(
        math.exp(-2 * (math.pi * n * sigma / period) ** 2) * torch.cos(2 * math.pi * n * t / period)
        for n in range(1, 8)
    ))
    edge = int(8 * sigma / dt) + 1
    torch.testing.assert_close(rates[edge:-edge], closed_form[edge:-edge], rtol=1e-10, atol=0)
    assert (rates[edge:-edge].max() / 40.0 - 1) > 0.08  # the ripple is real at σ = 0.4 P


def test_kernel_rate_equals_numpy_convolution():
    # r_t = Σ_k K_k s_{t−k}: a 'full' numpy convolution cut back to the recording.
    spikes = (torch.rand(300, 3, generator=_gen(4)) < 0.05).double()
    for kernel in [GaussianKernel(3.0), RectangularKernel(4.0), RectangularKernel(5.0),
                   CausalExponentialKernel(6.0)]:
        lags, values = kernel.sample(1.0)
        first = int(lags[0])
        expected = np.stack([
            np.convolve(spikes[:, i].numpy(), values.numpy() * 1000)[-first: -first + 300]
            for i in range(3)
        ], axis=1)
        np.testing.assert_allclose(kernel_rate(spikes, 1.0, kernel).numpy(), expected, rtol=1e-12)


def test_kernel_alignment_of_a_single_spike():
    spikes = torch.zeros(100, dtype=torch.float64)
    spikes[50] = 1.0
    gauss = kernel_rate(spikes, 1.0, GaussianKernel(5.0))
    assert gauss.argmax().item() == 50 and torch.allclose(gauss[50:80], gauss[21:51].flip(0))
    causal = kernel_rate(spikes, 1.0, CausalExponentialKernel(5.0))
    assert torch.all(causal[:50] == 0) and causal.argmax().item() == 50
    rect = kernel_rate(spikes, 1.0, RectangularKernel(4.0))  # lags −2 … 1
    assert torch.nonzero(rect).flatten().tolist() == [48, 49, 50, 51]
    assert rect[48:52].tolist() == [250.0] * 4  # 1 spike / 4 ms


@pytest.mark.parametrize("kernel, dt", [
    (GaussianKernel(5.0), 0.1), (GaussianKernel(0.3), 1.0), (RectangularKernel(10.0), 0.5),
    (CausalExponentialKernel(20.0), 0.25),
])
def test_kernels_have_unit_area(kernel, dt):
    lags, values = kernel.sample(dt)
    assert (values.sum() * dt).item() == pytest.approx(1.0, rel=1e-12)
    assert torch.all(values >= 0)


def test_kernel_samples_match_the_continuous_densities():
    lags, values = GaussianKernel(5.0).sample(0.05)
    # Only the mass beyond ±4σ (6.3e-5) is redistributed by the normalization.
    np.testing.assert_allclose(values, scipy.stats.norm.pdf(lags, scale=5.0), rtol=1e-4)
    dt, tau = 0.01, 10.0
    lags, values = CausalExponentialKernel(tau).sample(dt)
    # The left Riemann sum of e^{−t/τ}/τ is 1 + dt/2τ + O(dt²) and the cut at 10τ drops e^{−10}
    # of the mass: the normalized samples are the density divided by both factors.
    area = (1 + dt / (2 * tau)) * (1 - math.exp(-10.0))
    np.testing.assert_allclose(values, scipy.stats.expon.pdf(lags, scale=tau) / area, rtol=1e-6)


def test_causal_exponential_kernel_rate_is_a_normalized_trace():
    dt, tau = 0.5, 20.0
    spikes = (torch.rand(2000, 4, generator=_gen(5)) < 0.02).double()
    trace = Trace(tau, jump=(1 - math.exp(-dt / tau)) * 1000 / dt)  # unit area on the grid
    x, filtered = trace.init((4,), dtype=torch.float64), []
    for s in spikes:
        x = trace.step(x, s, dt)
        filtered.append(x)
    rates = kernel_rate(spikes, dt, CausalExponentialKernel(tau, truncate=30.0))
    torch.testing.assert_close(rates, torch.stack(filtered), rtol=1e-10, atol=1e-10)


def test_kernel_rate_of_poisson_trains_averages_to_the_rate():
    rate, dt = 30.0, 1.0
    spikes = poisson_encode(torch.full((200,), rate), 2000, dt, _gen(6))
    edge = 81  # beyond the 4σ reach of the kernel
    estimate = kernel_rate(spikes, dt, GaussianKernel(20.0))[edge:-edge].mean().item()
    seconds = 200 * (2000 - 2 * edge) * dt / 1000
    assert abs(estimate - rate) < 3 * math.sqrt(rate * seconds) / seconds
    rates = kernel_rate(spikes.reshape(2000, 10, 20), dt, RectangularKernel(50.0))
    assert rates.shape == (2000, 10, 20)


@pytest.mark.parametrize("call, message", [
    (lambda s: binned_rate(s, 1.0, 0.5), "smaller than one step"),
    (lambda s: binned_rate(s, 1.0, 2.5), "multiple of dt"),
    (lambda s: binned_rate(s, 1.0, 200.0), "shorter than one bin"),
    (lambda s: count_rate(s, 1.0, start=0.5), "multiple of dt"),
    (lambda s: count_rate(s, 1.0, start=50.0, stop=50.0), "non-empty"),
    (lambda s: count_rate(s, 1.0, stop=101.0), "inside the recording"),
    (lambda s: count_rate(s, 0.0), "dt"),
    (lambda s: kernel_rate(s, 1.0, RectangularKernel(0.5)), "smaller than dt"),
    (lambda s: kernel_rate(-s, 1.0, GaussianKernel(2.0)), "non-negative"),
    (lambda s: count_rate(s * float("nan"), 1.0), "NaN"),
    (lambda s: count_rate(torch.tensor(1.0), 1.0), "time first"),
])
def test_rate_estimators_reject_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.ones(100, 2))


@pytest.mark.parametrize("make", [
    lambda: GaussianKernel(0.0),
    lambda: GaussianKernel(-1.0),
    lambda: RectangularKernel(float("nan")),
    lambda: CausalExponentialKernel(0.0),
])
def test_kernels_reject_non_positive_widths(make):
    with pytest.raises(ValueError, match="must be positive|finite"):
        make()
