"""DECOLLE, feedback alignment, DFA and error-triggered learning against autograd and each other
(float64, the exact identities of REFERENCE.md)."""
import pytest
import torch

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.rules.eprop import EProp
from neuroplastic.rules.signals import DirectFeedback, LocalReadouts, Quantized, RandomFeedback, Symmetric
from neuroplastic.sim import run
from neuroplastic.spikes import Boxcar, Triangle
from neuroplastic.training.losses import readout_cross_entropy
from neuroplastic.training.methods import make_method
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.online import OnlineLearner, OnlineMethod
from neuroplastic.training.problem import Problem
from test_eprop import Capture, assert_equal, batch, small_task


def deep_network(task, hidden=(7, 5), *, tau_m=20.0, tau_out=20.0, surrogate=Triangle(0.3), seed=1):
    g = torch.Generator().manual_seed(seed)
    neuron = ALIF(tau_m=tau_m, beta=0.0, v_th=0.6, t_ref=0.0, reset=ResetBySubtraction(detach=True),
                  surrogate=surrogate)
    sizes = (task.n_inputs, *hidden)
    layers = [SpikingLayer(a, b, neuron, scale=3.0, generator=g) for a, b in zip(sizes[:-1], sizes[1:])]
    return SpikingNetwork(layers, LeakyReadout(sizes[-1], task.n_outputs, tau_out=tau_out, generator=g)).double()


def gradients(network, task, method, mode="sequence"):
    learner = OnlineLearner(Problem(network, objective_for(task), generator=torch.Generator().manual_seed(3)), method)
    capture = Capture(learner.params)
    inputs, labels = batch(task)
    getattr(learner, mode)(inputs, labels, capture)
    return learner, capture.grads


def method(signal, surrogate_rule=EProp):
    return OnlineMethod("test", surrogate_rule, signal)


@pytest.mark.parametrize("mode", ["online", "sequence"])
def test_decolle_is_bptt_of_each_local_loss_with_the_reset_detached(mode):
    """Kaiser et al. 2020: each layer descends its own readout's loss, its input detached."""
    task = small_task()
    net = deep_network(task)
    learner, grads = gradients(net, task, method(LocalReadouts()), mode)
    inputs, labels = batch(task)
    (head,) = learner.heads
    z1, _ = net.layers[0](inputs)
    assert z1.sum() > 0
    local_loss = readout_cross_entropy(head(z1), labels, task.loss_steps)
    (bottom,) = torch.autograd.grad(local_loss, net.layers[0].synapses.weight)
    z2, _ = net.layers[1](z1.detach())
    assert z2.sum() > 0
    loss = readout_cross_entropy(net.readout(z2), labels, task.loss_steps)
    top = torch.autograd.grad(loss, (net.layers[1].synapses.weight, *net.readout.parameters()))
    assert_equal(grads, (bottom, *top))


def test_spatial_backprop_is_bptt_when_nothing_above_the_first_layer_remembers():
    """With no leak in the second layer and the readout (α = κ = 0), backpropagating each step's error
    through the layers is the whole BPTT gradient."""
    task = small_task()
    net = deep_network(task, tau_out=1e-4)
    net.layers[1].neuron = net.layers[1].neuron.replace(tau_m=1e-4)
    _, grads = gradients(net, task, method(Symmetric()))
    inputs, labels = batch(task)
    readout = run(net, inputs, 1.0).readout  # the step path: the fused kernel needs a leak
    loss = readout_cross_entropy(readout, labels, task.loss_steps)
    assert_equal(grads, torch.autograd.grad(loss, tuple(OnlineLearner(Problem(net, objective_for(task)), method(Symmetric())).params)))


def test_feedback_alignment_with_the_forward_weights_is_backprop():
    task = small_task()
    net = deep_network(task)
    learner, symmetric = gradients(net, task, method(Symmetric()))

    class Transposed(RandomFeedback):
        def init(self, network, generator=None):
            return {"top": network.readout.synapses.weight.detach(),
                    "below": [layer.synapses.weight.detach() for layer in network.layers[1:]], "readout0": None}

    _, aligned = gradients(net, task, method(Transposed()))
    assert_equal(aligned, symmetric, rtol=1e-12)
    _, random = gradients(net, task, method(RandomFeedback()))
    assert (random[0] - symmetric[0]).norm() > 0.1 * symmetric[0].norm()


def test_dfa_is_fa_with_one_hidden_layer():
    task = small_task()
    net = deep_network(task, hidden=(6,))
    _, fa = gradients(net, task, method(RandomFeedback()))
    _, dfa = gradients(net, task, method(DirectFeedback()))  # the same generator: the same B
    assert_equal(dfa, fa, rtol=1e-12)


