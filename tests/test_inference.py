"""Evaluation without gradients (``torch.inference_mode``, ``torch.no_grad``) computes what the
training forward pass computes, bit for bit, on every layer path; and the forward-only shortcuts keep
what transforms and forward-mode AD need."""
import pytest
import torch
from torch.func import jvp

from neuroplastic.fused import workspace
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, CurrentLIF, ResetBySubtraction
from neuroplastic.spikes import FastSigmoid, Triangle, spike

NEURONS = {
    "lif": ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0)),  # fused where feed-forward
    "alif": ALIF(tau_a=200.0, beta=0.2, v_th=0.6, t_ref=2.0),
    "cuba": CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0, reset=ResetBySubtraction()),
}


def network(neuron, recurrent, dtype):
    generator = torch.Generator().manual_seed(0)
    layers = [SpikingLayer(9, 16, neuron, recurrent=recurrent, scale=3.0, generator=generator),
              SpikingLayer(16, 12, neuron, recurrent=recurrent, scale=3.0, generator=generator)]
    return SpikingNetwork(layers, LeakyReadout(12, 4, generator=generator)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("name", sorted(NEURONS))
@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
def test_evaluation_equals_the_training_forward_pass(name, recurrent, dtype, mode):
    model = network(NEURONS[name], recurrent, dtype)
    x = (torch.rand(40, 5, 9, generator=torch.Generator().manual_seed(1)) < 0.3).to(dtype)
    trained = model.train()(x)
    assert trained.readout.requires_grad
    with mode():
        evaluated = model.eval()(x)
    assert torch.equal(evaluated.readout, trained.readout.detach())
    for spikes, expected in zip(evaluated.spikes, trained.spikes):
        assert torch.equal(spikes, expected.detach())
    assert sum(float(spikes.sum()) for spikes in evaluated.spikes) > 0  # the comparison saw spikes
    assert not any(float(spikes.sum()) == spikes.numel() for spikes in evaluated.spikes)


def test_without_gradients_a_forward_tangent_still_gets_the_surrogate():
    surrogate = Triangle(0.5)
    x, tangent = torch.linspace(-1.0, 1.0, 11, dtype=torch.float64), torch.ones(11, dtype=torch.float64)
    with torch.no_grad():
        value, derivative = jvp(lambda v: spike(v, surrogate), (x,), (tangent,))
        plain = spike(x, surrogate)
    assert torch.equal(value, plain) and torch.equal(plain, (x >= 0).double())
    torch.testing.assert_close(derivative, surrogate.derivative(x))


def test_inference_mode_reuses_the_workspace():
    like = torch.zeros(3)
    workspace.empty_cache()
    with torch.inference_mode():
        buffer = workspace.take((7, 3), like)
        assert not buffer.is_inference()  # so it may be written later, outside inference mode too
        address = buffer.data_ptr()
        workspace.give(buffer)
        del buffer
        assert workspace.take((7, 3), like).data_ptr() == address
    workspace.empty_cache()
