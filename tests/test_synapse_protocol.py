"""The synapse protocol (state of their own), Dale's and conductance synapses in layers, and noise
through layers and networks: the sequence path equals the one time loop, and e-prop through a
synapse with state equals BPTT exactly when ``StepInfo.pre`` is what reaches the weights."""
import pytest
import torch

from neuroplastic import ALIF, LIF, ConductanceLIF, FastSigmoid, ResetBySubtraction, ResetTo, run
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path
from neuroplastic.synapses import ConductanceSynapses, DaleDense, DaleRecurrent, Dense

LIF_FOR_LEARNING = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0))


class Delayed(Dense):
    """Dense synapses behind a one-step delay: a synapse with state (the last input)."""

    def init_state(self, batch, *, dtype=torch.float32, device=None):
        return (torch.zeros(batch, self.n_in, dtype=dtype, device=device),)

    def step(self, state, x):
        return self(state[0]), (x,)

    def sequence(self, state, x):
        return self(torch.cat([state[0][None], x[:-1]])), (x[-1],)

    def presynaptic(self, state, x):
        return state[0]


def spikes(shape, density=0.3, seed=1):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density).double()


def delayed_network(neuron=LIF_FOR_LEARNING, recurrent=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    layer = SpikingLayer(8, 12, neuron, synapses=Delayed(8, 12, scale=3.0, generator=g), recurrent=recurrent,
                         scale=3.0, generator=g)
    return SpikingNetwork([layer], LeakyReadout(12, 3, generator=g)).double()


@pytest.mark.parametrize("path", ["fused", "step"])
def test_a_synapse_with_state_runs_the_same_on_every_path(path):
    net, x = delayed_network(), spikes((40, 3, 8))
    with use_path(path):
        whole = net(x)
        first = net(x[:15])
        second = net(x[15:], first.state)
    stepped = run(net, x, 1.0)
    torch.testing.assert_close(whole.readout, stepped.readout, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cat([first.readout, second.readout]), whole.readout, rtol=1e-12, atol=1e-12)
    assert torch.equal(whole.state.layers[0].synapses[0], x[-1])  # the synapse's state: the last input
    assert whole.readout[0].abs().max() == net.readout.synapses.bias.abs().max()  # nothing arrives at t = 0


def test_eprop_through_a_synapse_with_state_sees_what_reaches_the_weights():
    """One layer, reset detached: e-prop equals BPTT (REFERENCE.md) with StepInfo.pre the delayed input."""
    from test_eprop import EPROP, assert_equal, bptt_gradients, learner_gradients, small_task

    task = small_task()
    neuron = ALIF(tau_m=20.0, beta=0.0, v_th=0.6, t_ref=0.0, reset=ResetBySubtraction(detach=True))
    g = torch.Generator().manual_seed(1)
    layer = SpikingLayer(task.n_inputs, 5, neuron, synapses=Delayed(task.n_inputs, 5, scale=3.0, generator=g))
    net = SpikingNetwork([layer], LeakyReadout(5, task.n_outputs, generator=g)).double()
    for mode in ("online", "sequence"):
        params, grads = learner_gradients(net, task, EPROP, mode)
        assert_equal(grads, bptt_gradients(net, task, params))


def test_dale_synapses_in_a_layer():
    g = torch.Generator().manual_seed(2)
    neuron = ALIF(tau_m=20.0, beta=0.2, v_th=0.6, t_ref=2.0)
    layer = SpikingLayer(10, 8, neuron, synapses=DaleDense(10, 8, scale=3.0, generator=g),
                         recurrent=DaleRecurrent(8, scale=3.0, generator=g))
    net = SpikingNetwork([layer], LeakyReadout(8, 2, generator=g)).double()
    x = spikes((50, 2, 10), 0.4)
    out = net(x)
    torch.testing.assert_close(out.readout, run(net, x, 1.0).readout, rtol=1e-12, atol=1e-12)
    assert sum(z.sum() for z in out.spikes) > 0
    loss = out.readout.pow(2).sum()
    loss.backward()
    assert layer.synapses.parametrizations.weight.original.grad.abs().max() > 0


def test_conductance_synapses_feed_conductance_neurons_in_a_layer():
    weight = 0.3 * torch.rand(6, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    neuron = ConductanceLIF(sigma=2.0, reset=ResetTo(-60.0))
    layer = SpikingLayer(10, 6, neuron, dt=0.1, synapses=ConductanceSynapses(weight, n_excitatory=7))
    net = SpikingNetwork([layer], LeakyReadout(6, 2, dt=0.1)).double()
    x = spikes((300, 2, 10), 0.2)
    noise = (torch.randn(300, 2, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64),)
    out = net(x, noise=noise)
    torch.testing.assert_close(out.readout, run(net, x, 0.1, noise=noise).readout, rtol=1e-12, atol=1e-12)
    assert out.spikes[0].sum() > 0


def noisy_network(seed=0):
    g = torch.Generator().manual_seed(seed)
    noisy = LIF(tau_m=10.0, e_l=0.0, v_th=1.0, reset=ResetBySubtraction(), t_ref=0.0, sigma=0.5)
    layers = [SpikingLayer(6, 8, noisy, scale=10.0, generator=g),
              SpikingLayer(8, 5, LIF_FOR_LEARNING, scale=4.0, generator=g)]
    return SpikingNetwork(layers, LeakyReadout(5, 2, generator=g)).double()


def test_noise_reaches_the_neurons_through_layers_and_networks():
    net, x = noisy_network(), spikes((80, 3, 6))
    frozen = (torch.randn(80, 3, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64), None)
    torch.testing.assert_close(net(x, noise=frozen).readout, run(net, x, 1.0, noise=frozen).readout,
                               rtol=1e-12, atol=1e-12)
    quiet = net(x).readout
    assert all(z.sum() > 0 for z in net(x).spikes)
    assert not torch.equal(net(x, noise=frozen).readout, quiet)
    drawn = [run(net, x, 1.0, noise=torch.Generator().manual_seed(6)).readout for _ in range(2)]
    assert torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[0], quiet)
    z, _ = net.layers[0].step(net.layers[0].init_state(3, dtype=torch.float64), x[0], frozen[0][0])
    reference, _ = net.layers[0].neuron.step(net.layers[0].neuron.init_state((3, 8), dtype=torch.float64),
                                             net.layers[0].synapses(x[0]), 1.0, frozen[0][0])
    assert torch.equal(z, reference)
    with pytest.raises(ValueError, match="one entry per layer"):
        net(x, noise=frozen[:1])


def test_a_network_run_names_its_outputs_the_readout():
    net, x = noisy_network(), spikes((10, 2, 6))
    result = run(net, x, 1.0)
    assert result.readout.shape == (10, 2, 2) and result.outputs is result.readout
    with pytest.raises(AttributeError, match="readout"):
        result.spikes
    assert run(LIF(), torch.full((10, 2), 20.0), 0.1).spikes.shape == (10, 2)
