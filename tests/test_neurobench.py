"""NeuroBench's metrics (neuroplastic.neurobench): closed forms on hand-built networks, the relation to the
training count ``synops``, and, where the ``neurobench`` package is installed, NeuroBench's own numbers
for a trained network."""
import pytest
import torch
from torch import nn

from neuroplastic.networks import (
    EnergyNetwork,
    LeakyReadout,
    NetworkOutput,
    SpikingLayer,
    SpikingNetwork,
)
from neuroplastic.neurobench import (
    Workload,
    connection_sparsity,
    effective_operations,
    footprint_bytes,
)
from neuroplastic.neurons import ALIF, DPI
from neuroplastic.physical import ChipSpec, PhysicalNetwork
from neuroplastic.synapses import Dense, FixedDelays
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.problem import synaptic_operations
from neuroplastic.training.recipes import build_network, recipe_for

NEURON = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0)


def hand_built_network():
    """3 inputs → 2 recurrent neurons → 2 outputs, with known zeros in every weight."""
    layer = SpikingLayer(3, 2, NEURON, recurrent=True)
    network = SpikingNetwork([layer], LeakyReadout(2, 2))
    with torch.no_grad():
        layer.synapses.weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]))  # fan-out 1, 0, 2
        layer.recurrent.parametrizations.weight.original.copy_(torch.tensor([[5.0, 4.0], [6.0, 7.0]]))  # diag → 0
        network.readout.synapses.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))  # fan-out 2, 1
    return network


def test_closed_form_counts_of_a_hand_built_network():
    network = hand_built_network()
    inputs = torch.tensor([  # (T = 3, B = 2, 3): sample 0 spikes, sample 1 analog (a zero row at t = 1)
        [[1.0, 1.0, 0.0], [0.5, 0.0, 0.0]],
        [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        [[1.0, 0.0, 1.0], [0.0, 0.0, 2.0]]])
    spikes = torch.tensor([  # (T, B, 2)
        [[1.0, 0.0], [0.0, 0.0]],
        [[1.0, 1.0], [0.0, 1.0]],
        [[0.0, 1.0], [1.0, 1.0]]])
    workload = Workload(network)
    workload.add(inputs, NetworkOutput(torch.zeros(3, 2, 2), (spikes,), None, (spikes,)))
    metrics = workload.metrics()
    # ACs: input (sample 0) 1 + 2 + 3 = 6; recurrent (spikes of t = 0, 1 arrive) 1 + 2 + 0 + 1 = 4;
    # readout 2 + 3 + 1 + 0 + 1 + 3 = 10. MACs: input (sample 1) 1 (t = 0) + 2 (t = 2) = 3.
    assert metrics["effective_acs_per_sample"] == 20 / 2
    assert metrics["effective_macs_per_sample"] == 3 / 2
    assert metrics["dense_operations_per_sample"] == 3 * (3 * 2 + 2 * 2 + 2 * 2)  # T · Σ numel(W)
    assert metrics["activation_sparsity"] == 1 - 7 / 12  # 7 spikes in 3 steps of 2 samples of 2 neurons
    assert metrics["connection_sparsity"] == (3 + 2 + 1) / 14  # the recurrent diagonal is zeros
    assert metrics["footprint_bytes"] == footprint_bytes(network) == 4 * (6 + 4 + 4 + 2)  # float32, bias of 2
    assert footprint_bytes(network.double()) == 8 * 16
    assert workload.events == 7 and workload.bits == 7


def test_closed_form_counts_of_delayed_synapses():
    delayed = FixedDelays(Dense(2, 2), torch.tensor([[0, 2], [1, 0]]))
    with torch.no_grad():
        delayed.synapses.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 0.0]]))
    x = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])[:, None]  # (T = 3, B = 1, 2)
    accumulates, multiply_accumulates = effective_operations(x, delayed.kernel())
    # (0←0, d 0): spikes of t = 0, 2 arrive; (0←1, d 2): t = 0 arrives at 2, t = 1 too late;
    # (1←0, d 1): t = 0 arrives, t = 2 too late; (1←1) has no weight
    assert (int(accumulates), int(multiply_accumulates)) == (2 + 1 + 1, 0)
    assert int(effective_operations(2.0 * x, delayed.kernel())[1]) == 4  # the same arrivals, as MACs
    assert int(effective_operations(x, delayed.kernel(), lag=1)[0]) == 1 + 0 + 1  # a step later: fewer arrive
    assert footprint_bytes(delayed) == 4 * 4 + 8 * 4  # the weight and the int64 delays


