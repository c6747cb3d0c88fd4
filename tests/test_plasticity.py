"""Pair and triplet STDP against closed forms written from the papers' definitions: sums over all
spike pairs (and triplets) of exponentials, computed here naively from the spike times."""
import math

import pytest
import torch

from neuroplastic.rules import StepInfo, apply_changes, bound, chain
from neuroplastic.rules.stdp import AllToAll, Nearest, PairSTDP, SoftBounds
from neuroplastic.rules.triplet import TripletSTDP

F64 = torch.float64


def events(rule, spike_list, weight, steps_dt):
    """Drive ``rule`` through ``spike_list`` = [(dt since last call, pre (n_pre,), post (n_post,)), …]:
    the traces decay exactly over any dt, so a protocol needs one call per event, not per ms."""
    params, state = (weight,), rule.init((weight,))
    for t, (gap, pre, post) in enumerate(spike_list):
        info = StepInfo(t, len(spike_list), gap, pre[None].to(F64), post[None].to(F64))
        changes, state = rule.update(info, state, params)
        apply_changes(params, changes)
    return params[0]


def pair_protocol(delays_ms, t_post=200.0):
    """One post spike at ``t_post``; presynaptic neuron j fires once at ``t_post − delays_ms[j]``."""
    times = sorted({t_post - d for d in delays_ms} | {t_post})
    out, last = [], 0.0
    for time in times:
        pre = torch.tensor([float(abs(t_post - d - time) < 1e-9) for d in delays_ms])
        post = torch.tensor([float(abs(time - t_post) < 1e-9)])
        out.append((time - last, pre, post))
        last = time
    return out


def window(delta_t, a_plus, a_minus, tau_plus, tau_minus):  # Bi & Poo / Song et al.
    if delta_t >= 0:
        return a_plus * math.exp(-delta_t / tau_plus)
    return -a_minus * math.exp(delta_t / tau_minus)


def test_pair_stdp_reproduces_the_exponential_window_of_isolated_pairs():
    rule = PairSTDP(tau_plus=16.8, tau_minus=33.7, a_plus=0.01, a_minus=0.012)
    delays = [-100.0, -40.0, -10.0, -0.5, 0.0, 0.5, 10.0, 40.0, 100.0]
    w = events(rule, pair_protocol(delays), torch.zeros(1, len(delays), dtype=F64), None)
    expected = [window(d, 0.01, 0.012, 16.8, 33.7) for d in delays]
    torch.testing.assert_close(w[0], torch.tensor(expected, dtype=F64), rtol=1e-12, atol=0)
    torch.testing.assert_close(rule.window(torch.tensor(delays)), torch.tensor(expected, dtype=F64))


def test_on_a_time_grid_the_window_is_exact_too():
    # The same pairs on a 0.1 ms grid: one call per step, decays composed step by step.
    rule, dt = PairSTDP(tau_plus=20.0, tau_minus=20.0, a_plus=1.0, a_minus=1.05), 0.1
    delays = [-30.0, -5.0, 5.0, 30.0]
    steps = 1000
    pre, post = torch.zeros(steps, 4, dtype=F64), torch.zeros(steps, 1, dtype=F64)
    post[500, 0] = 1.0
    for j, d in enumerate(delays):
        pre[500 - round(d / dt), j] = 1.0
    params, state = (torch.zeros(1, 4, dtype=F64),), None
    for t in range(steps):
        changes, state = rule.update(StepInfo(t, steps, dt, pre[t:t + 1], post[t:t + 1]), state, params)
        apply_changes(params, changes)
    expected = [window(d, 1.0, 1.05, 20.0, 20.0) for d in delays]
    torch.testing.assert_close(params[0][0], torch.tensor(expected, dtype=F64), rtol=1e-9, atol=0)


