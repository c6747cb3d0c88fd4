"""Exact RTRL against autograd BPTT (float64) on small recurrent LIF and ALIF networks."""
import itertools
import math

import pytest
import torch
from test_eprop import EPROP, Capture, batch, bptt_gradients, small_network, small_task

from neuroplastic.training.losses import readout_cross_entropy
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.online import OnlineLearner
from neuroplastic.training.problem import Problem
from neuroplastic.training.rtrl import RTRLLearner


class Record(Capture):
    """Keeps every gradient it is given, changes nothing."""

    def __init__(self, params):
        super().__init__(params)
        self.history = []

    def step(self, closure=None):
        super().step()
        self.history.append(self.grads)


def rtrl_gradients(network, task, apply_every=None):
    learner = RTRLLearner(Problem(network, objective_for(task)))
    record = Record(learner.params)
    inputs, labels = batch(task)
    learner.online(inputs, labels, record, apply_every=apply_every)
    return learner, record


def relative_error(actual, expected):
    return max(float((a - e).norm() / e.norm()) for a, e in zip(actual, expected))


NETWORKS = {
    "lif": {"beta": 0.0, "detach": False, "hidden": (5,)},
    "alif": {"beta": 0.5, "detach": False, "hidden": (5,), "t_ref": 2.0},
    "alif-two-layers": {"beta": 0.5, "detach": False, "hidden": (4, 3)},
}


@pytest.mark.parametrize("kind", NETWORKS)
def test_rtrl_is_bptt_on_a_recurrent_network(kind):
    task = small_task(steps=30)
    net = small_network(task, recurrent=True, **NETWORKS[kind])
    learner, record = rtrl_gradients(net, task)
    reference = bptt_gradients(net, task, learner.params)
    assert all(e.abs().max() > 0 for e in reference)
    assert len(record.history) == 1
    assert relative_error(record.grads, reference) < 1e-6


def test_rtrl_differs_from_eprop_with_recurrence():
    """The recurrent net is where the approximate rule and the exact one part (the test can fail)."""
    task = small_task(steps=30)
    net = small_network(task, recurrent=True, detach=False, beta=0.5)
    _, record = rtrl_gradients(net, task)
    eprop = OnlineLearner(Problem(net, objective_for(task)), EPROP)
    capture = Capture(eprop.params)
    eprop.online(*batch(task), capture)
    assert relative_error(capture.grads[:2], record.grads[:2]) > 0.05


def test_apply_every_applies_the_gradient_of_each_window():
    task = small_task(steps=30)
    net = small_network(task, recurrent=True, detach=False, beta=0.5)
    learner, record = rtrl_gradients(net, task, apply_every=20)
    assert len(record.history) == 2  # steps 0–19 and 20–29
    inputs, labels = batch(task)
    readout = net(inputs).readout  # the loss window is the last 15 steps: 5 of them in the first piece
    first = readout_cross_entropy(readout[15:20], labels) * 5 / 15
    reference = torch.autograd.grad(first, learner.params)
    assert relative_error(record.history[0], reference) < 1e-6
    whole = bptt_gradients(net, task, learner.params)
    assert relative_error([a + b for a, b in zip(*record.history)], whole) < 1e-6
    assert learner.updates_applied == 0  # the recording optimizer writes no weight


def test_apply_every_changes_the_weights_step_wise():
    task = small_task(steps=30)
    net = small_network(task, recurrent=True, detach=False, beta=0.5)
    learner = RTRLLearner(Problem(net, objective_for(task)))
    before = [p.detach().clone() for p in learner.params]
    changes = []

    class Watch(torch.optim.SGD):
        def step(self, closure=None):
            super().step()
            changes.append(sum(float((p - b).abs().sum()) for p, b in zip(learner.params, before)))

    learner.online(*batch(task), Watch(learner.params, lr=0.1), apply_every=7)
    assert len(changes) == math.ceil(30 / 7)
    moved = sum(int((p.detach() != b).sum()) for p, b in zip(learner.params, before))
    assert 0 < moved <= learner.updates_applied  # SGD writes the nonzero gradient entries, each window
    # the loss window is steps 15–29: the pieces 0–6 and 7–13 carry no gradient, the rest do
    assert changes[0] == changes[1] == 0.0 < changes[2]
    assert all(a != b for a, b in itertools.pairwise(changes[2:]))


def test_counts_match_the_online_learner():
    task = small_task(steps=30)
    net = small_network(task, recurrent=True, detach=False, beta=0.5, hidden=(4, 3))
    learner, _ = rtrl_gradients(net, task)
    online = OnlineLearner(Problem(net, objective_for(task)), EPROP)
    online.online(*batch(task), Capture(online.params))  # the same forward pass
    assert learner.params == online.params
    assert learner.synops == online.synops > 0
    diagonals = sum(layer.size for layer in net.layers)  # a recurrent weight's diagonal is no synapse
    writing = RTRLLearner(Problem(net, objective_for(task)))  # SGD writes every weight with a nonzero gradient, once
    writing.online(*batch(task), torch.optim.SGD(writing.params, lr=1e-3))
    assert writing.updates_applied == sum(p.numel() for p in writing.params) - diagonals


def test_too_large_a_sensitivity_is_refused():
    task = small_task(steps=5, loss_steps=2)
    net = small_network(task, recurrent=True)
    with pytest.raises(ValueError, match=r"state 28 × parameters 73"):
        RTRLLearner(Problem(net, objective_for(task)), max_sensitivity=1000)
    learner = RTRLLearner(Problem(net, objective_for(task)), max_sensitivity=28 * 73 * 2)
    with pytest.raises(ValueError, match="batch 4"):
        learner.online(*batch(task), Capture(learner.params))


def test_bad_input_is_refused():
    task = small_task(steps=5, loss_steps=2)
    net = small_network(task, recurrent=True)
    learner = RTRLLearner(Problem(net, objective_for(task)))
    inputs, labels = batch(task)
    with pytest.raises(ValueError, match="inputs must be"):
        learner.online(inputs[..., :3], labels, Capture(learner.params))
    with pytest.raises(ValueError, match="apply_every"):
        learner.online(inputs, labels, Capture(learner.params), apply_every=0)
    with pytest.raises(ValueError, match="max_sensitivity"):
        RTRLLearner(Problem(net, objective_for(task)), max_sensitivity=0)
    net.dropout.p = 0.2
    with pytest.raises(ValueError, match="dropout"):
        RTRLLearner(Problem(net, objective_for(task)))
