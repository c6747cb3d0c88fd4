"""``distal-reward`` (Izhikevich 2007): the published code's STDP bookkeeping, the eligibility and
dopamine closed forms, the reward clock's timing and delay statistics, the fast path against the
step path built from the library's rules, and the experiment end to end (full run: slow)."""
import json
import math

import numpy as np
import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.experiments import get_experiment
from neuroplastic.experiments.distal_network import (
    WINDOW,
    DistalNetwork,
    RewardClock,
    simulate_fast,
    simulate_steps,
)
from neuroplastic.rules import StepInfo


def published_sd(pre_times, post_times, steps):
    """The code's bookkeeping for one synapse (neuron 1 → neuron 2, D = 1), transliterated from
    ``dastdp.m``: ``STDP(fired, t+D) = 0.1``; a post spike adds ``STDP(pre, t)``, a pre spike subtracts
    ``1.5 STDP(post, t+D)``; then ``STDP(:, t+D+1) = 0.95 STDP(:, t+D)``. Columns are 1-based as there."""
    stdp = np.zeros((3, steps + 3))
    sd = 0.0
    for t in range(1, steps + 1):
        fired = [k for k, times in ((1, pre_times), (2, post_times)) if t in times]
        for k in fired:
            stdp[k, t + 1] = 0.1
        if 2 in fired:
            sd += stdp[1, t]
        if 1 in fired:
            sd -= 1.5 * stdp[2, t + 1]
        stdp[:, t + 2] = 0.95 * stdp[:, t + 1]
    return sd


def library_sd(net, pre_times, post_times, steps):
    """The same pair through ``net.stdp()`` (PairSTDP, nearest): ``pre`` is the spike *arriving*."""
    rule, w = net.stdp(), torch.zeros(1, 1, dtype=torch.float64)
    state, total = rule.init((w,)), 0.0
    for t in range(1, steps + 2):
        pre = torch.tensor([[float(t - 1 in pre_times)]], dtype=torch.float64)
        post = torch.tensor([[float(t in post_times)]], dtype=torch.float64)
        (change,), state = rule.update(StepInfo(t, steps + 2, 1.0, pre, post), state, (w,))
        total += float(change)
    return total


@pytest.mark.parametrize("delta", [-40, -7, -1, 0, 1, 2, 5, 19, 60])
def test_stdp_window_of_an_isolated_pair_is_the_published_one(delta):
    net = DistalNetwork()
    pre, post = {100}, {100 + delta}
    expected = 0.1 * 0.95 ** (delta - 1) if delta >= 1 else -0.15 * 0.95 ** (-delta)
    assert published_sd(pre, post, 300) == pytest.approx(expected, rel=1e-12)
    assert library_sd(net, pre, post, 300) == pytest.approx(expected, rel=1e-12)


def test_stdp_of_spike_trains_equals_the_published_bookkeeping():
    # Random trains with bursts and coincidences: nearest-spike pairing as in the code (traces set to 0.1).
    gen = np.random.default_rng(4)
    for _ in range(5):
        pre = set(np.flatnonzero(gen.random(400) < 0.05).tolist()) - {0}
        post = set(np.flatnonzero(gen.random(400) < 0.05).tolist()) - {0}
        assert library_sd(DistalNetwork(), pre, post, 400) == pytest.approx(published_sd(pre, post, 400),
                                                                           rel=1e-12, abs=1e-14)