def test_the_training_count_is_events_times_every_postsynaptic_neuron():
    """``synops`` = samples · (ACs + MACs) without zero weights; with recurrence it also counts the missing
    self-connection: one more per recurrent event delivered."""
    generator = torch.Generator().manual_seed(0)
    inputs = (torch.rand(20, 4, 6, generator=generator) < 0.3).float()
    for recurrent in (False, True):
        torch.manual_seed(1)
        network = SpikingNetwork([SpikingLayer(6, 8, NEURON, recurrent=recurrent, scale=3.0),
                                  SpikingLayer(8, 5, NEURON, scale=3.0)], LeakyReadout(5, 3)).eval()
        with torch.no_grad():
            output = network(inputs)
        workload = Workload(network)
        workload.add(inputs, output)
        metrics = workload.metrics()
        effective = 4 * (metrics["effective_acs_per_sample"] + metrics["effective_macs_per_sample"])
        delivered = int(torch.count_nonzero(output.events[0][:-1])) if recurrent else 0
        assert int(torch.count_nonzero(output.events[0])) > 0
        assert int(synaptic_operations(network, inputs, output.events)) == effective + delivered


def test_an_energy_network_reports_what_it_shows():
    network = EnergyNetwork((3, 4, 2), free_steps=20, generator=torch.Generator().manual_seed(0))
    inputs = torch.rand(5, 2, 3, generator=torch.Generator().manual_seed(1))
    workload = Workload(network)
    with torch.no_grad():
        workload.add(inputs, network(inputs))
    metrics = workload.metrics()
    assert metrics["dense_operations_per_sample"] == 21 * (12 + 2 * 8)  # bottom-up, and top-down above the input
    assert metrics["activation_sparsity"] is None and metrics["effective_acs_per_sample"] is None
    assert metrics["connection_sparsity"] == 0.0
    assert metrics["footprint_bytes"] == 4 * (12 + 8 + 4 + 2)


def metrics_of_one_pass(networks, *, steps: int, seed: int) -> list[dict]:
    """NeuroBench's metrics of each of ``networks`` (3 inputs → 2 neurons) for the same random input
    spikes and hidden spikes of ``steps`` steps × 4 samples."""
    inputs = (torch.rand(steps, 4, 3, generator=torch.Generator().manual_seed(seed)) < 0.5).float()
    spikes = (torch.rand(steps, 4, 2, generator=torch.Generator().manual_seed(seed + 1)) < 0.5).float()
    measured = [Workload(network) for network in networks]
    for workload in measured:
        workload.add(inputs, NetworkOutput(torch.zeros(steps, 4, 2), (spikes,), None, (spikes,)))
    return [workload.metrics() for workload in measured]


def test_a_network_on_a_chip_is_measured_as_the_device_stores_it():
    """A chip with 2-bit weights (levels −Δ, 0, Δ, Δ = the largest magnitude of the trained tensor):
    the counts are those of a plain network holding the stored weights, worked out by hand below —
    the recurrent grid set by the trained tensor's diagonal (9) before the self-connections are
    removed — and the footprint is 2 bits per layer weight plus each grid's Δ, and the digital readout."""
    layer = SpikingLayer(3, 2, DPI(), recurrent=True)
    twin = SpikingNetwork([layer], LeakyReadout(2, 2))
    with torch.no_grad():
        layer.synapses.weight.copy_(torch.tensor([[1.0, 0.2, 3.0], [-2.0, 0.4, 3.0]]))  # Δ = 3
        layer.recurrent.parametrizations.weight.original.copy_(torch.tensor([[9.0, 4.0], [6.0, 1.0]]))  # Δ = 9
        twin.readout.synapses.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    chip = PhysicalNetwork(twin, ChipSpec(bits=2))
    plain = hand_built_network()
    with torch.no_grad():
        plain.layers[0].synapses.weight.copy_(torch.tensor([[0.0, 0.0, 3.0], [-3.0, 0.0, 3.0]]))
        plain.layers[0].recurrent.parametrizations.weight.original.copy_(torch.tensor([[0.0, 0.0], [9.0, 0.0]]))
    on_chip, by_hand = metrics_of_one_pass((chip, plain), steps=6, seed=2)
    assert on_chip["connection_sparsity"] == (3 + 3 + 1) / 14
    assert {k: v for k, v in on_chip.items() if k != "footprint_bytes"} == \
        {k: v for k, v in by_hand.items() if k != "footprint_bytes"}
    assert on_chip["effective_acs_per_sample"] > 0
    assert on_chip["footprint_bytes"] == (2 + 4) + (1 + 4) + 4 * (4 + 2)  # ⌈6·2/8⌉ + Δ, ⌈4·2/8⌉ + Δ, readout
    twin.double()
    assert PhysicalNetwork(twin, ChipSpec()).footprint_bytes() == 8 * (6 + 4 + 4 + 2)  # full precision


