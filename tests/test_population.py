"""A population of networks run as one (``networks.population``) equals a loop over the models:
readouts, spikes and the gradients of every stacked parameter."""
import pytest
import torch
from torch.func import functional_call

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path
from neuroplastic.networks import population
from neuroplastic.networks.population import population_forward, stack_networks
from neuroplastic.neurons import ALIF, CurrentLIF, ResetBySubtraction
from neuroplastic.spikes import FastSigmoid, LearnedPayload

M, T, B, N_IN = 3, 12, 4, 5
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}

NEURONS = {
    "lif": ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0)),  # the fused path's
    "alif": ALIF(tau_a=200.0, beta=0.2, v_th=0.6, t_ref=2.0),
    "cuba": CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0, reset=ResetBySubtraction()),
}


def networks(neuron, *, recurrent=False, hidden=(7, 6), dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    models = []
    for _ in range(M):
        sizes = (N_IN, *hidden)
        layers = [SpikingLayer(n_in, n_out, neuron, recurrent=recurrent, scale=3.0, generator=generator)
                  for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        models.append(SpikingNetwork(layers, LeakyReadout(hidden[-1], 3, generator=generator)).to(dtype))
    return models


def inputs(shape, dtype, seed=1):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.4).to(dtype)


def loop_and_population(models, x):
    """Each model's readout and spikes by its own forward pass and by ``population_forward``, with the
    gradients of one loss through each."""
    parameters = stack_networks(models)
    batched = population_forward(models[0], parameters, x)
    per_model = [model(x if x.dim() == 3 else x[m]) for m, model in enumerate(models)]
    weights = torch.linspace(-1.0, 1.0, batched.readout[0].numel(), dtype=x.dtype).view_as(batched.readout[0])
    (batched.readout * weights).sum().backward()
    sum((output.readout * weights).sum() for output in per_model).backward()
    return parameters, batched, per_model


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, recurrent, shared", [
    ("lif", False, True), ("lif", False, False), ("lif", True, True),
    ("alif", False, True), ("alif", True, False), ("cuba", False, True), ("cuba", True, True),
])
def test_population_equals_a_loop_over_the_models(name, recurrent, shared, dtype):
    models = networks(NEURONS[name], recurrent=recurrent, dtype=dtype)
    x = inputs((T, B, N_IN) if shared else (M, T, B, N_IN), dtype)
    parameters, batched, per_model = loop_and_population(models, x)
    tolerance = TOLERANCE[dtype]
    for m, (model, output) in enumerate(zip(models, per_model)):
        torch.testing.assert_close(batched.readout[m], output.readout, rtol=0, atol=tolerance)
        for spikes, expected in zip(batched.spikes, output.spikes):
            torch.testing.assert_close(spikes[m], expected, rtol=0, atol=0)
        for parameter_name, parameter in model.named_parameters():
            torch.testing.assert_close(parameters[parameter_name].grad[m], parameter.grad, rtol=0,
                                       atol=tolerance * max(1.0, float(parameter.grad.abs().max())))
    assert sum(spikes.sum() for spikes in batched.spikes) > 0  # the comparison saw spikes


def test_step_path_and_transforms_give_the_same_population():
    models = networks(NEURONS["lif"], dtype=torch.float64)
    x = inputs((T, B, N_IN), torch.float64)
    parameters = {name: p.detach() for name, p in stack_networks(models).items()}
    fused = population_forward(models[0], parameters, x).readout
    with use_path("step"):
        step = population_forward(models[0], parameters, x).readout
    one = {name: p[1] for name, p in parameters.items()}
    torch.testing.assert_close(step, fused, rtol=0, atol=1e-12)
    torch.testing.assert_close(functional_call(models[0], one, (x,)).readout, fused[1], rtol=0, atol=1e-12)


