"""Meta-learning (neuroplastic.outer) against closed forms, finite differences and the rules run alone.

- On quadratic losses the MAML meta-gradient after one inner step is ``(I − α A_tr) A_te (θ' − c_te)``
  and the first-order one ``A_te (θ' − c_te)``: they differ by exactly the dropped term.
- Through a spiking network the second-order meta-gradient (and that of Meta-SGD's rates) equals
  central differences of the post-adaptation query loss, in float64. Finite differences cannot see a
  Heaviside's surrogate, so these networks spike through the surrogate's smooth primitive (whose
  derivative the surrogate is): the meta-learning machinery (vmap over episodes, gradients of
  gradients, the inner rates) is what is checked.
- With an online rule inside (bi-level), the updates made in the meta loop equal the rule's own run,
  and the meta-gradient equals autograd through the explicitly unrolled update (and finite differences).
"""
import pytest
import torch
from torch.func import functional_call

from finite_differences import central_differences
from neuroplastic import ALIF, Boxcar, FastSigmoid, Triangle
from neuroplastic.neurons import alif as alif_module
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.outer import GradientSteps, MetaLearner, make_inner
from neuroplastic.outer.inner import OnlineSteps
from neuroplastic.training.methods import decolle, eprop
from neuroplastic.training.objectives import Classification
from neuroplastic.training.problem import Problem

STEPS, BATCH, N_IN, HIDDEN, WAYS = 6, 4, 5, 4, 2


def quadratic(hessian, centre):
    return lambda params, inputs, targets: 0.5 * (params["theta"] - centre) @ hessian @ (params["theta"] - centre)


def spd(n, generator):
    m = torch.randn(n, n, generator=generator, dtype=torch.float64)
    return m @ m.T / n + torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_meta_gradient_on_quadratics_is_the_closed_form(first_order):
    g = torch.Generator().manual_seed(0)
    n, alpha = 6, 0.1
    a_tr, a_te = spd(n, g), spd(n, g)
    c_tr, c_te = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    theta = torch.randn(n, generator=g, dtype=torch.float64, requires_grad=True)
    adapt = GradientSteps(1, first_order).adapter(quadratic(a_tr, c_tr))
    adapted = adapt({"theta": theta}, {"theta": alpha}, None, None)
    (meta,) = torch.autograd.grad(quadratic(a_te, c_te)(adapted, None, None), theta)
    with torch.no_grad():
        prime = theta - alpha * a_tr @ (theta - c_tr)
        first = a_te @ (prime - c_te)
        second = (torch.eye(n, dtype=torch.float64) - alpha * a_tr) @ first
    assert torch.allclose(meta, first if first_order else second, rtol=0, atol=1e-10)
    if first_order:  # off by exactly the term FO-MAML drops
        assert torch.allclose(second - meta, -alpha * a_tr @ first, rtol=0, atol=1e-10)


def smooth_spikes(monkeypatch):
    """Spikes through the surrogate's smooth primitive (+ ½), so that the network is differentiable."""
    monkeypatch.setattr(alif_module, "spike", lambda x, surrogate: 0.5 + surrogate.smooth(x))


def network(surrogate=None, recurrent=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    neuron = ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=surrogate or FastSigmoid(2.0))
    layer = SpikingLayer(N_IN, HIDDEN, neuron, recurrent=recurrent, scale=2.0, generator=g, path="step")
    return SpikingNetwork([layer], LeakyReadout(HIDDEN, WAYS, tau_out=5.0, generator=g)).double()


