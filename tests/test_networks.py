"""Networks: the sequence path equals the step path of the one time loop, values and gradients."""
import math

import pytest
import torch

from neuroplastic import ALIF, CurrentLIF, FastSigmoid, ResetBySubtraction, run
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.sim.filters import leaky_integrate

LIF_FOR_LEARNING = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0))
NEURONS = {
    "fused-lif": (LIF_FOR_LEARNING, False),
    "recurrent-alif": (ALIF(tau_m=20.0, tau_a=200.0, beta=0.1, v_th=0.6, t_ref=2.0), True),
    "recurrent-cuba": (CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0,
                                  reset=ResetBySubtraction()), True),
}


def network(neuron, recurrent, seed=0, sizes=(12, 16, 8, 3)):
    generator = torch.Generator().manual_seed(seed)
    layers = [SpikingLayer(a, b, neuron, recurrent=recurrent, scale=3.0, generator=generator)
              for a, b in zip(sizes[:-2], sizes[1:-1])]
    net = SpikingNetwork(layers, LeakyReadout(sizes[-2], sizes[-1], tau_out=10.0, generator=generator))
    return net.double()


def spikes_in(steps=60, batch=4, n=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=generator) < 0.3).double()


@pytest.mark.parametrize("name", NEURONS)
def test_sequence_path_equals_the_step_path_of_run(name):
    neuron, recurrent = NEURONS[name]
    net, x = network(neuron, recurrent), spikes_in()
    assert net.layers[0].fused == (name != "recurrent-cuba")  # the recurrent ALIF: its own fused operation
    stepped = run(net, x, 1.0).readout
    sequence = net(x)
    torch.testing.assert_close(sequence.readout, stepped, rtol=1e-12, atol=1e-12)
    assert sum(z.sum() for z in sequence.spikes) > 0


@pytest.mark.parametrize("name", NEURONS)
def test_gradients_of_both_paths_agree(name):
    neuron, recurrent = NEURONS[name]
    net, x = network(neuron, recurrent), spikes_in()
    target = torch.randn(60, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    params = tuple(net.parameters())
    by_sequence = torch.autograd.grad(((net(x).readout - target) ** 2).sum(), params)
    by_steps = torch.autograd.grad(((run(net, x, 1.0).readout - target) ** 2).sum(), params)
    for a, b in zip(by_sequence, by_steps):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert any(g.abs().sum() > 0 for g in by_sequence[:-2])  # gradients reach the hidden weights


def test_state_carries_across_chunks_exactly():
    net, x = network(*NEURONS["recurrent-alif"]), spikes_in()
    whole = net(x).readout
    first = net(x[:25])
    second = net(x[25:], first.state)
    torch.testing.assert_close(torch.cat([first.readout, second.readout]), whole)


def test_leaky_integrate_is_the_recursive_filter_and_its_gradient():
    x = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    y0 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    y = leaky_integrate(x, 0.8, y0)
    powers = 0.8 ** torch.arange(40, dtype=torch.float64)
    closed = torch.stack([(powers[: t + 1].flip(0)[:, None] * x[: t + 1]).sum(0) + 0.8 ** (t + 1) * y0
                          for t in range(40)])
    torch.testing.assert_close(y, closed)
    assert torch.autograd.gradcheck(lambda a, b: leaky_integrate(a, 0.8, b), (x, y0))


def test_readout_decay_is_exp_of_dt_over_tau():
    readout = LeakyReadout(2, 2, tau_out=30.0, dt=0.5)
    assert readout.decay == pytest.approx(math.exp(-0.5 / 30.0))


def test_bad_shapes_and_models_raise():
    net = network(*NEURONS["fused-lif"])
    with pytest.raises(ValueError, match=r"\(T, B, n_inputs\)"):
        net(torch.zeros(10, 12))
    with pytest.raises(ValueError, match="neuron model"):
        SpikingLayer(3, 4, "lif")
    with pytest.raises(ValueError, match="at least one"):
        SpikingNetwork([], LeakyReadout(3, 2))


def test_dropout_acts_only_while_training():
    generator = torch.Generator().manual_seed(0)
    layer = SpikingLayer(12, 16, LIF_FOR_LEARNING, scale=3.0, generator=generator)
    net = SpikingNetwork([layer], LeakyReadout(16, 3, generator=generator), dropout=0.5).double()
    x = spikes_in()
    net.eval()
    torch.testing.assert_close(net(x).readout, run(net, x, 1.0).readout)
    net.train()
    torch.manual_seed(0)
    dropped = net(x).readout
    assert not torch.allclose(dropped, net.eval()(x).readout)
    with pytest.raises(ValueError, match="dropout"):
        SpikingNetwork([layer], LeakyReadout(16, 3), dropout=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_filter_kernel_is_the_loop_bit_for_bit(dtype):
    """``leaky_integrate``'s C++ pass against its Python loop (``y_t = decay · y_{t−1} + x_t``), forward,
    reversed, and in the gradient; the loop still runs under transforms and for a graph of the gradient."""
    from neuroplastic.fused import extension
    from neuroplastic.sim.filters import reverse_leaky_integrate

    if extension.backend() != "cpp":
        pytest.skip("needs the C++ kernel")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, 5, generator=generator, dtype=dtype).requires_grad_()
    y0 = torch.randn(6, 5, generator=generator, dtype=dtype)
    loop, y = [], y0
    for x_t in x.detach():
        y = 0.9 * y + x_t
        loop.append(y)
    out = leaky_integrate(x, 0.9, y0)
    assert torch.equal(out.detach(), torch.stack(loop))
    weights = torch.randn(200, 6, 5, generator=generator, dtype=dtype)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    backward, g = [], torch.zeros_like(y0)
    for w_t in weights.flip(0):
        g = 0.9 * g + w_t
        backward.append(g)
    assert torch.equal(grad, torch.stack(backward[::-1]))
    assert torch.equal(reverse_leaky_integrate(weights, 0.9), grad)
    (second,) = torch.autograd.grad((torch.autograd.grad((out ** 2).sum(), x, create_graph=True)[0] ** 2).sum(), x)
    assert second.abs().sum() > 0


def test_an_initial_value_of_another_dtype_or_shape_takes_the_loop():
    x, y0 = torch.randn(20, 3, 4), torch.randn(1, 4, dtype=torch.float64)
    loop, y = [], y0
    for x_t in x:
        y = 0.8 * y + x_t
        loop.append(y)
    assert torch.equal(leaky_integrate(x, 0.8, y0), torch.stack(loop).to(x.dtype).expand(20, 3, 4))
