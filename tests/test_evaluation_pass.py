"""Evaluation in one kernel (``networks.evaluation.counted_pass``): the readouts and every neuron's
spike count of a network of one recurrent ALIF or feed-forward LIF layer equal its forward pass's, and
``Trainer.evaluate`` reports the same metrics (NeuroBench's included) either way."""
import dataclasses

import pytest
import torch

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.networks import evaluation, paths
from neuroplastic.networks.evaluation import counted_pass
from neuroplastic.neurons import ALIF
from neuroplastic.tasks.cue import cue_task
from neuroplastic.training import trainer as trainer_module
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.trainer import Trainer

NEURON = ALIF(tau_a=200.0, beta=0.5, v_th=0.6, t_ref=2.0)


def small_cue():
    return cue_task(n_cues=3, delay_ms=100.0, train_samples=8, test_samples=303)  # batches of 256 and 47


def recurrent_network(task, *, recurrent=True, dtype=torch.float32, scale=4.0, neuron=NEURON, width=50):
    generator = torch.Generator().manual_seed(0)
    layer = SpikingLayer(task.n_inputs, width, neuron, recurrent=recurrent, scale=scale, generator=generator)
    return SpikingNetwork([layer], LeakyReadout(width, task.n_outputs, generator=generator)).to(dtype).eval()