def test_a_chip_with_fixed_delays_counts_the_stored_taps_and_delays():
    """Fixed delays on a chip: the kernel is the delays' one-hot taps times the stored (2-bit) weight —
    the counts of a plain network holding those weights and delays — and each delay is stored in
    ⌈log₂(D + 1)⌉ bits."""
    delays = torch.tensor([[0, 2, 1], [1, 0, 2]])

    def network(weight, neuron):
        synapses = FixedDelays(Dense(3, 2), delays, max_delay=2)
        with torch.no_grad():
            synapses.synapses.weight.copy_(weight)
        return SpikingNetwork([SpikingLayer(3, 2, neuron, synapses=synapses)], LeakyReadout(2, 2))
    chip = PhysicalNetwork(network(torch.tensor([[1.0, 0.2, 3.0], [-2.0, 0.4, 3.0]]), DPI()), ChipSpec(bits=2))
    plain = network(torch.tensor([[0.0, 0.0, 3.0], [-3.0, 0.0, 3.0]]), NEURON)
    on_chip, by_hand = metrics_of_one_pass((chip, plain), steps=8, seed=4)
    assert on_chip.pop("footprint_bytes") == (2 + 4) + 2 + 4 * (4 + 2)  # weights + Δ, 6 delays × 2 bits, readout
    by_hand.pop("footprint_bytes")
    assert on_chip == by_hand and on_chip["connection_sparsity"] == (3 + 0) / 10


class Spikes(nn.Identity):
    """The hidden neurons' output, for NeuroBench's activation hooks."""


class NeuroBenchView(nn.Module):
    """A one-layer network (delayed input synapses, recurrent, graded spikes) as the ``torch.nn``
    connections NeuroBench counts, on its batch-first data: the delayed input synapses as a causal
    ``Conv1d`` over time, the recurrent and readout synapses as ``Linear`` layers called at every step
    (the recurrent ones on the previous step's spikes, zeros at the first). It replays the spikes our
    network emits: what is compared is the counting, not the dynamics."""

    def __init__(self, network):
        super().__init__()
        self.network = network
        layer = network.layers[0]
        kernel = layer.synapses.kernel().detach()  # (D + 1, n_out, n_in)
        self.max_delay = kernel.shape[0] - 1
        self.input_synapses = nn.Conv1d(kernel.shape[2], kernel.shape[1], kernel.shape[0], bias=False)
        self.input_synapses.weight.data = kernel.flip(0).permute(1, 2, 0).contiguous()
        self.recurrent = nn.Linear(layer.size, layer.size, bias=False)
        self.recurrent.weight.data = layer.recurrent.weight.detach().clone()
        readout = network.readout.synapses
        self.readout = nn.Linear(layer.size, readout.n_out)
        self.readout.weight.data, self.readout.bias.data = readout.weight.detach().clone(), readout.bias.detach().clone()
        self.hidden = Spikes()

    def input_currents(self, data):
        """``(T, B, n_out)`` of the causal convolution of ``data`` ``(B, T, n_in)``."""
        padded = nn.functional.pad(data.transpose(1, 2), (self.max_delay, 0))
        return self.input_synapses(padded).permute(2, 0, 1)

    def forward(self, data):
        output = self.network(data.transpose(0, 1))
        sent, events = output.spikes[0], output.events[0]
        self.input_currents(data)
        for t in range(data.shape[1]):
            self.hidden(events[t])
            self.recurrent(sent[t - 1] if t else torch.zeros_like(sent[0]))
            self.readout(sent[t])
        return output.readout.transpose(0, 1)


