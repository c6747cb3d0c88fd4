"""e-prop: the exact identity with BPTT, then training with random feedback.

**Identity** (Bellec et al. 2020, Methods). e-prop writes the gradient as a sum over time of a
learning signal times an eligibility trace per synapse, computed forward in time. For one layer of
LIF neurons whose reset carries no gradient, with the readout's own weights as feedback
("symmetric" e-prop), that sum *is* the BPTT gradient: here ``learner.estimate`` (e-prop over the
whole sequence) against ``torch.autograd.grad`` of the same loss, in float64.

**Training.** ``fit`` by name: random e-prop (fixed random feedback instead of the readout weights,
no backward pass through time, memory constant in T with ``mode="online"``) against BPTT, on the
digits task with 64 hidden neurons for 2 epochs each.
"""
import tempfile

import torch

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.rules.eprop import EProp
from neuroplastic.rules.signals import Symmetric
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.online import OnlineMethod
from neuroplastic.training.problem import Problem

task = load_task("digits", seed=0).to(torch.float64)

# 1. One layer, reset detached: e-prop with symmetric feedback equals BPTT.
g = torch.Generator().manual_seed(0)
lif = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0, reset=ResetBySubtraction(detach=True))  # e-prop's LIF
network = SpikingNetwork([SpikingLayer(64, 32, lif, scale=2.0, generator=g)],
                         LeakyReadout(32, 10, tau_out=20.0, generator=g)).double()
learner = OnlineMethod("eprop", EProp, Symmetric()).learner(Problem(network, objective_for(task)))
inputs, labels = task.train.inputs[:16].transpose(0, 1), task.train.targets[:16]  # time first: (T, B, n)
eprop, loss = learner.estimate(inputs, labels)
bptt = torch.autograd.grad(loss, learner.params)
names = {id(p): name for name, p in network.named_parameters()}
for p, a, b in zip(learner.params, [e.detach() for e in eprop], bptt):
    print(f"{names[id(p)]:26s} {tuple(p.shape)!s:9s} largest difference e-prop vs BPTT, relative: "
          f"{float((a - b).abs().max() / b.abs().max()):.1e}")
assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-13) for a, b in zip(eprop, bptt))

# 2. Training by name: random e-prop against BPTT, same network size and epochs.
for rule in ("eprop", "bptt"):
    with tempfile.TemporaryDirectory() as out:
        summary = fit("digits", rule, epochs=2, hidden=(64,), seed=0, out=out, progress=False)
    print(f"{rule:5s}: test accuracy {summary['test_accuracy']:.3f} ({summary['wall_time_s']:.1f} s of training)")
    assert summary["test_accuracy"] > 0.6