def test_error_triggered_learning_with_a_vanishing_threshold_is_decolle_with_a_boxcar():
    task = small_task()
    net = deep_network(task, surrogate=Boxcar())
    _, decolle = gradients(net, task, method(LocalReadouts()), "online")
    _, etl = gradients(net, task, method(Quantized(LocalReadouts(), threshold=1e-13, gain=0.0)), "online")
    assert_equal(etl, decolle)
    coarse = Quantized(LocalReadouts(), threshold=1e-3, gain=0.0)
    _, quantized = gradients(net, task, method(coarse), "online")
    hidden = [(int(torch.count_nonzero(q)), int(torch.count_nonzero(d))) for q, d in zip(quantized[:2], decolle[:2])]
    assert all(0 < sparse <= dense for sparse, dense in hidden)  # every hidden layer triggered somewhere …
    assert any(sparse < dense for sparse, dense in hidden)  # … and some synapses not


def test_the_error_threshold_settles_near_the_target_rate():
    task = small_task(steps=60, samples=8)
    net = deep_network(task)
    learner = OnlineLearner(Problem(net, objective_for(task)),
                            method(Quantized(LocalReadouts(), threshold=1e-6, target_rate=0.05, gain=1.0)))
    inputs, labels = batch(task)
    for _ in range(5):
        learner.fixed["triggered"] = learner.fixed["events"] = 0
        learner.online(inputs, labels, Capture(learner.params))
    rate = learner.fixed["triggered"] / learner.fixed["events"]
    assert 0.01 < rate < 0.15


def test_methods_by_name_and_bad_options():
    assert make_method("eprop").signal == RandomFeedback()
    assert make_method("eprop", feedback="symmetric").signal == Symmetric()
    with pytest.raises(ValueError, match="feedback"):
        make_method("eprop", feedback="sideways")
    with pytest.raises(ValueError, match="unknown rule"):
        make_method("hebbian-ish")
    with pytest.raises(ValueError, match="decolle"):
        make_method("decolle", colour="red")
    with pytest.raises(ValueError, match="apply_every"):
        make_method("eprop", apply_every=5)
    with pytest.raises(ValueError, match="threshold"):
        make_method("etl", threshold=-1.0)


def test_adaptive_feedback_follows_the_readout_changes():
    """Adaptive e-prop: the feedback matrix receives the readout's own updates, B = B₀ + W_out − W_out⁰."""
    task = small_task()
    net = deep_network(task, hidden=(6,))
    source = RandomFeedback(adaptive=True)
    fixed = source.init(net, torch.Generator().manual_seed(0))
    err = torch.randn(4, task.n_outputs, dtype=torch.float64)
    before = source.signals(fixed, net, err, [], [None])[0]
    torch.testing.assert_close(before, err @ fixed["top"])
    change = torch.randn_like(net.readout.synapses.weight)
    with torch.no_grad():
        net.readout.synapses.weight += change
    after = source.signals(fixed, net, err, [], [None])[0]
    torch.testing.assert_close(after - before, err @ change)
    static = RandomFeedback().signals(fixed, net, err, [], [None])[0]
    torch.testing.assert_close(static, before)


def test_rtrl_by_name_through_its_learner_is_bptt():
    from test_eprop import bptt_gradients, small_network

    task = small_task(steps=20)
    net = small_network(task, detach=False, beta=0.3, recurrent=True)
    rule = make_method("rtrl")
    learner = rule.learner(Problem(net, objective_for(task)))
    optimizer = Capture(net.parameters())
    inputs, labels = batch(task)
    learner.train_batch(inputs, labels, optimizer)
    assert_equal(optimizer.grads, bptt_gradients(net, task, learner.params))
    with pytest.raises(ValueError, match="rate_weight"):
        rule.learner(Problem(net, objective_for(task), rate_weight=1e-3))


def test_the_reward_error_is_the_policy_gradient_on_average():
    """E_a[−r (onehot(a) − π)] = −π_label (onehot(label) − π) = −∂E[r]/∂y (REINFORCE, b = 0)."""
    from neuroplastic.rules.signals import Reinforce

    source = Reinforce(DirectFeedback(), baseline_decay=0.0)
    y = torch.tensor([[0.3, -1.0, 0.8, 0.1]], dtype=torch.float64).expand(200_000, 4)
    labels = torch.full((200_000,), 2)
    fixed = {"inner": None, "baseline": 0.0, "generator": torch.Generator().manual_seed(0)}
    delta = source.error(fixed, None, y, labels, torch.tensor(1.0, dtype=torch.float64))
    policy = torch.softmax(y[0], -1)
    expected = -policy[2] * (torch.nn.functional.one_hot(torch.tensor(2), 4) - policy)
    torch.testing.assert_close(delta.mean(0), expected, atol=4e-3, rtol=0)
    assert fixed["baseline"] == pytest.approx(float(policy[2]), abs=4e-3)  # the mean reward, d = 0
    outside = source.error(fixed, None, y[:5], labels[:5], torch.tensor(0.0, dtype=torch.float64))
    assert outside.abs().max() == 0


def test_eprop_learns_digits_from_reward_alone(tmp_path):
    from neuroplastic.training.fit import fit

    summary = fit("digits", "eprop", epochs=3, out=tmp_path, rule_options={"reward": True}, progress=False,
                  hidden=(64,))
    assert summary["test_accuracy"] > 0.5  # chance is 0.1
    with pytest.raises(ValueError, match="classification"):
        fit("pattern", "eprop", epochs=1, out=tmp_path / "p", rule_options={"reward": True}, progress=False)
