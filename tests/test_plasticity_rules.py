"""Hebb, Oja, three-factor and homeostatic rules against closed forms and exact identities."""
import math

import pytest
import torch

from neuroplastic.rules import StepInfo, apply_changes
from neuroplastic.rules.hebbian import Hebb, Oja
from neuroplastic.rules.homeostasis import AdaptiveThreshold, Normalize, SynapticScaling
from neuroplastic.rules.modulated import Dopamine, Reward, RewardPrediction, ThreeFactor
from neuroplastic.rules.stdp import PairSTDP

F64 = torch.float64


def covariance_inputs(samples, seed=0):
    gen = torch.Generator().manual_seed(seed)
    c = torch.tensor([[3.0, 1.0, 0.5], [1.0, 2.0, 0.3], [0.5, 0.3, 1.0]], dtype=F64)
    x = torch.randn(samples, 3, generator=gen, dtype=F64) @ torch.linalg.cholesky(c).T
    return x, c


def linear_neuron(rule, x, w0):
    params, state = (w0.clone(),), rule.init((w0,))
    for t, sample in enumerate(x):
        y = sample[None] @ params[0].T
        changes, state = rule.update(StepInfo(t, len(x), 1.0, sample[None], y), state, params)
        apply_changes(params, changes)
    return params[0][0]


def test_oja_converges_to_the_unit_principal_eigenvector():
    x, c = covariance_inputs(6000)
    w = linear_neuron(Oja(eta=2e-3), x, torch.tensor([[0.1, -0.2, 0.3]], dtype=F64))
    principal = torch.linalg.eigh(c).eigenvectors[:, -1]
    assert abs(torch.dot(w, principal) / w.norm()).item() > 0.995
    assert w.norm().item() == pytest.approx(1.0, abs=0.05)


def test_hebb_grows_along_the_principal_eigenvector_without_bound():
    x, c = covariance_inputs(1000, seed=1)
    w = linear_neuron(Hebb(eta=2e-3), x, torch.tensor([[0.1, -0.2, 0.3]], dtype=F64))
    principal = torch.linalg.eigh(c).eigenvectors[:, -1]
    assert abs(torch.dot(w, principal) / w.norm()).item() > 0.99
    assert w.norm().item() > 50.0  # from 0.37


def test_hebb_is_the_outer_product_summed_over_the_batch():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(4, 5, generator=gen, dtype=F64), torch.rand(4, 3, generator=gen, dtype=F64)
    (change,), _ = Hebb(eta=0.5).update(StepInfo(0, 1, 1.0, x, y), None, (torch.zeros(3, 5, dtype=F64),))
    torch.testing.assert_close(change, 0.5 * sum(torch.outer(y[b], x[b]) for b in range(4)))


def run_three_factor(rule, steps, dt, pre, post, reward):
    params, state = (torch.zeros(1, 1, dtype=F64),), rule.init((torch.zeros(1, 1, dtype=F64),))
    for t in range(steps):
        info = StepInfo(t, steps, dt, torch.tensor([[pre(t)]], dtype=F64), torch.tensor([[post(t)]], dtype=F64))
        changes, state = rule.update(info, state, params, reward=reward(t))
        apply_changes(params, changes)
    return params[0].item()


def test_dopamine_gated_stdp_applies_the_eligibility_decayed_to_the_reward_time():
    # One pre-post pair (Δt = 5 ms) at 100 ms, dopamine release r at 1100 ms. With c = W(Δt) e^{−(t−t_p)/τ_c}
    # and d = r e^{−(t−t_r)/τ_d}: ΔW = η dt Σ_n r W e^{−D/τ_c} e^{−n dt (1/τ_c + 1/τ_d)} (a geometric series).
    dt, tau_c, tau_d, r, eta = 1.0, 1000.0, 200.0, 0.5, 2.0
    stdp = PairSTDP(20.0, 20.0, 0.1, 0.12)
    rule = ThreeFactor(stdp, Dopamine(tau=tau_d), tau_c=tau_c, eta=eta)
    dw = run_three_factor(rule, 4000, dt, lambda t: float(t == 95), lambda t: float(t == 100),
                          lambda t: r if t == 1100 else 0.0)
    window = 0.1 * math.exp(-5.0 / 20.0)
    delay = 1000.0
    expected = eta * dt * r * window * math.exp(-delay / tau_c) / (1 - math.exp(-dt * (1 / tau_c + 1 / tau_d)))
    tail = math.exp(-(4000 - 1100) * dt * (1 / tau_c + 1 / tau_d))  # the part of the series after the run
    assert dw == pytest.approx(expected * (1 - tail), rel=1e-9)
    # the continuous-time limit η r W e^{−D/τ_c} τ_c τ_d/(τ_c + τ_d), to first order in dt
    assert dw == pytest.approx(eta * r * window * math.exp(-1.0) * tau_c * tau_d / (tau_c + tau_d), rel=5e-3)


