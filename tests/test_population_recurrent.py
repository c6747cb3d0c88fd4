"""Recurrent ALIF/LIF networks' readouts in one kernel (``population_alif.cpp`` through
``fused.population_lif.alif_readouts``): the population's layer-by-layer pass, each model's own pass,
and the LSNN equations step by step."""
import pytest
import torch

from neuroplastic.fused import population_lif
from neuroplastic.fused.recurrent import EVENT_DENSITY
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.networks import population
from neuroplastic.networks.population import population_forward, stack_networks
from neuroplastic.neurons import ALIF
from neuroplastic.neurons.base import exp_decay
from neuroplastic.spikes import FastSigmoid

M, T, B, N_IN = 3, 40, 7, 6  # B: a group of 4 samples stepped together (kLockstep), then 3 one by one
NEURONS = {
    "lif": ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0)),
    "alif": ALIF(tau_a=50.0, beta=0.3, v_th=0.6, t_ref=2.0),  # adaptation and a refractory period
}


def recurrent_networks(neuron, hidden, outputs, dtype, seed=4):
    generator = torch.Generator().manual_seed(seed)
    return [SpikingNetwork([SpikingLayer(N_IN, hidden, neuron, recurrent=True, scale=3.0, generator=generator)],
                           LeakyReadout(hidden, outputs, generator=generator)).to(dtype) for _ in range(M)]


def spikes(shape, dtype, rate=0.1, seed=1):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, hidden, outputs, graded, shared", [
    ("lif", 64, 10, False, True), ("alif", 7, 3, False, True), ("alif", 70, 16, True, False),
    ("lif", 33, 4, True, True), ("lif", 70, 5, False, False)])
def test_one_kernel_gives_the_readouts_of_recurrent_networks(name, hidden, outputs, graded, shared, dtype,
                                                            monkeypatch):
    """Readouts only, no graph: each model and sample in one kernel (blocks of 32 and 64 neurons, padded
    ones, graded input, one input for all or one per model; four samples in lockstep up to 64 neurons,
    else one at a time; adaptive and plain LIF neurons) — bit for bit the population's
    layer-by-layer pass, and each model's own pass to rounding."""
    models = recurrent_networks(NEURONS[name], hidden, outputs, dtype)
    x = spikes((T, B, N_IN) if shared else (M, T, B, N_IN), dtype)
    if graded:
        x = x * torch.rand(x.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    parameters = {key: p.detach() for key, p in stack_networks(models).items()}
    ran = []
    original = population.alif_readouts
    monkeypatch.setattr(population, "alif_readouts", lambda *a, **k: ran.append(original(*a, **k)) or ran[-1])
    with torch.no_grad():
        fused = population_forward(models[0], parameters, x, keep_spikes=False)
        layered = population_forward(models[0], parameters, x)
        own = [model(x if shared else x[m]) for m, model in enumerate(models)]
    assert len(ran) == 1 and ran[0] is not None and fused.spikes == ()
    assert 0.01 < float(layered.spikes[0].mean()) < EVENT_DENSITY
    assert torch.equal(fused.readout, layered.readout)
    for m, output in enumerate(own):
        torch.testing.assert_close(fused.readout[m], output.readout, rtol=1e-5, atol=1e-5 if dtype == torch.float32
                                   else 1e-12)


def _lsnn_readouts(x, weight, bias, recurrent, neuron, dt, readout_weight, readout_bias, decay):
    """The LSNN cell (Bellec et al. 2018) and the leaky readout step by step in PyTorch, each model in turn."""
    alpha, rho = exp_decay(dt, neuron.tau_m), exp_decay(dt, neuron.tau_a)
    theta, readouts = neuron.v_th, []
    for m in range(weight.shape[0]):
        v, a, z, r = (torch.zeros(x.shape[1], weight.shape[1], dtype=x.dtype) for _ in range(4))
        y, out = torch.zeros(x.shape[1], readout_weight.shape[1], dtype=x.dtype), []
        for x_t in x:
            v = alpha * v + x_t @ weight[m].T + bias[m] + z @ recurrent[m].T - theta * z
            a = rho * a + z
            z = ((v - theta - neuron.beta * a >= 0) & (r <= dt / 2)).to(x.dtype)
            r = torch.where(z > 0, neuron.t_ref, (r - dt).clamp(min=0))
            y = decay * y + z @ readout_weight[m].T + readout_bias[m]
            out.append(y)
        readouts.append(torch.stack(out))
    return torch.stack(readouts, 2)


def test_recurrent_readouts_follow_the_lsnn_equations_and_step_aside():
    """Against the equations step by step (a bias added first or last); a step after one where more than
    EVENT_DENSITY of the batch spiked, whose recurrent product the layer would take as a matrix
    product, a gradient asked for, an unknown neuron: None (the layer-by-layer pass runs); a state that
    overflows: the layer's error; shapes that do not pair: named."""
    generator = torch.Generator().manual_seed(5)
    neuron, hidden, double = NEURONS["alif"], 9, dict(generator=generator, dtype=torch.float64)
    weight, bias = torch.randn(M, hidden, N_IN, **double), torch.randn(M, hidden, **double) * 0.3
    recurrent = torch.randn(M, hidden, hidden, **double) * 0.5 * (1 - torch.eye(hidden, dtype=torch.float64))
    readout = dict(readout_weight=torch.randn(M, 3, hidden, **double), readout_bias=torch.randn(M, 3, **double),
                   decay=0.8)
    x = spikes((T, B, N_IN), torch.float64)
    expected = _lsnn_readouts(x, weight, bias, recurrent, neuron, 1.0, **readout)
    for bias_first in (True, False):
        got, _ = population_lif.alif_readouts(x, weight, bias, recurrent, neuron, 1.0, bias_first=bias_first,
                                              **readout)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    arguments = dict(bias_first=True, **readout)
    busy = population_lif.alif_readouts(x, weight + 3.0, bias, recurrent, neuron, 1.0, **arguments)
    assert busy is None  # most neurons spike: those steps' products would be matrix products
    assert population_lif.alif_readouts(x, weight.clone().requires_grad_(), bias, recurrent, neuron, 1.0,
                                        **arguments) is None
    learned_surrogate = ALIF(tau_a=50.0, beta=0.3, v_th=0.6, surrogate=FastSigmoid(torch.tensor(10.0)))
    assert population_lif.alif_readouts(x, weight, bias, recurrent, learned_surrogate, 1.0, **arguments) is None
    with pytest.raises(ValueError, match="diverged"):
        population_lif.alif_readouts(x, torch.full_like(weight, 1e308), bias, recurrent, neuron, 1.0, **arguments)
    with pytest.raises(ValueError, match="recurrent_weight must be"):
        population_lif.alif_readouts(x, weight, bias, recurrent[:, :2], neuron, 1.0, **arguments)
    with pytest.raises(ValueError, match="^bias must be"):
        population_lif.alif_readouts(x, weight, bias[0], recurrent, neuron, 1.0, **arguments)
