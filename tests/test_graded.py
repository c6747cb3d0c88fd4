"""Graded spikes: ``s = H(v − θ) · c`` with the reset unchanged. References: the binary layer itself
(``c = 1`` is it bit for bit), the quantizer's closed form on the potentials the layer's own state
holds, the time loop (step path = sequence path), autograd of the straight-through estimator, and
exact RTRL = BPTT on a network with graded spikes and learned delays."""
import json

import pytest
import torch
from test_eprop import batch, bptt_gradients, small_network, small_task
from test_rtrl import relative_error, rtrl_gradients

from neuroplastic import ALIF, LIF, FastSigmoid, run
from neuroplastic.cli.main import main
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import CurrentLIF
from neuroplastic.spikes import LearnedPayload, QuantizedPayload
from neuroplastic.synapses import Dense, LearnedDelays
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import Problem, synaptic_operations, traffic
from neuroplastic.training.recipes import payload_for

DISCRETE_LIF = ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0))
ADAPTIVE = ALIF(tau_m=10.0, tau_a=30.0, beta=0.3, v_th=1.0, t_ref=2.0, surrogate=FastSigmoid(10.0))


def layer(neuron=DISCRETE_LIF, *, payload=None, recurrent=False, path="auto", seed=1):
    generator = torch.Generator().manual_seed(seed)
    return SpikingLayer(20, 16, neuron, recurrent=recurrent, path=path, payload=payload,
                        synapses=Dense(20, 16, scale=3.0, generator=generator),
                        generator=torch.Generator().manual_seed(seed + 1)).double()


def inputs(seed=0, steps=40):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, 4, 20, generator=generator) < 0.3).double()


@pytest.mark.parametrize("case", ["fused", "step", "recurrent", "adaptive"])
def test_a_payload_of_one_is_the_binary_layer_bit_for_bit(case):
    """Values bit for bit; gradients too where a spike has one consumer per step. In a recurrent or
    adaptive layer a spike also feeds the recurrence or the adaptation besides the reset, and autograd
    adds those gradients in another order when the payload comes between (float rounding, 1e-15)."""
    neuron = ADAPTIVE if case == "adaptive" else DISCRETE_LIF
    options = dict(neuron=neuron, recurrent=case == "recurrent", path="step" if case == "step" else "auto")
    binary, graded = layer(**options), layer(**options, payload=LearnedPayload(16))
    assert graded.fused == (case == "fused")  # a payload into the recurrence takes the step path
    assert binary.fused == (case in ("fused", "recurrent"))
    x = inputs()
    out_binary, _ = binary(x)
    out_graded, _ = graded(x)
    assert torch.equal(out_binary, out_graded) and out_binary.sum() > 0
    weights = torch.randn_like(out_binary)
    params = [p for name, p in binary.named_parameters()]
    grads_binary = torch.autograd.grad((out_binary * weights).sum(), params)
    grads_graded = torch.autograd.grad((out_graded * weights).sum(), [p for name, p in graded.named_parameters()
                                                                     if name != "payload.magnitude"])
    for a, b in zip(grads_binary, grads_graded):
        if case in ("fused", "step"):
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def test_the_quantized_payload_is_the_level_of_the_potential_at_the_crossing():
    """``c = 1 + Δ · round(clamp((u − 1)/Δ, 0, 2^b − 1))`` with ``u = v/A`` read off the ALIF state the
    step made (the potential before its reset): the layer's spikes against the closed form."""
    payload = QuantizedPayload(3, max_potential=2.0)
    graded = layer(ADAPTIVE, payload=payload)
    state = graded.init_state(4, dtype=torch.float64)
    seen = set()
    for x in inputs():
        s, state = graded.step(state, x)
        u = state.neuron.v / (ADAPTIVE.v_th + ADAPTIVE.beta * state.neuron.a)
        level = torch.round(torch.clamp((u - 1) / (1.0 / 7), 0, 7))
        spiked = state.neuron.z.bool()
        assert torch.equal(s, torch.where(spiked, 1 + (1.0 / 7) * level, torch.zeros_like(s)))
        assert (u[spiked] >= 1).all()  # a spike is read at or above the threshold
        seen.update(level[spiked].tolist())
    assert len(seen) >= 3  # the payload varies: not a relabelled binary spike
    assert payload.levels(torch.tensor([0.0, 1.1, 1.45, 99.0])).tolist() == [0, 1, 3, 7]