def test_all_to_all_sums_every_pair_and_nearest_only_the_latest():
    # Pre spikes 5 and 25 ms before one post spike, then a post spike 10 ms after that.
    protocol = [(1.0, torch.tensor([1.0]), torch.tensor([0.0])),
                (20.0, torch.tensor([1.0]), torch.tensor([0.0])),
                (5.0, torch.tensor([0.0]), torch.tensor([1.0])),
                (10.0, torch.tensor([0.0]), torch.tensor([1.0]))]
    tau = 20.0
    all_to_all = events(PairSTDP(tau, tau, 1.0, 0.0, pairing=AllToAll()), protocol, torch.zeros(1, 1, dtype=F64), None)
    nearest = events(PairSTDP(tau, tau, 1.0, 0.0, pairing=Nearest()), protocol, torch.zeros(1, 1, dtype=F64), None)
    e = lambda d: math.exp(-d / tau)  # noqa: E731
    assert all_to_all.item() == pytest.approx(e(5) + e(25) + e(15) + e(35), rel=1e-12)
    assert nearest.item() == pytest.approx(e(5) + e(15), rel=1e-12)


def test_nearest_depression_pairs_a_pre_spike_with_the_latest_post_spike_only():
    protocol = [(1.0, torch.tensor([0.0]), torch.tensor([1.0])),
                (10.0, torch.tensor([0.0]), torch.tensor([1.0])),
                (4.0, torch.tensor([1.0]), torch.tensor([0.0]))]
    nearest = events(PairSTDP(20.0, 20.0, 0.0, 1.0, pairing=Nearest()), protocol, torch.zeros(1, 1, dtype=F64), None)
    all_to_all = events(PairSTDP(20.0, 20.0, 0.0, 1.0), protocol, torch.zeros(1, 1, dtype=F64), None)
    assert nearest.item() == pytest.approx(-math.exp(-4 / 20), rel=1e-12)
    assert all_to_all.item() == pytest.approx(-math.exp(-4 / 20) - math.exp(-14 / 20), rel=1e-12)


def test_soft_bounds_scale_potentiation_by_distance_to_w_max_and_depression_by_w():
    w0 = torch.tensor([[0.0, 0.25, 0.5, 1.5]], dtype=F64)  # w_max = 2
    rule = PairSTDP(10.0, 10.0, 0.1, 0.1, weight_dependence=SoftBounds(w_max=2.0, mu=1.0))
    ltp = events(rule, [(1.0, torch.ones(4), torch.zeros(1)), (3.0, torch.zeros(4), torch.ones(1))], w0.clone(), None)
    torch.testing.assert_close(ltp - w0, 0.1 * math.exp(-0.3) * (1 - w0 / 2.0))
    ltd = events(rule, [(1.0, torch.zeros(4), torch.ones(1)), (3.0, torch.ones(4), torch.zeros(1))], w0.clone(), None)
    torch.testing.assert_close(ltd - w0, -0.1 * math.exp(-0.3) * (w0 / 2.0))


def test_hard_bounds_through_the_bound_combinator_keep_weights_in_range():
    gen = torch.Generator().manual_seed(0)
    rule = chain(PairSTDP(20.0, 20.0, 0.3, 0.35), bound(0.0, 1.0))
    params, state = (torch.rand(3, 50, generator=gen),), None
    state = rule.init(params)
    for t in range(400):
        pre = (torch.rand(1, 50, generator=gen) < 0.05).float()
        post = (torch.rand(1, 3, generator=gen) < 0.05).float()
        changes, state = rule.update(StepInfo(t, 400, 1.0, pre, post), state, params)
        apply_changes(params, changes)
    assert params[0].min() >= 0.0 and params[0].max() <= 1.0
    assert (params[0] == 0).any() and (params[0] == 1).any()  # the bounds were reached, not avoided