def weights_as_linear_layers(network) -> nn.Module:
    """The connections' weights (the delayed synapses' ``W``: a synapse is one entry whatever its delay)
    and the readout's bias, as ``Linear`` layers for NeuroBench's connection sparsity."""
    layer, readout = network.layers[0], network.readout.synapses
    layers = nn.ModuleList()
    for weight, bias in ((layer.synapses.synapses.weight, None), (layer.recurrent.weight, None),
                         (readout.weight, readout.bias)):
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        linear.weight.data = weight.detach().clone()
        if bias is not None:
            linear.bias.data = bias.detach().clone()
        layers.append(linear)
    return layers


def prune_smallest(weight: torch.Tensor, fraction: float) -> None:
    with torch.no_grad():
        weight[weight.abs() <= weight.abs().flatten().quantile(fraction)] = 0.0


def test_a_trained_network_matches_neurobench(tmp_path):
    pytest.importorskip("neurobench", reason="NeuroBench's own metrics are the reference")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    task = load_task("randman", seed=0, classes=3, samples_per_class=60, units=20, steps=30, dim=1)
    changes = {"hidden": (24,), "recurrent": True, "delays": "fixed", "max_delay": 3, "graded": "learned",
               "lr": 1e-2, "batch_size": 16}
    network = build_network(task, recipe_for(task.name, **changes), seed=0)
    summary = fit(task, "bptt", network=network, epochs=5, out=tmp_path, progress=False, **changes)
    assert summary["test_accuracy"] > 0.6  # trained: three classes, chance is 1/3

    def ours():
        workload = Workload(network.eval())
        with torch.no_grad():
            for inputs, _ in task.batches("test", 256, shuffle=False):
                workload.add(inputs, network(inputs))
        return workload.metrics()

    assert ours() == summary["neurobench"]  # what fit reports
    layer = network.layers[0]
    for weight in (layer.synapses.synapses.weight, layer.recurrent.parametrizations.weight.original,
                   network.readout.synapses.weight):
        prune_smallest(weight, 0.3)
    metrics = ours()
    assert 0.3 < metrics["connection_sparsity"] < 0.4

    view = NeuroBenchView(network).eval()
    inputs = torch.cat([batch for batch, _ in task.batches("test", 256, shuffle=False)], 1)  # (T, N, n)
    data = inputs.transpose(0, 1).contiguous()
    with torch.no_grad():  # the view's convolution is the delayed synapses' own computation
        torch.testing.assert_close(view.input_currents(data), layer.synapses.sequence(
            layer.synapses.init_state(data.shape[0]), inputs)[0])
    model = TorchModel(view)
    model.add_activation_module(Spikes)
    # batches of one: NeuroBench decides AC or MAC per call (a step of a batch), we per sample and step
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, task.test.targets), batch_size=1)
    theirs = Benchmark(model, loader, [], [], [[], [ActivationSparsity, SynapticOperations]]).run(quiet=True)
    operations = theirs["SynapticOperations"]
    assert operations["Effective_ACs"] > 0 and operations["Effective_MACs"] > 0  # inputs spike, payloads are graded
    assert metrics["effective_acs_per_sample"] == pytest.approx(operations["Effective_ACs"], rel=1e-12)
    assert metrics["effective_macs_per_sample"] == pytest.approx(operations["Effective_MACs"], rel=1e-12)
    assert metrics["dense_operations_per_sample"] == pytest.approx(operations["Dense"], rel=1e-12)
    assert metrics["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    assert metrics["footprint_bytes"] == Footprint()(TorchModel(network))
    assert round(metrics["connection_sparsity"], 4) == ConnectionSparsity()(TorchModel(weights_as_linear_layers(network)))
    assert connection_sparsity(network) == metrics["connection_sparsity"]
