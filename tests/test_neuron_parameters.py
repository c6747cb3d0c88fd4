"""Neuron parameters as tensors (one per neuron) and as learnable ``nn.Parameter`` s.

References: a heterogeneous population equals the same neurons simulated one by one with numbers;
gradients with respect to τ and θ of a loss of the spikes and the final voltage equal central finite
differences where no neuron sits inside the (compact) surrogate's support, so the surrogate adds
nothing and the loss is smooth; the gradient of
a gradient with respect to the surrogate's scale (which only the backward pass sees, so spikes never
change with it) equals finite differences; e-prop with a leak per neuron equals BPTT.
"""
import pytest
import torch
from torch import nn
from torch.func import functional_call

from neuroplastic import (
    ALIF,
    LIF,
    AdaptiveLIF,
    ConductanceLIF,
    CurrentLIF,
    FastSigmoid,
    HodgkinHuxley,
    Izhikevich,
    ResetBySubtraction,
    Triangle,
    run,
)
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path

HETEROGENEOUS = {  # a model, its per-neuron parameters, a drive
    "lif": (LIF(sigma=2.0), {"tau_m": [8.0, 10.0, 15.0], "v_th": [-52.0, -50.0, -48.0], "sigma": [0.0, 1.0, 3.0]}, 20.0),
    "cuba": (CurrentLIF(), {"tau_m": [8.0, 10.0, 10.0], "tau_s": [3.0, 10.0, 5.0], "t_ref": [0.0, 2.0, 4.0]}, 0.5),
    "alif": (ALIF(), {"tau_m": [10.0, 20.0, 30.0], "beta": [0.0, 0.05, 0.2], "v_th": [0.5, 0.6, 0.7]}, 0.06),
    "coba": (ConductanceLIF(sigma=1.0), {"tau_e": [3.0, 5.0, 8.0], "e_i": [-85.0, -80.0, -75.0]}, 16.0),
    "adaptive": (AdaptiveLIF(), {"tau_m": [8.0, 10.0, 12.0], "resistance": [0.9, 1.0, 1.1]}, 25.0),
    "izhikevich": (Izhikevich(), {"a": [0.02, 0.1, 0.02], "d": [8.0, 2.0, 0.05], "v_init": [-70.0, -65.0, -60.0]}, 10.0),
    "hh": (HodgkinHuxley(), {"g_na": [110.0, 120.0, 130.0], "v_init": [-67.0, -65.0, -63.0]}, 10.0),
}