def test_without_reward_nothing_changes_and_a_reward_before_the_pair_does_nothing():
    rule = ThreeFactor(PairSTDP(20.0, 20.0, 0.1, 0.12), Dopamine(tau=1.0), tau_c=1000.0)
    none = run_three_factor(rule, 500, 1.0, lambda t: float(t == 95), lambda t: float(t == 100), lambda t: None)
    early = run_three_factor(rule, 500, 1.0, lambda t: float(t == 95), lambda t: float(t == 100),
                             lambda t: 1.0 if t == 10 else 0.0)
    assert none == 0.0 and abs(early) < 1e-30  # dopamine released at 10 ms is e^{−85} by the pair


def test_reward_prediction_error_vanishes_for_a_predictable_reward():
    state, rule, errors = RewardPrediction(tau=50.0).init(), RewardPrediction(tau=50.0), []
    for _ in range(200):
        error, state = rule.step(state, torch.tensor(2.0, dtype=F64), 1.0)
        errors.append(float(error))
    q = math.exp(-1.0 / 50.0)
    assert errors == pytest.approx([2.0 * q ** n for n in range(200)], rel=1e-9)
    m, _ = Reward(baseline=0.5).step(None, torch.tensor(2.0), 1.0)
    assert float(m) == 1.5


def test_adaptive_threshold_settles_at_the_geometric_sum_under_regular_firing():
    rule, dt, period = AdaptiveThreshold(theta_plus=0.2, tau=100.0), 0.5, 20
    params = (torch.zeros(2, dtype=F64),)
    after_spike = []
    for t in range(period * 50):
        post = torch.tensor([[float(t % period == 0), 0.0]], dtype=F64)
        changes, _ = rule.update(StepInfo(t, 0, dt, torch.zeros(1, 1), post), None, params)
        apply_changes(params, changes)
        if t % period == 0:
            after_spike.append(params[0][0].item())
    q = math.exp(-period * dt / 100.0)
    assert after_spike == pytest.approx([0.2 * (1 - q ** (n + 1)) / (1 - q) for n in range(50)], rel=1e-10)
    assert params[0][1].item() == 0.0


def test_synaptic_scaling_compounds_toward_the_target_and_is_multiplicative():
    rule, dt, n = SynapticScaling(target_hz=5.0, tau=100.0, beta=1e-4), 1.0, 300
    w0 = torch.tensor([[0.5, 2.0]], dtype=F64)
    params, state = (w0.clone(),), None
    for t in range(n):  # a silent neuron: the rate estimate stays 0
        changes, state = rule.update(StepInfo(t, n, dt, torch.zeros(1, 2), torch.zeros(1, 1)), state, params)
        apply_changes(params, changes)
    torch.testing.assert_close(params[0], w0 * (1 + 1e-4 * dt * 5.0) ** n, rtol=1e-12, atol=0)
    # regular firing at 40 Hz: the estimate approaches (1000/τ)/(1 − e^{−T/τ}) ≈ 40 Hz, so W shrinks
    for t in range(2000):
        post = torch.tensor([[float(t % 25 == 0)]])
        changes, state = rule.update(StepInfo(t, 2000, dt, torch.zeros(1, 2), post), state, params)
        apply_changes(params, changes)
    assert params[0][0, 1] / params[0][0, 0] == pytest.approx(4.0, rel=1e-12)
    assert params[0][0, 0] < 0.5


def test_normalize_sets_every_row_sum():
    w = torch.rand(4, 6, generator=torch.Generator().manual_seed(3), dtype=F64)
    params = (w.clone(),)
    changes, _ = Normalize(total=2.5).update(None, None, params)
    apply_changes(params, changes)
    torch.testing.assert_close(params[0].sum(1), torch.full((4,), 2.5, dtype=F64))
    torch.testing.assert_close(params[0] / params[0].sum(1, keepdim=True), w / w.sum(1, keepdim=True))


@pytest.mark.parametrize("make", [
    lambda: Oja(eta=float("nan")), lambda: ThreeFactor(tau_c=-1.0), lambda: Dopamine(tau=0.0),
    lambda: RewardPrediction(tau=-2.0), lambda: AdaptiveThreshold(tau=-1.0), lambda: SynapticScaling(tau=0.0),
    lambda: Normalize(total=-1.0), lambda: ThreeFactor(source="stdp"),
])
def test_bad_parameters_are_named(make):
    with pytest.raises(ValueError, match="eta|tau|total|source"):
        make()


def test_a_nan_reward_is_refused():
    rule = ThreeFactor(PairSTDP(), Reward())
    params = (torch.zeros(1, 1),)
    with pytest.raises(ValueError, match="reward"):
        rule.update(StepInfo(0, 1, 1.0, torch.zeros(1, 1), torch.zeros(1, 1)), rule.init(params), params,
                    reward=float("nan"))
