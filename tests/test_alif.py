"""e-prop ALIF against a float64 numpy loop of the paper's equations, the spike-trace identity of the
adaptation, the threshold condition and the pseudo-derivative ψ (Bellec et al. 2020)."""
import math

import numpy as np
import pytest
import torch

from neuroplastic import Record, ResetBySubtraction, run
from neuroplastic.neurons.alif import ALIF

DT = 1.0


def paper_alif(inputs, tau_m, tau_a, v_th, beta, n_ref):
    """Bellec et al. 2020, Methods: v_t = αv + I_t − v_th z_{t−1}, a_t = ρa + z_{t−1},
    z_t = H(v_t − v_th − βa_t), no spike within n_ref steps after one. Inputs (T, N)."""
    alpha, rho = math.exp(-DT / tau_m), math.exp(-DT / tau_a)
    steps, n = inputs.shape
    v, a, z = np.zeros(n), np.zeros(n), np.zeros(n)
    last = np.full(n, -10**9)
    vs, as_, zs = np.zeros((steps, n)), np.zeros((steps, n)), np.zeros((steps, n))
    for t in range(steps):
        v = alpha * v + inputs[t] - v_th * z
        a = rho * a + z
        z = ((v >= v_th + beta * a) & (t - last > n_ref)).astype(float)
        last = np.where(z > 0, t, last)
        vs[t], as_[t], zs[t] = v, a, z
    return vs, as_, zs


def random_drive(steps, n, seed, high=0.12):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(steps, n, generator=generator, dtype=torch.float64) * high


@pytest.mark.parametrize("beta,t_ref", [(0.0, 0.0), (0.0, 5.0), (0.05, 3.0), (0.5, 2.0)])
def test_matches_a_float64_loop_of_the_paper_equations(beta, t_ref):
    model = ALIF(tau_m=20.0, tau_a=200.0, v_th=0.6, beta=beta, t_ref=t_ref)
    inputs = random_drive(1500, 12, seed=1)
    result = run(model, inputs, DT, probes=[Record("v"), Record("a")])
    v, a, z = paper_alif(inputs.numpy(), 20.0, 200.0, 0.6, beta, round(t_ref / DT))
    assert z.sum() > 100
    np.testing.assert_array_equal(result.spikes.numpy(), z)
    np.testing.assert_allclose(result["v"].numpy(), v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result["a"].numpy(), a, rtol=0, atol=1e-12)


def test_adaptation_is_the_exponential_trace_of_the_emitted_spikes():
    """a_t = Σ_{s<t} ρ^{t−1−s} z_s, computed here as one matrix product over the whole raster."""
    steps, tau_a = 600, 150.0
    model = ALIF(tau_a=tau_a, beta=0.03, t_ref=2.0)
    result = run(model, random_drive(steps, 8, seed=2), DT, probes=[Record("a")])
    rho = math.exp(-DT / tau_a)
    t = torch.arange(steps, dtype=torch.float64)
    lag = t[:, None] - 1 - t[None, :]  # t − 1 − s
    kernel = torch.where(lag >= 0, rho ** lag.clamp(min=0), torch.zeros_like(lag))
    assert result.spikes.sum() > 50
    assert torch.allclose(result["a"], kernel @ result.spikes, rtol=0, atol=1e-11)


def test_spikes_are_exactly_the_threshold_crossings_outside_refractoriness():
    n_ref = 4
    model = ALIF(tau_a=300.0, beta=0.08, t_ref=n_ref * DT)
    result = run(model, random_drive(2000, 10, seed=3, high=1.0), DT, probes=[Record("v"), Record("a")])
    z = result.spikes.bool()
    recent = torch.zeros_like(z)
    for lag in range(1, n_ref + 1):
        recent[lag:] |= z[:-lag]
    above = result["v"] >= model.v_th + model.beta * result["a"]
    assert torch.equal(z, above & ~recent)
    assert (above & recent).any()  # refractoriness did silence some crossings


def test_adaptation_lowers_the_rate_under_constant_input():
    inputs = torch.full((3000, 1), 0.05, dtype=torch.float64)
    adapting = run(ALIF(), inputs, DT).spikes.sum().item()
    plain = run(ALIF(beta=0.0), inputs, DT).spikes.sum().item()
    assert plain > 0
    assert adapting < 0.8 * plain


def test_gradient_through_the_spike_is_the_pseudo_derivative():
    """dz_t/dI_t = ψ_t = (γ/v_th)·max(0, 1 − |(v_t − A_t)/v_th|) and dz_t/da_{t−1} = −βρ ψ_t."""
    model = ALIF(tau_m=20.0, tau_a=100.0, v_th=0.6, beta=0.2, t_ref=0.0)
    alpha, rho = math.exp(-DT / 20.0), math.exp(-DT / 100.0)
    v_prev = torch.tensor([0.0, 0.3, 0.55, 0.7, 0.9, 1.5, 2.0], dtype=torch.float64)
    a_prev = torch.tensor([0.5, 1.0, 0.2, 0.0, 1.5, 0.3, 0.0], dtype=torch.float64, requires_grad=True)
    current = torch.full_like(v_prev, 0.1, requires_grad=True)
    state = model.init_state(v_prev.shape, dtype=torch.float64)._replace(v=v_prev, a=a_prev)
    z, _ = model.step(state, current, DT)
    z.sum().backward()
    v = alpha * v_prev.numpy() + 0.1
    threshold = 0.6 + 0.2 * rho * a_prev.detach().numpy()
    psi = 0.3 / 0.6 * np.maximum(0.0, 1.0 - np.abs((v - threshold) / 0.6))
    assert (psi > 0).sum() >= 4 and (psi == 0).sum() >= 1
    np.testing.assert_allclose(current.grad.numpy(), psi, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a_prev.grad.numpy(), -0.2 * rho * psi, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(z.detach().numpy(), (v >= threshold).astype(float))


def test_reset_gradient_follows_the_previous_spike_unless_detached():
    """∂v_t/∂z_{t−1} = −v_th with the paper's reset, 0 with ResetBySubtraction(detach=True); ∂v_t/∂v_{t−1} = α."""
    for reset, expected in [(ResetBySubtraction(), -0.6), (ResetBySubtraction(detach=True), 0.0)]:
        model = ALIF(reset=reset)
        v_prev = torch.full((1,), 0.7, dtype=torch.float64, requires_grad=True)
        z_prev = torch.ones(1, dtype=torch.float64, requires_grad=True)
        state = model.init_state((1,), dtype=torch.float64)._replace(v=v_prev, z=z_prev)
        _, new = model.step(state, torch.zeros(1, dtype=torch.float64), DT)
        dv, dz = torch.autograd.grad(new.v.sum(), (v_prev, z_prev), allow_unused=True)
        assert dv.item() == pytest.approx(math.exp(-DT / model.tau_m), rel=1e-15)
        assert (0.0 if dz is None else dz.item()) == expected


def test_bad_parameters_raise():
    for bad in [{"tau_m": 0.0}, {"tau_a": -5.0}, {"v_th": 0.0}, {"beta": -0.1}, {"t_ref": -1.0}]:
        with pytest.raises(ValueError):
            ALIF(**bad)