def test_the_straight_through_gradient_of_the_payload():
    """``∂s/∂u = z`` inside the range (the rounding passes gradients), 0 where clamped."""
    payload = QuantizedPayload(4, max_potential=2.0)
    u = torch.tensor([0.05, 1.02, 1.51, 1.99, 2.5], dtype=torch.float64, requires_grad=True)
    z = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    (grad,) = torch.autograd.grad(payload(z, u).sum(), u)
    assert grad.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("payload", ["learned", "bits:4"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_graded_layers_step_by_step_equal_the_sequence(payload, recurrent):
    graded = layer(ADAPTIVE if payload == "bits:4" else DISCRETE_LIF, payload=payload_for(payload, 16),
                   recurrent=recurrent)
    if payload == "learned":
        with torch.no_grad():
            graded.payload.magnitude.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(5))
    net = SpikingNetwork([graded], LeakyReadout(16, 3, generator=torch.Generator().manual_seed(6))).double()
    x = inputs()
    sequence = net(x).readout
    steps = run(net, x, 1.0).readout
    torch.testing.assert_close(sequence, steps, rtol=1e-12, atol=1e-12)
    params = [p for p in net.parameters()]
    for a, b in zip(torch.autograd.grad(sequence.square().sum(), params),
                    torch.autograd.grad(steps.square().sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert a.abs().sum() > 0


def test_rtrl_trains_payloads_and_learned_delays_exactly():
    """RTRL differentiates the network's own step, so it supports graded spikes and delays: it
    equals BPTT on a recurrent network that has both."""
    task = small_task(steps=30)
    g = torch.Generator().manual_seed(1)
    hidden = SpikingLayer(task.n_inputs, 5, ADAPTIVE, recurrent=True, scale=3.0, generator=g,
                          synapses=LearnedDelays(Dense(task.n_inputs, 5, scale=3.0, generator=g), 3, sigma=1.0,
                                                 generator=g), payload=LearnedPayload(5))
    net = SpikingNetwork([hidden], LeakyReadout(5, task.n_outputs, generator=g)).double()
    with torch.no_grad():
        hidden.payload.magnitude.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(3))
    learner, record = rtrl_gradients(net, task)
    reference = bptt_gradients(net, task, learner.params)
    assert len(reference) == 6  # delays' weight and positions, recurrent weight, payload, readout (2)
    assert all(e.abs().max() > 0 for e in reference)
    assert relative_error(record.grads, reference) < 1e-6


def test_the_rate_regularizer_reads_the_events_not_the_payloads():
    """Payloads of 2.5 leave the hidden layer's firing-rate term (and its gradient) as they are."""
    task, labels = small_task(steps=30), torch.tensor([0, 1, 2, 0])
    penalties, grads = [], []
    for payload in (None, LearnedPayload(16)):
        net = SpikingNetwork([layer(payload=payload)], LeakyReadout(16, 3)).double()
        if payload is not None:
            with torch.no_grad():
                payload.magnitude.fill_(2.5)
        output = net(inputs())
        regularized, plain = (Problem(net, objective_for(task), rate_weight=weight, rate_target_hz=0.0)
                              .loss(output, labels) for weight in (1.0, 0.0))
        penalties.append(regularized - plain)
        grads.append(torch.autograd.grad(penalties[-1], net.layers[0].synapses.weight)[0])
        assert torch.equal(output.events[0], (output.spikes[0] != 0).double())
    assert penalties[0] > 0
    torch.testing.assert_close(penalties[0], penalties[1], rtol=1e-15, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-14, atol=1e-16)


def test_traffic_counts_events_and_their_bits():
    graded = layer(ADAPTIVE, payload=QuantizedPayload(4))
    net = SpikingNetwork([graded], LeakyReadout(16, 3)).double()
    x = inputs()
    spikes = net(x).spikes
    events = int((spikes[0] != 0).sum())
    assert traffic(net, spikes) == (events, 4 * events) and events > 0
    assert synaptic_operations(net, x, spikes) == int(x.sum()) * 16 + events * 3
    binary = SpikingNetwork([layer(ADAPTIVE)], LeakyReadout(16, 3)).double()
    binary_spikes = int(binary(x).spikes[0].sum())
    assert traffic(binary, binary(x).spikes) == (binary_spikes, binary_spikes)


def test_bad_payloads_are_refused():
    for bits in (0, -1, 1.5, True, 25, 2000):
        with pytest.raises(ValueError, match="payload bits must be an integer from 1 to 24"):
            QuantizedPayload(bits)
    for bound in (1.0, 0.5, float("nan")):
        with pytest.raises(ValueError, match="max_potential"):
            QuantizedPayload(4, max_potential=bound)
    with pytest.raises(ValueError, match="payload size"):
        LearnedPayload(-1)
    with pytest.raises(ValueError, match="LIF resets its potential within the step"):
        SpikingLayer(20, 16, LIF(), payload=QuantizedPayload(4))
    with pytest.raises(ValueError, match="CurrentLIF resets"):
        SpikingLayer(20, 16, CurrentLIF(), payload=QuantizedPayload(4))
    with pytest.raises(ValueError, match="a payload of 8 magnitudes for a layer of 16 neurons"):
        SpikingLayer(20, 16, DISCRETE_LIF, payload=LearnedPayload(8))
    with pytest.raises(ValueError, match="Payload or None"):
        SpikingLayer(20, 16, DISCRETE_LIF, payload=2.0)
    with pytest.raises(ValueError, match="path='fused'"):
        SpikingLayer(20, 16, DISCRETE_LIF, payload=QuantizedPayload(4), path="fused")
    for graded in ("bits:0", "bits:", "bits:four", "float"):
        with pytest.raises(ValueError):
            payload_for(graded, 4)


def test_train_with_graded_spikes_from_the_command_line(tmp_path, capsys):
    summaries = {}
    for graded in ("none", "bits:4"):
        assert main(["train", "--task", "digits", "--graded", graded, "--epochs", "1",
                     "--out", str(tmp_path / graded.replace(":", "")), "--json"]) == 0
        summaries[graded] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summaries["bits:4"]["test_accuracy"] > 0.5
    for name, summary in summaries.items():
        bits = 1 if name == "none" else 4
        assert summary["bits_per_sample"] == pytest.approx(bits * summary["spikes_per_sample"])
    for argv in (["--graded", "bits:0"], ["--graded", "bits:x"], ["--graded", "learned", "--rule", "eprop"],
                 ["--graded", "bits:4", "--neuron", "cuba-lif"]):
        assert main(["train", "--task", "digits", "--epochs", "1", "--out", str(tmp_path / "bad"), *argv]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