@pytest.mark.parametrize("name", HETEROGENEOUS)
def test_a_heterogeneous_population_equals_its_neurons_one_by_one(name):
    model, values, drive = HETEROGENEOUS[name]
    steps, dt = 400, model.default_dt
    current = torch.full((steps, 3), drive, dtype=torch.float64)
    inputs = model.drive(current)
    noise = torch.randn(steps, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    population = model.replace(**{k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()})
    together = run(population, inputs, dt, noise=noise)
    assert together.spikes.sum() > 0
    for i in range(3):
        alone = run(model.replace(**{k: v[i] for k, v in values.items()}), inputs[:, i:i + 1], dt, noise=noise[:, i:i + 1])
        torch.testing.assert_close(together.spikes[:, i], alone.spikes[:, 0], rtol=0, atol=0)
        torch.testing.assert_close(together.state.v[i], alone.state.v[0], rtol=1e-12, atol=1e-12)


def test_tensor_parameters_are_validated_element_by_element():
    with pytest.raises(ValueError, match="LIF.tau_m must be finite and positive, got a tensor of shape"):
        LIF(tau_m=torch.tensor([10.0, -1.0]))
    with pytest.raises(ValueError, match="LIF.t_ref must be finite and non-negative"):
        LIF(t_ref=torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="ALIF.v_th must be finite"):
        ALIF(v_th=torch.tensor([0.6, float("nan")]))
    with pytest.raises(ValueError, match="floating-point tensor"):
        LIF(tau_m=torch.tensor([10, 20]))
    with pytest.raises(ValueError, match="shape \\(\\) or \\(4,\\)"):
        SpikingLayer(3, 4, ALIF(tau_m=torch.full((3,), 20.0)))


def learnable_network(surrogate=FastSigmoid(5.0), seed=0, path="auto"):
    g = torch.Generator().manual_seed(seed)
    neuron = ALIF(tau_m=nn.Parameter(torch.linspace(8.0, 20.0, 10)), beta=0.0, v_th=1.0, t_ref=0.0,
                  surrogate=surrogate)
    layer = SpikingLayer(6, 10, neuron, scale=3.0, generator=g, path=path)
    return SpikingNetwork([layer], LeakyReadout(10, 2, generator=g)).double()


def test_learnable_parameters_belong_to_the_layer():
    net = learnable_network(surrogate=FastSigmoid(nn.Parameter(torch.tensor(5.0))))
    names = dict(net.named_parameters())
    assert {"layers.0.neuron_parameters.tau_m", "layers.0.neuron_parameters.surrogate.scale"} <= set(names)
    assert net.layers[0].neuron.tau_m is names["layers.0.neuron_parameters.tau_m"]
    assert net.layers[0].neuron.tau_m.dtype == torch.float64  # .double() reached it
    assert "layers.0.neuron_parameters.tau_m" in net.state_dict()
    x = (torch.rand(30, 2, 6, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    slower = {"layers.0.neuron_parameters.tau_m": torch.full((10,), 50.0, dtype=torch.float64)}
    assert not torch.equal(functional_call(net, slower, (x,)).readout, net(x).readout)  # the model reads them


def test_gradients_of_a_per_neuron_leak_on_the_fused_path_equal_the_step_path():
    net = learnable_network()
    assert net.layers[0].fused
    x = (torch.rand(40, 3, 6, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    tau = net.layers[0].neuron_parameters.tau_m
    fused = torch.autograd.grad(net(x).readout.pow(2).sum(), tau)[0]
    stepped = torch.autograd.grad(run(net, x, 1.0).readout.pow(2).sum(), tau)[0]
    assert fused.abs().min() > 0
    torch.testing.assert_close(fused, stepped, rtol=1e-10, atol=0)


def narrow_network(kind):
    """A layer whose surrogate is zero outside |v − θ|/θ < 0.001."""
    g = torch.Generator().manual_seed(3)
    tau, threshold = torch.linspace(8.0, 20.0, 8, dtype=torch.float64), torch.linspace(0.9, 1.1, 8, dtype=torch.float64)
    narrow = Triangle(gamma=0.3, width=1e-3)
    if kind == "alif":
        neuron = ALIF(tau_m=tau, tau_a=40.0, beta=0.2, v_th=threshold, t_ref=0.0, surrogate=narrow)
    else:
        neuron = CurrentLIF(tau_m=tau, tau_s=4.0, e_l=0.0, v_th=threshold, t_ref=0.0, reset=ResetBySubtraction(),
                            surrogate=narrow)
    layer = SpikingLayer(5, 8, neuron, recurrent=True, scale=3.0, generator=g)
    return SpikingNetwork([layer], LeakyReadout(8, 2, tau_out=10.0, generator=g)).double()


@pytest.mark.parametrize("kind", ["alif", "cuba"])
@pytest.mark.parametrize("field", ["tau_m", "v_th"])
def test_gradients_with_respect_to_tau_and_threshold_equal_finite_differences(kind, field):
    net = narrow_network(kind)
    x = (torch.rand(60, 2, 5, generator=torch.Generator().manual_seed(4)) < 0.4).double()
    target = torch.randn(60, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    name = f"layers.0.neuron_parameters.{field}"
    base = dict(net.named_buffers())[name]

    def loss(value):  # the spikes, and the final voltage (what τ and θ move smoothly)
        out = functional_call(net, {name: value}, (x,))
        return ((out.readout - target) ** 2).sum() + (out.state.layers[0].neuron.v ** 2).sum()

    leaf = base.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(loss(leaf), leaf)
    h = 1e-6 * base.abs().max()
    differences = torch.stack([(loss(base + h * e) - loss(base - h * e)) / (2 * h) for e in torch.eye(8, dtype=base.dtype)])
    assert differences.abs().max() > 1e-3
    torch.testing.assert_close(gradient, differences, rtol=1e-5, atol=1e-7 * differences.abs().max().item())


def test_the_surrogate_scale_gets_the_gradient_of_a_gradient_equal_to_finite_differences():
    """‖∂L/∂W‖² depends on the scale through the backward pass only; spikes do not move with it."""
    net = learnable_network(path="step")
    x = (torch.rand(40, 3, 6, generator=torch.Generator().manual_seed(6)) < 0.3).double()
    weight = net.layers[0].synapses.weight

    def squared_gradient(scale):
        net.layers[0].neuron = net.layers[0].neuron.replace(surrogate=FastSigmoid(scale))
        (g,) = torch.autograd.grad(net(x).readout.pow(2).sum(), weight, create_graph=True)
        return (g ** 2).sum()

    scale = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    (by_autograd,) = torch.autograd.grad(squared_gradient(scale), scale)
    h = 1e-5
    by_differences = (squared_gradient(torch.tensor(5.0 + h, dtype=torch.float64))
                      - squared_gradient(torch.tensor(5.0 - h, dtype=torch.float64))) / (2 * h)
    assert by_autograd.abs() > 0
    torch.testing.assert_close(by_autograd, by_differences, rtol=1e-6, atol=0)


def test_eprop_with_a_leak_per_neuron_equals_bptt():
    """One layer, reset detached: e-prop is BPTT (REFERENCE.md), with a τ_m per neuron too."""
    from test_eprop import EPROP, assert_equal, batch, bptt_gradients, learner_gradients, small_network, small_task

    task = small_task()
    net = small_network(task, detach=True)
    layer = net.layers[0]
    layer.neuron = layer.neuron.replace(tau_m=torch.linspace(10.0, 30.0, layer.size, dtype=torch.float64))
    for mode in ("online", "sequence"):
        params, grads = learner_gradients(net, task, EPROP, mode)
        assert_equal(grads, bptt_gradients(net, task, params))
    assert batch(task)[0].dtype == torch.float64


def test_every_path_refuses_a_parameter_trained_out_of_range():
    net = learnable_network()
    x = (torch.rand(10, 2, 6, generator=torch.Generator().manual_seed(7)) < 0.3).double()
    with torch.no_grad():
        net.layers[0].neuron_parameters.tau_m[3] = -1.0  # as an optimizer step might leave it
    for path in ("auto", "step"):
        with use_path(path), pytest.raises(ValueError, match="ALIF.tau_m must be finite and positive"):
            net(x)
    with pytest.raises(ValueError, match="ALIF.tau_m"):
        run(net, x, 1.0)
