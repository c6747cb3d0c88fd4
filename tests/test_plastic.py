"""Differentiable plasticity (Miconi, Clune & Stanley 2018): plastic recurrent synapses against the
plain network (α = 0, bit for bit), the Hebbian trace against its closed forms, gradients against
central differences (float64), bad input, and the pattern-completion reproduction."""
import json

import pytest
import torch
from finite_differences import central_differences

from neuroplastic import ALIF, FastSigmoid
from neuroplastic.cli.main import main
from neuroplastic.experiments import get_experiment
from neuroplastic.networks import SpikingLayer
from neuroplastic.networks.plastic_rnn import RateRNN
from neuroplastic.rules import DecayingHebb, Hebb, Oja, PairSTDP
from neuroplastic.synapses import PlasticRecurrent, Recurrent, Trace

LIF = ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(5.0))
RULES = [DecayingHebb(eta=0.1), Hebb(eta=0.05), Oja(eta=0.1), PairSTDP(tau_plus=3.0, tau_minus=5.0)]


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
def test_alpha_zero_rate_network_is_bit_identical_to_the_plain_rnn(rule):
    n, steps, batch = 12, 15, 3
    plastic = RateRNN(PlasticRecurrent(n, rule=rule, alpha=0.0, scale=2.0, generator=generator()))
    plain = RateRNN(Recurrent(n, scale=2.0, generator=generator()))
    u = torch.randn(steps, batch, n, generator=generator(1))
    x_plastic, state = plastic(u)
    x_plain, _ = plain(u)
    assert torch.equal(x_plastic, x_plain)
    assert state.recurrent[0].abs().sum() > 0  # the trace did change, α = 0 hid it
    # the step path is the sequence path
    stepped = plastic.init_state(batch)
    for t in range(steps):
        x_t, stepped = plastic.step(stepped, u[t])
        assert torch.equal(x_t, x_plastic[t])


@pytest.mark.parametrize("rule", [DecayingHebb(eta=0.1), PairSTDP()], ids=lambda r: type(r).__name__)
def test_alpha_zero_spiking_layer_is_bit_identical_to_the_plain_layer(rule):
    n_in, n, steps, batch = 8, 10, 40, 2
    trace = Trace(tau=20.0) if isinstance(rule, DecayingHebb) else None
    plastic = SpikingLayer(n_in, n, LIF, generator=generator(), scale=3.0,
                           recurrent=PlasticRecurrent(n, rule=rule, alpha=0.0, trace=trace, scale=3.0,
                                                      generator=generator(1)))
    plain = SpikingLayer(n_in, n, LIF, generator=generator(), scale=3.0,
                         recurrent=Recurrent(n, scale=3.0, generator=generator(1)))
    x = (torch.rand(steps, batch, n_in, generator=generator(2)) < 0.3).float()
    spikes_plastic, state = plastic(x)
    spikes_plain, _ = plain(x)
    assert spikes_plain.sum() > 0 and torch.equal(spikes_plastic, spikes_plain)
    assert state.recurrent[0].abs().sum() > 0


def test_a_plastic_spiking_layer_trains_alpha_and_eta_by_surrogate_gradients():
    n = 10
    synapses = PlasticRecurrent(n, alpha=torch.full((n, n), 0.5), trace=Trace(tau=10.0), scale=3.0,
                                generator=generator(1))
    layer = SpikingLayer(6, n, LIF, generator=generator(), scale=3.0, recurrent=synapses)
    spikes, _ = layer((torch.rand(30, 2, 6, generator=generator(2)) < 0.4).float())
    spikes.sum().backward()
    for parameter in (synapses.alpha, synapses.coefficients["eta"]):
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all() and parameter.grad.abs().sum() > 0


def constant_input_trace(rule, x, steps):
    synapses = PlasticRecurrent(len(x), rule=rule).double()
    state = synapses.init_state(1, dtype=torch.float64)
    for _ in range(steps):
        _, state = synapses.step(state, x[None])
    return state[0][0]


def test_decaying_hebbian_trace_has_its_closed_form_for_a_constant_input():
    x, eta, steps = torch.tensor([0.5, -1.0, 0.25, 2.0], dtype=torch.float64), 0.125, 17  # η exact in float32
    hebb = constant_input_trace(DecayingHebb(eta=eta), x, steps)
    torch.testing.assert_close(hebb, (1 - (1 - eta) ** steps) * torch.outer(x, x), rtol=1e-12, atol=1e-14)


def test_plain_and_oja_traces_have_their_closed_forms_for_a_constant_input():
    x, eta, steps = torch.tensor([0.5, -1.0, 0.25, 0.75], dtype=torch.float64), 0.25, 11
    hebb = constant_input_trace(Hebb(eta=eta), x, steps)
    torch.testing.assert_close(hebb, steps * eta * torch.outer(x, x), rtol=1e-12, atol=1e-14)
    # Oja: H_ij ← H_ij (1 − η x_i²) + η x_i x_j (post i, pre j)  ⇒  H_ij(n) = x_j/x_i · (1 − (1 − η x_i²)ⁿ)
    oja = constant_input_trace(Oja(eta=eta), x, steps)
    expected = (x[None, :] / x[:, None]) * (1 - (1 - eta * x[:, None] ** 2) ** steps)
    torch.testing.assert_close(oja, expected, rtol=1e-12, atol=1e-14)


