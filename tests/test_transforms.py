"""The network under function transforms and outer loops, against the step path (float64).

The reference is ``sim.run`` of the network — the one time loop, one ``network.step`` per time step,
autograd through it, no transform. Against it, for every layer kind and input kind:

- higher-order derivatives through ``network(x)`` (where the layer is fused: the fused operations'
  differentiable backward): grad-of-grad, Hessian-vector products, ``jvp`` over ``grad``, a MAML
  meta-gradient — to 1e-10;
- ``torch.func`` transforms of ``network(x)``: ``grad``, ``vmap`` over parameter sets, over inputs and
  over both, ``vmap(grad)``, ``jvp``, ``hessian``.
"""
import pytest
import torch
from torch import nn
from torch.func import functional_call, grad, hessian, jvp, stack_module_state, vmap

from neuroplastic import ALIF, CurrentLIF, FastSigmoid, ResetBySubtraction, Triangle, run
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path
from neuroplastic.spikes import LearnedPayload

LIF = ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(5.0))
KINDS = {  # neuron, recurrent
    "feed-forward LIF": (LIF, False),
    "recurrent LIF": (LIF, True),
    "current-based LIF": (CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0, resistance=5.0,
                                     reset=ResetBySubtraction(), surrogate=FastSigmoid(5.0)), False),
    "recurrent ALIF": (ALIF(tau_m=10.0, tau_a=50.0, beta=0.3, v_th=1.0, t_ref=2.0, surrogate=Triangle(0.5)), True),
}
INPUTS = ["sparse spikes", "dense spikes", "currents"]
T, B, N_IN, HIDDEN, N_OUT = 25, 3, 12, 10, 3


def network(kind, seed=0):
    neuron, recurrent = KINDS[kind]
    g = torch.Generator().manual_seed(seed)
    layers = [SpikingLayer(N_IN, HIDDEN, neuron, recurrent=recurrent, scale=4.0, generator=g),
              SpikingLayer(HIDDEN, HIDDEN, neuron, recurrent=recurrent, scale=4.0, generator=g)]
    return SpikingNetwork(layers, LeakyReadout(HIDDEN, N_OUT, tau_out=10.0, generator=g)).double()