def test_inference_mode_population_matches():
    models = networks(NEURONS["alif"], recurrent=True)
    x = inputs((T, B, N_IN), torch.float32)
    parameters = stack_networks(models)
    with torch.inference_mode():
        readout = population_forward(models[0], parameters, x).readout
    torch.testing.assert_close(readout[2], models[2](x).readout.detach(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("per_chunk", [1, 2])
@pytest.mark.parametrize("name, recurrent, shared", [("lif", False, True), ("lif", True, True), ("lif", False, False),
                                                     ("alif", True, False)])
def test_readouts_only_in_chunks_equal_the_loop_pass_after_pass(name, recurrent, shared, per_chunk, monkeypatch):
    """``keep_spikes=False`` runs the models in chunks (one or two models per chunk here, the last one
    shorter) and gives each chunk's hidden spikes and currents back to the fused kernels' workspace: the
    next chunk and pass write into them, and every readout, joined from the chunks', is still each
    model's own."""
    models = networks(NEURONS[name], recurrent=recurrent, hidden=(7, 6))
    x = inputs((T, B, N_IN) if shared else (M, T, B, N_IN), torch.float32)
    parameters = stack_networks(models)
    monkeypatch.setattr(population, "CHUNK_BYTES", 1 if per_chunk == 1 else per_chunk * T * B * 7 * 4)
    assert population._chunk(models[0], x) == per_chunk
    given = []
    original = population.workspace.give
    monkeypatch.setattr(population.workspace, "give", lambda buffer: given.append(buffer.shape) or original(buffer))
    with torch.inference_mode():
        kept = population_forward(models[0], parameters, x).readout
        for _ in range(2):
            output = population_forward(models[0], parameters, x, keep_spikes=False)
            assert output.spikes == ()
            torch.testing.assert_close(output.readout, kept, rtol=0, atol=1e-6)
    for m, model in enumerate(models):
        torch.testing.assert_close(kept[m], model(x if shared else x[m]).readout.detach(), rtol=0, atol=1e-6)
    assert len(given) >= 2 * -(-M // per_chunk) * 3  # per chunk: both layers' spikes, and currents


def test_readouts_only_carry_the_gradients_of_every_model(monkeypatch):
    models = networks(NEURONS["lif"], recurrent=True, dtype=torch.float64)
    x = inputs((T, B, N_IN), torch.float64)
    monkeypatch.setattr(population, "CHUNK_BYTES", 1)
    grads = []
    for keep in (True, False):
        parameters = stack_networks(models)
        population_forward(models[0], parameters, x, keep_spikes=keep).readout.square().sum().backward()
        grads.append({name: p.grad for name, p in parameters.items()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("trained", [
    ("layers.1.synapses.weight", "layers.1.recurrent.parametrizations.weight.original", "readout.synapses.weight"),
    ("layers.0.recurrent.parametrizations.weight.original", "readout.synapses.weight"),  # input synapses frozen
])
def test_a_partly_frozen_population_keeps_what_its_graph_saved(trained, keep, monkeypatch):
    """Frozen synapses, trained later ones: the frozen synapses' spikes and currents carry no gradient
    but a later operation's graph saved them, so none go back to the workspace while a graph is built. Two
    passes, one model per chunk, then the first pass's gradients — first order, and through
    ``create_graph`` (the recurrent kernel's differentiable backward rereads its currents) — against the
    step path's."""
    models = networks(NEURONS["lif"], recurrent=True, hidden=(7, 7), dtype=torch.float64)
    x = inputs((T, B, N_IN), torch.float64)
    monkeypatch.setattr(population, "CHUNK_BYTES", 1)

    def gradients():
        parameters = stack_networks(models)
        for name, parameter in parameters.items():
            parameter.requires_grad_(name in trained)
        first = population_forward(models[0], parameters, x, keep_spikes=keep).readout
        population_forward(models[0], parameters, 1.0 - x, keep_spikes=keep)  # overwrites what was given back
        chosen = [parameters[name] for name in trained]
        grads = torch.autograd.grad(first.square().sum(), chosen, create_graph=True)
        second = torch.autograd.grad(sum(grad.square().sum() for grad in grads), chosen)
        return [grad.detach() for grad in grads] + list(second)

    fused = gradients()
    with use_path("step"):
        step = gradients()
    for name, got, want in zip(trained * 2, fused, step):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9, msg=name)
    assert all(grad.abs().sum() > 0 for grad in step)


def test_what_a_population_cannot_run_is_refused():
    models = networks(NEURONS["lif"])
    parameters = stack_networks(models)
    x = inputs((T, B, N_IN), torch.float32)
    with pytest.raises(ValueError, match="exactly the network's"):
        population_forward(models[0], {k: v for k, v in parameters.items() if "readout" not in k}, x)
    with pytest.raises(ValueError, match="leading model dimension"):
        population_forward(models[0], {**parameters, "readout.synapses.bias": torch.zeros(M + 1, 3)}, x)
    with pytest.raises(ValueError, match=r"x must be"):
        population_forward(models[0], parameters, inputs((M + 1, T, B, N_IN), torch.float32))
    graded = SpikingNetwork([SpikingLayer(N_IN, 4, NEURONS["lif"], payload=LearnedPayload(4))], LeakyReadout(4, 2))
    with pytest.raises(ValueError, match="payload"):
        stack_networks([graded])
    dropping = SpikingNetwork([SpikingLayer(N_IN, 4, NEURONS["lif"])], LeakyReadout(4, 2), dropout=0.5)
    with pytest.raises(ValueError, match="dropout"):
        stack_networks([dropping])
    with pytest.raises(ValueError, match="SpikingNetworks"):
        stack_networks([])


def _one_layer(dtype, hidden, outputs, seed=4):
    generator = torch.Generator().manual_seed(seed)
    return [SpikingNetwork([SpikingLayer(N_IN, hidden, NEURONS["lif"], scale=3.0, generator=generator)],
                           LeakyReadout(hidden, outputs, generator=generator)).to(dtype) for _ in range(M)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hidden, outputs, graded, shared", [(7, 3, False, True), (70, 16, False, True),
                                                             (64, 10, True, True), (33, 4, True, False)])
def test_one_kernel_gives_the_readouts_of_one_layer_networks(dtype, hidden, outputs, graded, shared, monkeypatch):
    """Networks of one feed-forward LIF layer, readouts only, no graph: each model and sample run in one
    kernel (``population_lif.cpp``; blocks of 32 and 64 neurons, padded ones, graded input spikes, one
    input for all or one per model) — the readouts of each model's own pass and of the population's
    layer-by-layer pass."""
    models = _one_layer(dtype, hidden, outputs)
    x = inputs((T, B, N_IN) if shared else (M, T, B, N_IN), dtype)
    if not shared:  # each model's input well below the event-driven limit (40%), as its own layer decides
        x = x * (torch.rand(x.shape, generator=torch.Generator().manual_seed(3)) < 0.5).to(dtype)
    if graded:
        x = x * torch.rand(x.shape, generator=torch.Generator().manual_seed(2), dtype=dtype) * 2.0
    parameters = {name: p.detach() for name, p in stack_networks(models).items()}
    ran = []
    original = population.lif_readouts
    monkeypatch.setattr(population, "lif_readouts", lambda *a, **k: ran.append(original(*a, **k)) or ran[-1])
    with torch.no_grad():
        fused = population_forward(models[0], parameters, x, keep_spikes=False)
        layered = population_forward(models[0], parameters, x)
        own = [model(x if shared else x[m]) for m, model in enumerate(models)]
    assert len(ran) == 1 and ran[0] is not None and fused.spikes == ()
    assert 0 < float(layered.spikes[0].mean()) < 0.9
    tolerance = TOLERANCE[dtype]
    torch.testing.assert_close(fused.readout, layered.readout, rtol=0, atol=tolerance)
    for m, output in enumerate(own):
        torch.testing.assert_close(fused.readout[m], output.readout, rtol=0, atol=tolerance)


def _reference_readouts(x, weight, bias, beta, threshold, readout_weight, readout_bias, decay):
    """The equations of ``population_lif.cpp`` step by step in PyTorch, each model in turn."""
    readouts = []
    for m in range(weight.shape[0]):
        v = z = torch.zeros(x.shape[1], weight.shape[1], dtype=x.dtype)
        y, out = torch.zeros(x.shape[1], readout_weight.shape[1], dtype=x.dtype), []
        for x_t in x:
            v = beta * v + (x_t @ weight[m].T + bias[m]) - threshold * z
            z = (v >= threshold).to(x.dtype)
            y = decay * y + z @ readout_weight[m].T + readout_bias[m]
            out.append(y)
        readouts.append(torch.stack(out))
    return torch.stack(readouts, 2)


def test_the_one_kernel_steps_aside_and_refuses_a_diverging_layer():
    """With a bias, against the equations step by step; dense input, a gradient asked for or more
    readouts than a padded row: None (the layer-by-layer pass runs); a voltage that overflows: the
    layer's error."""
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(M, 8, N_IN, generator=generator, dtype=torch.float64)
    bias = torch.randn(M, 8, generator=generator, dtype=torch.float64) * 0.3
    arguments = dict(beta=0.9, threshold=1.0, readout_weight=torch.randn(M, 3, 8, generator=generator,
                                                                          dtype=torch.float64),
                     readout_bias=torch.randn(M, 3, generator=generator, dtype=torch.float64), decay=0.8)
    spikes = inputs((T, B, N_IN), torch.float64)
    torch.testing.assert_close(population.lif_readouts(spikes, weight, bias, **arguments)[0],
                               _reference_readouts(spikes, weight, bias, **arguments), rtol=0, atol=1e-12)
    assert population.lif_readouts(torch.rand(T, B, N_IN, dtype=torch.float64), weight, bias, **arguments) is None
    one_dense = (torch.rand(M, T, B, N_IN, generator=torch.Generator().manual_seed(6)) < 0.2).double()
    one_dense[1] = 1.0  # model 1's own layer would take the matrix product
    assert population.lif_readouts(one_dense, weight, bias, **arguments) is None
    one_dense[1] = 0.0
    torch.testing.assert_close(population.lif_readouts(one_dense, weight, bias, **arguments)[0][:, :, 2],
                               _reference_readouts(one_dense[2], weight[2:3], bias[2:3], **{
                                   **arguments, "readout_weight": arguments["readout_weight"][2:3],
                                   "readout_bias": arguments["readout_bias"][2:3]})[:, :, 0], rtol=0, atol=1e-12)
    assert population.lif_readouts(spikes, weight.clone().requires_grad_(), bias, **arguments) is None
    wide = dict(arguments, readout_weight=torch.zeros(M, 17, 8, dtype=torch.float64),
                readout_bias=torch.zeros(M, 17, dtype=torch.float64))
    assert population.lif_readouts(spikes, weight, bias, **wide) is None
    with pytest.raises(ValueError, match="overflowed"):
        population.lif_readouts(spikes, torch.full_like(weight, 1e308), bias, **arguments)
    for name, value in (("bias", bias[0]), ("readout_bias", arguments["readout_bias"][:1]),
                        ("x", spikes[..., :4])):
        bad = dict(arguments, x=spikes, weight=weight, bias=bias)
        bad[name] = value
        with pytest.raises(ValueError, match=f"^{name} must be"):
            population.lif_readouts(bad.pop("x"), bad.pop("weight"), bad.pop("bias"), **bad)