FEED_FORWARD_LIF = ALIF(beta=0.0, t_ref=0.0, v_th=1.0)  # the fused path of feed-forward layers


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("recurrent, width", [(True, 50), (True, 100), (False, 50), (False, 100)])
def test_counted_pass_gives_the_forward_pass_readouts_and_spike_counts(dtype, recurrent, width):
    """Recurrent layers of up to 64 neurons step four samples in lockstep, wider ones one at a time;
    the batch of 63 ends short of a group of four. Feed-forward layers read out their spikes 128 steps
    at a time (of the task's many more), from one or two blocks of neurons."""
    task = small_cue()
    network = recurrent_network(task, dtype=dtype, recurrent=recurrent, width=width,
                                **({} if recurrent else {"neuron": FEED_FORWARD_LIF, "scale": 6.0}))
    inputs, _ = next(task.batches("test", 63, shuffle=False))
    inputs = inputs.to(dtype)
    with torch.no_grad():
        output = network(inputs)
    counted = counted_pass(network, inputs)
    spikes = output.spikes[0]
    assert 0.005 < float(spikes.mean()) < 0.2  # the neurons fire, and the recurrent products run event by event
    assert torch.equal(counted.spike_counts[0], spikes.sum(0).int())
    assert torch.equal(counted.last_spikes[0], spikes[-1].int())
    assert torch.equal(counted.input_counts, (inputs != 0).sum((0, 1)))  # what NeuroBench's input ACs read
    torch.testing.assert_close(counted.readout, output.readout, rtol=1e-5,
                               atol=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("graded, recurrent", [(False, True), (True, True), (True, False)])
def test_trainer_evaluates_the_same_in_one_kernel(graded, recurrent, monkeypatch):
    """Accuracy, events, bits and every NeuroBench metric of the split, over two batches: the one-kernel
    pass against the forward pass (the counted pass turned off); graded input: its multiply-accumulates."""
    task = small_cue()
    if graded:  # the input's spikes scaled, each by its own value in (0, 2)
        scaled = task.test.inputs.coalesce()
        values = torch.rand(scaled.values().shape, generator=torch.Generator().manual_seed(3)) * 2
        task = dataclasses.replace(task, test=dataclasses.replace(task.test, inputs=torch.sparse_coo_tensor(
            scaled.indices(), values, scaled.shape, check_invariants=True)))
    network = recurrent_network(task, recurrent=recurrent,
                                **({} if recurrent else {"neuron": FEED_FORWARD_LIF, "scale": 6.0}))
    trainer = Trainer(task, network, None, None, evaluate=objective_for(task).evaluate)
    calls = []

    def recorded(network):  # the passes prepared once for the split, then called for each batch
        passes = evaluation.counted_passes(network)
        return lambda x: calls.append(passes(x)) or calls[-1]
    monkeypatch.setattr(trainer_module, "counted_passes", recorded)
    fast = trainer.evaluate()
    assert len(calls) == 2 and all(call is not None for call in calls)
    monkeypatch.setattr(trainer_module, "counted_passes", lambda network: None)
    reference = trainer.evaluate()
    assert reference["neurobench"]["effective_acs_per_sample"] > 0 and reference["spikes_per_sample"] > 0
    assert (reference["neurobench"]["effective_macs_per_sample"] > 0) == graded
    assert fast.pop("loss") == pytest.approx(reference.pop("loss"), rel=1e-6)  # readouts agree to rounding
    assert fast == reference


def test_counted_pass_steps_aside_where_it_does_not_apply():
    """A feed-forward layer off the fused path (adaptive neurons), dropout while training, dense input, a
    busy network (many spikes: the layer's matrix products), hooks, autocast: None; NaN input or a
    wrong shape: the forward pass's error; a bias that is a plain tensor: used."""
    task = small_cue()
    inputs, _ = next(task.batches("test", 16, shuffle=False))
    assert counted_pass(recurrent_network(task, recurrent=False), inputs) is None
    network = recurrent_network(task)
    assert counted_pass(network, torch.rand(inputs.shape)) is None  # dense: the layer's matrix product
    eager = ALIF(beta=0.0, v_th=0.05, t_ref=0.0)  # most neurons spike at once
    assert counted_pass(recurrent_network(task, scale=20.0, neuron=eager), inputs) is None
    dropout = SpikingNetwork(list(network.layers), network.readout, dropout=0.3).train()
    assert counted_pass(dropout, inputs) is None
    for module in (network, network.layers[0], network.readout):  # a hook may change what the pass computes
        handle = module.register_forward_hook(lambda *_: None)
        assert counted_pass(network, inputs) is None
        handle.remove()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert counted_pass(network, inputs) is None
    network.layers[0].synapses.bias = torch.full((50,), 0.01)  # a plain tensor: used as the forward pass uses it
    with torch.no_grad():
        torch.testing.assert_close(counted_pass(network, inputs).readout, network(inputs).readout)
    feed_forward = recurrent_network(task, recurrent=False, neuron=FEED_FORWARD_LIF, scale=6.0)
    for bad in (float("nan"), float("inf")):  # the feed-forward kernel finds them as it reads the input
        for net in (network, feed_forward):
            with pytest.raises(ValueError, match="network input contains NaN or infinite values"):
                counted_pass(net, inputs.clone().index_put_((torch.tensor([3]), torch.tensor([5]), torch.tensor([7])),
                                                            torch.tensor(bad)))
    with pytest.raises(ValueError, match="network input must be"):
        counted_pass(network, inputs[0])


@pytest.mark.parametrize("recurrent", [True, False])
def test_counted_passes_prepare_the_weights_once_for_every_batch(recurrent):
    """``counted_passes`` (what ``Trainer.evaluate`` runs over a split) gives each batch what
    ``counted_pass`` gives it, from the weights as they were when it was made; None for a network it
    cannot run."""
    task = small_cue()
    network = recurrent_network(task, recurrent=recurrent,
                                **({} if recurrent else {"neuron": FEED_FORWARD_LIF, "scale": 6.0}))
    passes = evaluation.counted_passes(network)
    before = [counted_pass(network, inputs) for inputs, _ in task.batches("test", 128, shuffle=False)]
    with torch.no_grad():
        network.readout.synapses.weight.mul_(2.0)  # after the passes were made: they keep the weights they read
    for (inputs, _), expected in zip(task.batches("test", 128, shuffle=False), before, strict=True):
        got = passes(inputs)
        assert torch.equal(got.readout, expected.readout)
        assert torch.equal(got.spike_counts[0], expected.spike_counts[0])
        assert torch.equal(got.last_spikes[0], expected.last_spikes[0])
    assert not torch.equal(counted_pass(network, inputs).readout, got.readout)  # made anew: the new weights
    assert evaluation.counted_passes(recurrent_network(task, recurrent=False)) is None  # adaptive: not fused
    with paths.use_path("step"):  # the step path now: nothing prepared, no kernel built
        assert evaluation.counted_passes(recurrent_network(task)) is None