def episodes(count=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    def inputs():
        return (torch.rand(count, STEPS, BATCH, N_IN, generator=g, dtype=torch.float64) < 0.4).double()
    targets = torch.arange(WAYS).repeat(BATCH // WAYS).expand(count, -1).contiguous()
    return inputs(), targets, inputs(), targets


def meta_gradients_against_differences(meta, parameters):
    data = episodes()
    loss, _ = meta(data)
    grads = torch.autograd.grad(loss, parameters)
    for parameter, analytic in zip(parameters, grads):
        numeric = central_differences(lambda: meta(data)[0], parameter.data)
        assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), (analytic - numeric).abs().max()


def test_second_order_maml_through_a_spiking_network_equals_finite_differences(monkeypatch):
    smooth_spikes(monkeypatch)
    meta = MetaLearner(network(recurrent=True), GradientSteps(2), inner_lr=0.3, learn_rates=True)
    meta_gradients_against_differences(meta, [*meta.network.parameters(), meta.rates[0]])


def test_first_order_maml_drops_the_second_order_terms(monkeypatch):
    smooth_spikes(monkeypatch)
    data = episodes()
    second = MetaLearner(network(), GradientSteps(1), inner_lr=0.3)
    first = MetaLearner(network(), GradientSteps(1, first_order=True), inner_lr=0.3)
    g2 = torch.autograd.grad(second(data)[0], list(second.network.parameters()))
    g1 = torch.autograd.grad(first(data)[0], list(first.network.parameters()))
    params, _ = first.start()
    expected = [torch.zeros_like(p) for p in params.values()]
    for i in range(2):  # FO-MAML: the query gradient at the adapted parameters, summed over episodes
        adapted = GradientSteps(1).adapter(first.problem.loss_fn)(
            {k: v.detach() for k, v in params.items()}, dict.fromkeys(params, 0.3), data[0][i], data[1][i])
        adapted = {k: v.detach().requires_grad_() for k, v in adapted.items()}
        query = torch.autograd.grad(first.problem.loss_fn(adapted, data[2][i], data[3][i]), list(adapted.values()))
        expected = [e + q for e, q in zip(expected, query)]
    for a, b, c in zip(g1, expected, g2):
        assert torch.allclose(a, b / 2, rtol=1e-10, atol=1e-12)
    assert any(not torch.allclose(a, c) for a, c in zip(g1, g2))


def test_a_surrogate_without_curvature_is_refused_for_second_order_and_a_triangle_has_one():
    with pytest.raises(ValueError, match="Boxcar.*first_order"):
        MetaLearner(network(Boxcar()), GradientSteps(1))
    with pytest.raises(ValueError, match="Boxcar"):
        MetaLearner(network(Boxcar()), make_inner("eprop", 1))
    MetaLearner(network(Boxcar()), GradientSteps(1, first_order=True))  # first order needs none
    x = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64, requires_grad=True)
    (curvature,) = torch.autograd.grad(Triangle(1.0).derivative(x).sum(), x)
    assert (curvature[x.detach() != 0].abs() == 1.0).all()  # a triangle's slope: ±γ/width, not zero


@pytest.mark.parametrize("method", [eprop(), decolle(mode="sequence", apply_every=None)], ids=["eprop", "decolle"])
def test_online_rule_inside_the_meta_loop_makes_the_updates_of_the_rule_run_alone(method):
    recurrent = method.name == "eprop"
    meta = MetaLearner(network(recurrent=recurrent), OnlineSteps(method, 1), inner_lr=0.7,
                       generator=torch.Generator().manual_seed(3))
    data = episodes(count=1)
    params, rates = meta.start()
    adapted = meta.adapt(params, rates, data[0][0], data[1][0])
    alone = network(recurrent=recurrent)  # the rule alone, its feedback drawn from the same seed
    learner = method.learner(Problem(alone, Classification(None), generator=torch.Generator().manual_seed(3)))
    learner.sequence(data[0][0], data[1][0], torch.optim.SGD(alone.parameters(), lr=0.7))
    for name, value in alone.named_parameters():
        assert torch.allclose(adapted[name], value, rtol=0, atol=1e-12), name
    assert any(not torch.equal(adapted[name], value) for name, value in meta.network.named_parameters())


def test_bilevel_gradient_equals_autograd_through_the_unrolled_update_and_finite_differences(monkeypatch):
    smooth_spikes(monkeypatch)
    meta = MetaLearner(network(), OnlineSteps(eprop(), 1), inner_lr=0.7)
    data = episodes(count=1)
    grads = torch.autograd.grad(meta(data)[0], list(meta.network.parameters()))
    learner = meta.adapt.learner

    def unrolled():  # θ' = θ − α ĝ(θ), ĝ the rule's estimate on the network itself, then the query loss
        estimate, _ = learner.estimate(data[0][0], data[1][0], count=False)
        by_param = {id(p): g for p, g in zip(learner.params, estimate)}
        adapted = {n: p - 0.7 * by_param.get(id(p), torch.zeros_like(p)) for n, p in meta.network.named_parameters()}
        return meta.problem.loss(functional_call(meta.network, adapted, (data[2][0],)), data[3][0])
    expected = torch.autograd.grad(unrolled(), list(meta.network.parameters()))
    for (name, parameter), analytic, unrolled_grad in zip(meta.network.named_parameters(), grads, expected):
        assert torch.allclose(analytic, unrolled_grad, rtol=1e-10, atol=1e-12), name
        numeric = central_differences(lambda: unrolled().detach(), parameter.data)
        assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-8), name


def test_inner_loops_refuse_what_they_cannot_run_faithfully():
    from neuroplastic.training.methods import etl
    from neuroplastic.training.objectives import Regression
    with pytest.raises(ValueError, match="sequence mode"):
        OnlineSteps(decolle(), 1)  # DECOLLE's default: an update at every step
    for method in (etl(mode="sequence", apply_every=None), eprop(reward=True), eprop(feedback="adaptive")):
        with pytest.raises(ValueError, match="inside a meta loop use fixed feedback or local readouts"):
            OnlineSteps(method, 1)
    with pytest.raises(ValueError, match="classification"):
        MetaLearner(network(), GradientSteps(1), objective=Regression())


def test_an_online_rule_inside_follows_the_network_to_its_dtype():
    meta = MetaLearner(network().float(), OnlineSteps(eprop(), 1))  # built where it runs
    data = tuple(part.float() if part.is_floating_point() else part for part in episodes())
    assert torch.isfinite(meta(data)[0])