def test_eligibility_and_dopamine_follow_the_closed_form():
    # One STDP change Δ in the first window, one release at step r: after window n (steps 10n+9)
    # s = s0 + Δ Σ_k 0.99^k (0.002 + 0.5·0.995^(10k+9−r) [10k+9 ≥ r]), the code's updates in closed form.
    net = DistalNetwork()
    rule, dopamine = net.modulated(), net.dopamine()
    w = torch.full((1, 1), 1.0, dtype=torch.float64)
    state, level, delta, r, windows = rule.init((w,)), dopamine.init(), 0.3, 23, 40
    spikes = torch.zeros(1, 1)
    for t in range(windows * WINDOW):
        da, level = dopamine.step(level, torch.tensor(0.5 if t == r else 0.0, dtype=torch.float64), 1.0)
        if (t + 1) % WINDOW == 0:
            summed = (torch.full((1, 1), delta if t < WINDOW else 0.0, dtype=torch.float64),)
            info = StepInfo(t // WINDOW, windows, 10.0, spikes, spikes)
            (change,), state = rule.update(info, state, (w,), reward=da, stdp=summed)
            w += change
    k = np.arange(windows)
    tonic = 0.002 * (1 - 0.99 ** windows) / (1 - 0.99)
    ks = k[10 * k + 9 >= r]
    phasic = 0.5 * 0.995 ** (10 * ks[0] + 9 - r) * 0.99 ** ks[0] * (1 - (0.99 * 0.995 ** 10) ** len(ks)) / (
        1 - 0.99 * 0.995 ** 10)
    assert float(w) == pytest.approx(1.0 + delta * (tonic + phasic), rel=1e-12)
    assert float(level) == pytest.approx(0.5 * 0.995 ** (windows * WINDOW - 1 - r), rel=1e-12)


def test_bounds_clip_the_weight():
    net = DistalNetwork()
    rule, w = net.modulated(), torch.tensor([[3.9, 0.05]], dtype=torch.float64)
    info = StepInfo(0, 1, 10.0, torch.zeros(1, 2), torch.zeros(1, 1))
    (change,), _ = rule.update(info, rule.init((w,)), (w,), reward=torch.tensor(1.0),
                               stdp=(torch.tensor([[1.0, -1.0]], dtype=torch.float64),))
    assert (w + change).tolist() == [[4.0, 0.0]]


def test_reward_clock_timing():
    clock = RewardClock(3, 7, torch.Generator().manual_seed(0))
    clock.observe(100, [3])
    clock.observe(100, [])
    clock.observe(100 + 20, [7])  # 20 ms after pre: too late
    clock.observe(200, [3, 7])  # same ms: no reward (the code needs n2f(end) > n1f(end))
    assert clock.due == set() and clock.pairings == []
    clock.observe(219, [7])  # 19 ms after the pre spike at 200
    (due,) = clock.due
    assert 219 + 1001 <= due <= 219 + 3000 and clock.pairings == [219]
    assert all(clock.release(t) == 0.0 for t in range(219, due))
    assert clock.release(due) == 0.5 and clock.release(due) == 0.0 and clock.due == set()


def test_reward_delays_are_uniform_on_1001_to_3000_ms():
    clock = RewardClock(0, 1, torch.Generator().manual_seed(1))
    n = 20_000
    for i in range(n):
        t = 10_000 * i
        clock.observe(t, [0])
        clock.observe(t + 5, [1])
    delays = np.array(sorted(clock.due)) - (10_000 * np.arange(n) + 5)
    assert delays.min() >= 1001 and delays.max() <= 3000
    mean, var = 2000.5, (2000 ** 2 - 1) / 12  # discrete uniform on 2000 values
    assert abs(delays.mean() - mean) < 5 * math.sqrt(var / n)
    assert delays.var() == pytest.approx(var, rel=0.05)
    counts = np.histogram(delays, bins=4, range=(1000.5, 3000.5))[0]
    assert np.all(np.abs(counts - n / 4) < 5 * math.sqrt(n / 4 * 0.75))


def test_fast_path_equals_the_step_path_of_library_rules():
    # A small network driven harder, with short reward delays and a big release, so that 2 s hold
    # rewards and weights at both bounds.
    net = DistalNetwork(n_exc=40, n_inh=10, m=8, noise=20.0, reward_interval=60, reward_delay=(20, 200),
                        da_release=5.0)
    post = net.targets(torch.Generator().manual_seed(1))
    s_ref, spikes_ref, releases_ref = simulate_steps(net, post, 2005, 2)
    fast = simulate_fast(net, post, 2005, 2, keep_spikes=True)
    assert fast["spikes"] == spikes_ref and len(spikes_ref) > 300
    assert fast["releases"] == releases_ref and len(releases_ref) >= 1
    np.testing.assert_allclose(fast["s"], s_ref, rtol=0, atol=1e-12)
    assert (s_ref == 0).any() and (s_ref == net.s_max).any() and s_ref[0, 0] > 0  # target started at 0
    # every pairing the clock rewarded is in the spike record: post of the target 1–59 ms after pre
    target_post = post[0, 0]
    pre_times = np.array([t for t, i in spikes_ref if i == 0])
    for t in fast["pairings"]:
        assert (t, target_post) in spikes_ref
        assert 0 < t - pre_times[pre_times <= t].max() < 60


def test_network_connectivity_follows_the_paper():
    net = DistalNetwork()
    post = net.targets(torch.Generator().manual_seed(0))
    assert post.shape == (1000, 100)
    assert all(len(set(row)) == 100 for row in post.tolist())  # distinct targets
    assert not (post == np.arange(1000)[:, None]).any()  # no autapses
    assert post[800:].max() < 800 and post[:800].max() >= 800  # inhibitory → excitatory only
    rs, fs = net.neurons()
    assert (rs.a, rs.b, rs.c, rs.d) == (0.02, 0.2, -65.0, 8.0) and (fs.a, fs.d) == (0.1, 2.0)


@pytest.mark.parametrize("changes, match", [({"m": 0}, "m"), ({"n_exc": 10, "m": 20}, "distinct"),
                                            ({"reward_delay": (3000, 1001)}, "reward_delay"),
                                            ({"da_decay": 1.5}, "da_decay"), ({"s_init": 5.0}, "s_init")])
def test_bad_parameters_raise(changes, match):
    with pytest.raises(ValueError, match=match):
        DistalNetwork(**changes)


def test_bad_duration_raises():
    with pytest.raises(ValueError, match="duration"):
        get_experiment("distal-reward")(duration_s=0.0, progress=False)


def test_reproduce_distal_reward_quick_json_and_figure(capsys, tmp_path):
    assert main(["reproduce", "distal-reward", "--quick", "--no-progress", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["name"] == "distal-reward" and set(out) >= {"passed", "measured", "published"}
    m = out["measured"]
    assert m["duration_s"] == 60.0 and m["n_synapses"] == 100_000 and 0.5 < m["mean_rate_hz"] < 5
    assert 0 <= m["target_fraction_of_bound"] <= 1 and 0 < m["others_mean_fraction_of_bound"] < 0.25 + 0.01
    assert m["wall_s_per_simulated_s"] > 0
    assert (tmp_path / "distal-reward.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_distal_reward_full_finds_the_rewarded_synapse():
    outcome = get_experiment("distal-reward")(progress=False)
    m = outcome.measured
    assert outcome.passed, m
    assert m["target_fraction_of_bound"] >= 0.9 and m["others_mean_fraction_of_bound"] <= 0.25
    assert m["time_to_0.9_bound_s"] is not None and m["rewards"] >= 10