def test_the_spiking_version_reads_the_library_trace():
    tau, dt, eta, steps = 5.0, 1.0, 0.25, 6
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    synapses = PlasticRecurrent(3, rule=DecayingHebb(eta=eta), trace=Trace(tau=tau), dt=dt).double()
    state = synapses.init_state(1, dtype=torch.float64)
    trace, hebb = torch.zeros_like(x), torch.zeros(3, 3, dtype=torch.float64)
    for _ in range(steps):
        _, state = synapses.step(state, x)
        trace = Trace(tau=tau).step(trace, x, dt)
        hebb = (1 - eta) * hebb + eta * torch.outer(trace[0], trace[0])
    torch.testing.assert_close(state[1], trace, rtol=1e-14, atol=0)
    torch.testing.assert_close(state[0][0], hebb, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: type(r).__name__)
def test_gradients_wrt_w_alpha_and_the_rule_coefficients_match_central_differences(rule):
    n, steps, batch = 5, 6, 2
    alpha = torch.rand(n, n, generator=generator(3)) * 0.8
    synapses = PlasticRecurrent(n, rule=rule, alpha=alpha, scale=1.5, generator=generator()).double()
    net = RateRNN(synapses)
    u = torch.randn(steps, batch, n, generator=generator(1), dtype=torch.float64)
    readout = torch.randn(batch, n, generator=generator(2), dtype=torch.float64)

    def loss():
        return (net(u)[0][-1] * readout).sum() + net(u)[0].square().mean()

    parameters = {"w": synapses.fixed.parametrizations.weight.original, "alpha": synapses.alpha,
                  **dict(synapses.coefficients.items())}
    assert set(parameters) - {"w", "alpha"} == ({"a_plus", "a_minus"} if isinstance(rule, PairSTDP) else {"eta"})
    grads = torch.autograd.grad(loss(), tuple(parameters.values()))
    for (name, parameter), grad in zip(parameters.items(), grads):
        numeric = central_differences(loss, parameter.data)
        assert grad.abs().max() > 1e-6, name
        torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8, msg=name)


def test_a_shared_scalar_alpha_is_learned_too():
    synapses = PlasticRecurrent(4, alpha=0.3, generator=generator()).double()
    x, _ = RateRNN(synapses)(torch.randn(5, 1, 4, dtype=torch.float64, generator=generator(1)))
    (grad,) = torch.autograd.grad(x.sum(), synapses.alpha)
    assert synapses.alpha.shape == () and grad.abs() > 0


@pytest.mark.parametrize("make, name", [
    (lambda: PlasticRecurrent(4, rule=DecayingHebb(eta=-0.1)), "eta"),
    (lambda: PlasticRecurrent(4, rule=Hebb(eta=-0.1)), "eta"),
    (lambda: PlasticRecurrent(4, rule=Hebb(eta=float("nan"))), "eta"),
    (lambda: PlasticRecurrent(4, rule=PairSTDP(), learn=("tau_plus",)), "learn"),
    (lambda: PlasticRecurrent(4, rule="oja"), "rule"),
    (lambda: PlasticRecurrent(4, alpha=torch.zeros(3, 3)), "alpha"),
    (lambda: PlasticRecurrent(4, alpha=float("nan")), "alpha"),
    (lambda: PlasticRecurrent(1), "n"),
    (lambda: PlasticRecurrent(4, trace=20.0), "trace"),
    (lambda: PlasticRecurrent(4, dt=0.0), "dt"),
])
def test_bad_parameters_raise_one_clear_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name) as error:
        make()
    assert "\n" not in str(error.value)


def test_bad_inputs_and_learned_coefficients_gone_wrong_raise_clear_errors():
    synapses = PlasticRecurrent(4)
    state = synapses.init_state(2)
    with pytest.raises(ValueError, match=r"input must have shape \(B, 4\)"):
        synapses.step(state, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="samples"):
        synapses.step(state, torch.zeros(3, 4))
    with torch.no_grad():
        synapses.coefficients["eta"].fill_(-0.5)
    with pytest.raises(ValueError, match="PlasticRecurrent eta"):
        synapses.init_state(2)
    with pytest.raises(ValueError, match="neurons"):
        RateRNN(PlasticRecurrent(4))(torch.zeros(3, 1, 5))


def test_reproduce_plastic_completion_quick_passes_via_the_cli(capsys, tmp_path):
    assert main(["reproduce", "plastic-completion", "--quick", "--no-progress", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    measured = out["measured"]
    assert out["name"] == "plastic-completion" and out["passed"] is True, measured
    assert measured["plastic_wrong_bits"] <= 0.15 and measured["frozen_wrong_bits"] >= 0.40
    assert measured["eta"] > 0 and len(measured["curves"]["plastic"]) == len(measured["curves"]["frozen"])
    assert (tmp_path / "plastic-completion.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_full_pattern_completion_reaches_the_goal():
    outcome = get_experiment("plastic-completion")(progress=False)
    measured = outcome.measured
    assert measured["config"]["bits"] == 1000
    assert measured["plastic_wrong_bits"] <= 0.05, measured["plastic_wrong_bits"]
    assert measured["frozen_wrong_bits"] >= 0.40 and outcome.passed