def triplet_reference(pre_times, post_times, p):
    """Δw of all-to-all triplet STDP from the spike times, straight from Pfister & Gerstner's eq. (1)–(2)."""
    total = 0.0
    for t in post_times:  # potentiation: r1(t) [A2+ + A3+ o2(t−ε)]
        r1 = sum(math.exp(-(t - s) / p.tau_plus) for s in pre_times if s <= t)
        o2 = sum(math.exp(-(t - s) / p.tau_y) for s in post_times if s < t)
        total += r1 * (p.a2_plus + p.a3_plus * o2)
    for t in pre_times:  # depression: o1(t) [A2− + A3− r2(t−ε)]
        o1 = sum(math.exp(-(t - s) / p.tau_minus) for s in post_times if s < t)
        r2 = sum(math.exp(-(t - s) / p.tau_x) for s in pre_times if s < t)
        total -= o1 * (p.a2_minus + p.a3_minus * r2)
    return total


def pairing(frequency_hz, delta_ms, pairs=60):
    period = 1000.0 / frequency_hz
    pre = [k * period + 20.0 for k in range(pairs)]
    return pre, [t + delta_ms for t in pre]


def event_protocol(pre_times, post_times):
    times = sorted(set(pre_times) | set(post_times))
    out, last = [], 0.0
    for time in times:
        out.append((time - last, torch.tensor([float(time in pre_times)]), torch.tensor([float(time in post_times)])))
        last = time
    return out


@pytest.mark.parametrize("delta", [10.0, -10.0])
def test_triplet_stdp_matches_the_closed_form_and_potentiation_grows_with_pairing_frequency(delta):
    rule = TripletSTDP()
    measured = []
    for frequency in [0.1, 1.0, 10.0, 20.0, 30.0, 40.0, 50.0]:
        pre, post = pairing(frequency, delta)
        w = events(rule, event_protocol(pre, post), torch.zeros(1, 1, dtype=F64), None).item()
        assert w == pytest.approx(triplet_reference(pre, post, rule), rel=1e-10, abs=1e-15)
        measured.append(w)
    if delta > 0:  # pre-before-post: no change at 0.1 Hz, potentiation growing with frequency
        assert all(b > a for a, b in zip(measured, measured[1:]))
        assert abs(measured[0]) < 1e-3 * measured[-1]
    else:  # Sjöström et al. 2001: post-before-pre depresses up to 20 Hz and potentiates at 40–50 Hz
        assert max(measured[:4]) < 0 < measured[-2] < measured[-1]


def test_triplet_with_zero_triplet_amplitudes_is_pair_stdp():
    gen = torch.Generator().manual_seed(1)
    triplet = TripletSTDP(a2_plus=0.01, a3_plus=0.0, a2_minus=0.012, a3_minus=0.0)
    pair = PairSTDP(16.8, 33.7, 0.01, 0.012)
    pre = (torch.rand(300, 1, 20, generator=gen) < 0.05).to(F64)
    post = (torch.rand(300, 1, 4, generator=gen) < 0.05).to(F64)
    results = []
    for rule in (triplet, pair):
        params, state = (torch.zeros(4, 20, dtype=F64),), None
        for t in range(300):
            changes, state = rule.update(StepInfo(t, 300, 0.5, pre[t], post[t]), state, params)
            apply_changes(params, changes)
        results.append(params[0])
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make", [
    lambda: PairSTDP(tau_plus=-1.0), lambda: PairSTDP(tau_minus=0.0), lambda: PairSTDP(a_plus=float("nan")),
    lambda: PairSTDP(a_minus=-0.1), lambda: SoftBounds(w_max=0.0), lambda: TripletSTDP(tau_y=-5.0),
    lambda: TripletSTDP(a3_plus=float("inf")),
])
def test_bad_parameters_are_named(make):
    with pytest.raises(ValueError, match="tau|a_|a3|w_max"):
        make()


def test_mismatched_shapes_and_bad_dt_are_refused():
    rule = PairSTDP()
    with pytest.raises(ValueError, match="does not fit"):
        rule.update(StepInfo(0, 1, 1.0, torch.zeros(1, 5), torch.zeros(1, 2)), None, (torch.zeros(2, 4),))
    with pytest.raises(ValueError, match="dt"):
        rule.update(StepInfo(0, 1, -1.0, torch.zeros(1, 4), torch.zeros(1, 2)), None, (torch.zeros(2, 4),))