def inputs(kind, shape=(T, B, N_IN), seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "currents":
        return 0.6 * torch.rand(shape, generator=g, dtype=torch.float64)
    density = {"sparse spikes": 0.1, "dense spikes": 0.6}[kind]
    return (torch.rand(shape, generator=g, dtype=torch.float64) < density).double()


class Stepped(nn.Module):
    """The network run step by step by the one time loop: the reference."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return run(self.net, x, 1.0).readout


def readout_of(net, path):
    """``params, x -> readout`` through ``network(x)`` (path "forward") or the time loop ("step")."""
    if path == "forward":
        return lambda params, x: functional_call(net, params, (x,)).readout
    stepped = Stepped(net)
    return lambda params, x: functional_call(stepped, {f"net.{k}": v for k, v in params.items()}, (x,))


def loss_of(net, path, target):
    readout = readout_of(net, path)
    def loss(params, x):
        y = readout(params, x)
        return ((y - target) ** 2).mean() + 0.1 * (y[-1] ** 3).mean()
    return loss


def parameters(net):
    return {name: p.detach().clone().requires_grad_() for name, p in net.named_parameters()}


def assert_same(actual, expected, rtol=1e-10):
    for name in expected:
        a, e = actual[name], expected[name]
        torch.testing.assert_close(a, e, rtol=rtol, atol=rtol * max(e.abs().max().item(), 1e-30), msg=name)


def case(kind, input_kind):
    net, x = network(kind), inputs(input_kind)
    target = torch.randn(T, B, N_OUT, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return net, x, target


def second_order(net, x, target, path):
    """grad-of-grad, a Hessian-vector product, jvp over grad and a MAML meta-gradient (autograd)."""
    loss = loss_of(net, path, target)
    params = parameters(net)
    names = list(params)
    first = torch.autograd.grad(loss(params, x), list(params.values()), create_graph=True)
    norm = sum((g ** 2).sum() for g in first)
    grad_of_grad = torch.autograd.grad(norm, list(params.values()), retain_graph=True)
    direction = [torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(i))
                 for i, p in enumerate(params.values())]
    hvp = torch.autograd.grad(sum((g * v).sum() for g, v in zip(first, direction)), list(params.values()),
                              retain_graph=True)
    adapted = {name: p - 0.05 * g for (name, p), g in zip(params.items(), first)}  # one MAML inner step
    query = inputs("sparse spikes", seed=7)
    meta = torch.autograd.grad(loss(adapted, query), list(params.values()))
    return {f"{what}.{name}": value for what, values in (("gradgrad", grad_of_grad), ("hvp", hvp), ("maml", meta))
            for name, value in zip(names, values)}


@pytest.mark.parametrize("input_kind", INPUTS)
@pytest.mark.parametrize("kind", KINDS)
def test_higher_order_derivatives_equal_the_step_path(kind, input_kind):
    net, x, target = case(kind, input_kind)
    assert net.layers[0].fused == (kind != "current-based LIF")  # LIF and ALIF, recurrent too
    assert sum(z.sum() for z in net(x).spikes) > 0
    expected = second_order(net, x, target, "step")
    assert all(v.abs().max() > 0 for k, v in expected.items() if "layers.0" in k)
    assert_same(second_order(net, x, target, "forward"), expected)


@pytest.mark.parametrize("chunks", [1, 3, 6])
def test_higher_order_through_chunks_and_a_weight_shared_by_two_fused_layers(chunks):
    """The state carried from chunk to chunk, and one weight feeding both layers, reach each fused node
    through other nodes too: its differentiable backward must give its own partial derivatives, not
    total ones (or the engine counts those paths twice, and more with every chunk)."""
    g = torch.Generator().manual_seed(9)
    layers = [SpikingLayer(HIDDEN, HIDDEN, LIF, scale=4.0, generator=g) for _ in range(2)]
    layers[1].synapses.weight = layers[0].synapses.weight  # one Parameter, two fused layers
    net = SpikingNetwork(layers, LeakyReadout(HIDDEN, N_OUT, generator=g)).double()
    x = inputs("sparse spikes", shape=(T, B, HIDDEN))
    target = torch.randn(T, B, N_OUT, dtype=torch.float64, generator=g)
    weights = [layers[0].synapses.weight]

    def chunked(path):
        state, outputs = None, []
        with use_path(path):
            for piece in x.chunk(chunks):
                out = net(piece, state)
                state, outputs = out.state, outputs + [out.readout]
        return ((torch.cat(outputs) - target) ** 2).mean()

    results = {}
    for path in ("fused", "step"):
        first = torch.autograd.grad(chunked(path), weights, create_graph=True)
        plain = torch.autograd.grad(chunked(path), weights)
        torch.testing.assert_close(first[0], plain[0], rtol=1e-12, atol=1e-12)
        results[path] = (first[0], torch.autograd.grad((first[0] ** 2).sum(), weights)[0])
    for got, want in zip(results["fused"], results["step"]):
        assert want.abs().max() > 0
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10 * want.abs().max().item())


@pytest.mark.parametrize("input_kind", INPUTS)
@pytest.mark.parametrize("kind", KINDS)
def test_jvp_over_grad_equals_the_step_path(kind, input_kind):
    net, x, target = case(kind, input_kind)
    params = {k: v.detach() for k, v in parameters(net).items()}
    tangent = {k: torch.randn(v.shape, dtype=v.dtype, generator=torch.Generator().manual_seed(3)) for k, v in params.items()}
    forward = jvp(lambda p: grad(loss_of(net, "forward", target))(p, x), (params,), (tangent,))[1]
    reference = parameters(net)  # Hessian-vector product by double backward through the time loop
    first = torch.autograd.grad(loss_of(net, "step", target)(reference, x), list(reference.values()), create_graph=True)
    hvp = torch.autograd.grad(sum((g * tangent[k]).sum() for k, g in zip(reference, first)), list(reference.values()))
    assert_same(forward, dict(zip(reference, hvp)))


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_func_transforms_equal_the_step_path(kind, density):
    net = network(kind)
    g = torch.Generator().manual_seed(4)
    xs = (torch.rand(4, T, B, N_IN, generator=g, dtype=torch.float64) < density).double()  # 4 inputs
    target = torch.randn(T, B, N_OUT, dtype=torch.float64, generator=g)
    loss, reference = loss_of(net, "forward", target), loss_of(net, "step", target)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def step_grad(p, x):
        leaves = {k: v.clone().requires_grad_() for k, v in p.items()}
        return dict(zip(leaves, torch.autograd.grad(reference(leaves, x), list(leaves.values()), allow_unused=True,
                                                     materialize_grads=True)))

    assert_same(grad(loss)(params, xs[0]), step_grad(params, xs[0]))
    # vmap over parameter sets (three perturbed copies of the network), over inputs, over both
    sets = [{k: v + 0.05 * i * torch.randn(v.shape, dtype=v.dtype, generator=g) for k, v in params.items()}
            for i in range(3)]
    stacked = {k: torch.stack([s[k] for s in sets]) for k in params}
    readout, stepped = readout_of(net, "forward"), readout_of(net, "step")
    by_params = vmap(readout, in_dims=(0, None))(stacked, xs[0])
    by_inputs = vmap(readout, in_dims=(None, 0))(params, xs[:3])
    by_both = vmap(readout)(stacked, xs[:3])
    for i in range(3):
        torch.testing.assert_close(by_params[i], stepped(sets[i], xs[0]), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(by_inputs[i], stepped(params, xs[i]), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(by_both[i], stepped(sets[i], xs[i]), rtol=1e-10, atol=1e-12)
    # per-input gradients
    per_input = vmap(grad(loss), in_dims=(None, 0))(params, xs[:3])
    for i in range(3):
        assert_same({k: v[i] for k, v in per_input.items()}, step_grad(params, xs[i]))
    # jvp: the directional derivative of the loss is the step path's gradient along the tangent
    tangent = {k: torch.randn(v.shape, dtype=v.dtype, generator=g) for k, v in params.items()}
    directional = jvp(lambda p: loss(p, xs[3]), (params,), (tangent,))[1]
    expected = sum((gr * tangent[k]).sum() for k, gr in step_grad(params, xs[3]).items())
    torch.testing.assert_close(directional, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("kind", KINDS)
def test_the_hessian_of_a_small_net_equals_double_backward_through_the_time_loop(kind, density):
    net = network(kind)
    x = (torch.rand(T, 2, N_IN, generator=torch.Generator().manual_seed(5), dtype=torch.float64) < density).double()
    target = torch.randn(T, 2, N_OUT, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    name = "layers.1.synapses.weight"
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(weight, path):
        return loss_of(net, path, target)({**params, name: weight}, x)

    active = net(x).spikes[0].sum((0, 1)).argsort(descending=True)[:4]  # the 4 busiest presynaptic neurons
    weight = params[name][:, active].contiguous()  # their 40 synapses: a 40 × 40 Hessian

    def restricted(w, path):
        full = params[name].clone()
        full[:, active] = w
        return loss(full, path)

    by_transform = hessian(lambda w: restricted(w, "forward"))(weight).reshape(weight.numel(), -1)
    leaf = weight.clone().requires_grad_()
    (first,) = torch.autograd.grad(restricted(leaf, "step"), leaf, create_graph=True)
    rows = [torch.autograd.grad(first.flatten()[i], leaf, retain_graph=True)[0].flatten() for i in range(leaf.numel())]
    expected = torch.stack(rows)
    assert expected.abs().max() > 0
    torch.testing.assert_close(by_transform, expected, rtol=1e-10, atol=1e-10 * expected.abs().max().item())


def test_populations_through_stack_module_state():
    """Several networks of one architecture as one batched call (neuroevolution's populations)."""
    nets = [network("feed-forward LIF", seed=s) for s in range(3)]
    params, buffers = stack_module_state(nets)
    x = inputs("sparse spikes")
    out = vmap(lambda p, b: functional_call(nets[0], (p, b), (x,)).readout)(params, buffers)
    for i, net in enumerate(nets):
        torch.testing.assert_close(out[i], run(net, x, 1.0).readout, rtol=1e-10, atol=1e-12)


def test_explicit_fused_path_refuses_transforms_and_use_path_chooses():
    net = network("feed-forward LIF")
    x = inputs("sparse spikes")
    params = {k: v.detach() for k, v in net.named_parameters()}
    loss = loss_of(net, "forward", torch.zeros(T, B, N_OUT, dtype=torch.float64))
    expected = grad(loss)(params, x)  # auto: the step path under the transform
    with use_path("fused"), pytest.raises(RuntimeError, match="torch.func"):
        grad(loss)(params, x)
    with use_path("step"):
        out = net(x)
        assert type(out.spikes[0].grad_fn).__name__ == "StackBackward0"  # one spike per step
        assert_same(grad(loss)(params, x), expected)
    assert type(net(x).spikes[0].grad_fn).__name__ == "_LinearLeakySequenceBackward"
    with pytest.raises(ValueError, match="path='fused' cannot run this layer: its spikes carry a payload"):
        SpikingLayer(4, 3, LIF, recurrent=True, path="fused", payload=LearnedPayload(3))
    with pytest.raises(ValueError, match="path must be one of"):
        SpikingLayer(4, 3, LIF, path="fast")
    with pytest.raises(ValueError, match="path must be one of"), use_path("fast"):
        pass


def test_input_checks_hold_under_transforms():
    net = network("recurrent LIF")
    x = inputs("dense spikes")
    x[3, 1, 2] = float("nan")
    params = {k: v.detach() for k, v in net.named_parameters()}
    readout = readout_of(net, "forward")
    with pytest.raises(ValueError, match="NaN or infinite"):
        readout(params, x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        vmap(readout, in_dims=(None, 0))(params, torch.stack([x.nan_to_num(), x]))  # the second sample's NaN


def test_batched_gradients_and_forward_mode_ad_through_a_fused_layer():
    """Vectorized Jacobians (autograd's batched gradients) and forward-mode AD of a buffer (a leak per
    neuron): the fused layer gives way to the step path, or its backward to its differentiable form."""
    import torch.autograd.forward_ad as forward_ad

    net = network("feed-forward LIF")
    net.layers[0].neuron = net.layers[0].neuron.replace(tau_m=torch.linspace(8.0, 20.0, HIDDEN, dtype=torch.float64))
    x = inputs("sparse spikes")
    name = "layers.0.synapses.weight"
    weight = dict(net.named_parameters())[name].detach()

    def final_readout(w):
        return functional_call(net, {name: w}, (x,)).readout[-1].sum(0)

    with use_path("step"):
        expected = torch.autograd.functional.jacobian(final_readout, weight)
    assert expected.abs().max() > 0
    torch.testing.assert_close(torch.autograd.functional.jacobian(final_readout, weight, vectorize=True), expected,
                               rtol=1e-10, atol=1e-12)
    tau = net.layers[0].neuron_parameters.tau_m
    tangents = []
    for path in ("auto", "step"):
        with forward_ad.dual_level(), use_path(path):
            dual = forward_ad.make_dual(tau, torch.ones_like(tau))
            out = functional_call(net, {"layers.0.neuron_parameters.tau_m": dual}, (x,))
            tangents.append(forward_ad.unpack_dual(out.state.layers[0].neuron.v).tangent)
    assert tangents[1].abs().max() > 0
    torch.testing.assert_close(tangents[0], tangents[1], rtol=1e-12, atol=1e-12)
