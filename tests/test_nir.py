"""NIR exchange: round trips bit for bit, the analytic spike time of a LIF neuron, and the peers
(snnTorch, SpikingJelly, Norse) running our graphs and we theirs, each under its own step convention
(forward Euler at its dt: the imported network is given ``Euler()`` at that dt to compare)."""
import json
import logging
import math
import types

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir", reason="NIR exchange needs the nir package (pip install 'neuroplastic[interop]')")

from neuroplastic.cli.main import main
from neuroplastic.integrators import Euler
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, LIF, CurrentLIF, ResetBySubtraction, ResetTo
from neuroplastic.nir import from_nir, to_nir
from neuroplastic.synapses import Dense, FixedDelays
from neuroplastic.training.recipes import Recipe, build_network

DT = 0.1  # ms: snnTorch's and SpikingJelly's default step (10⁻⁴ s)


def spikes_in(steps, batch, n, seed=0, rate=0.3):
    return (torch.rand(steps, batch, n, generator=torch.Generator().manual_seed(seed)) < rate).float()


def mixed_network(seed=0):
    """Every exportable part: ALIF(β=0) recurrent behind delays per presynaptic neuron, CurrentLIF with
    reset by subtraction and a bias, LIF with τ per neuron, Euler and reset to a value, a leaky readout."""
    g = torch.Generator().manual_seed(seed)
    delays = torch.randint(0, 4, (6,), generator=g)[None].expand(8, 6).contiguous()
    layers = [
        SpikingLayer(6, 8, ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0), recurrent=True, generator=g,
                     synapses=FixedDelays(Dense(6, 8, scale=2.0, generator=g), delays)),
        SpikingLayer(8, 7, CurrentLIF(tau_m=20.0, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0, reset=ResetBySubtraction()),
                     synapses=Dense(8, 7, bias=True, scale=8.0, generator=g)),
        SpikingLayer(7, 5, LIF(tau_m=torch.linspace(5, 20, 5), e_l=0.0, v_th=1.0, t_ref=0.0, reset=ResetTo(0.0),
                               integrator=Euler()), recurrent=True, scale=6.0, generator=g),
    ]
    return SpikingNetwork(layers, LeakyReadout(5, 3, tau_out=30.0, generator=g))


def recipe_network(**changes):
    task = types.SimpleNamespace(n_inputs=6, n_outputs=3, dt=1.0, dtype=torch.float32)
    return build_network(task, Recipe(hidden=(9, 7), scale=3.0, **changes), seed=1)


@torch.no_grad()
def assert_same_run(a, b, x):
    out_a, out_b = a(x), b(x)
    assert sum(float(z.sum()) for z in out_a.spikes) > 20  # the comparison sees spikes
    for z_a, z_b in zip(out_a.spikes, out_b.spikes, strict=True):
        assert torch.equal(z_a, z_b)
    assert torch.equal(out_a.readout, out_b.readout)


@pytest.mark.parametrize("build", [mixed_network, lambda: recipe_network(recurrent=True),
                                   lambda: recipe_network(neuron="cuba-lif")],
                         ids=["mixed", "recipe-discrete-lif-recurrent", "recipe-cuba-lif"])
def test_round_trip_through_a_file_is_bit_identical(build, tmp_path):
    network = build()
    nir.write(tmp_path / "model.nir", to_nir(network))
    back = from_nir(tmp_path / "model.nir")
    assert all(type(a.neuron) is type(b.neuron) for a, b in zip(network.layers, back.layers))
    assert_same_run(network, back, spikes_in(120, 3, 6))


def test_a_lif_neuron_under_a_constant_current_spikes_at_the_analytic_time(tmp_path):
    """t* = −τ ln(1 − θ/(R I)) for V(0) = E_L = 0 (Gerstner et al. 2014, eq. 1.13), within one step."""
    tau, resistance, theta = 10.0, 2.0, 1.0
    layer = SpikingLayer(1, 1, LIF(tau_m=tau, e_l=0.0, v_th=theta, resistance=resistance, t_ref=0.0,
                                   reset=ResetTo(0.0)), dt=DT)
    with torch.no_grad():
        layer.synapses.weight.fill_(1.0)
    network = SpikingNetwork([layer], LeakyReadout(1, 1, dt=DT))
    nir.write(tmp_path / "lif.nir", to_nir(network))
    back = from_nir(tmp_path / "lif.nir")
    currents = torch.tensor([0.6, 0.8, 1.5, 4.0])
    spikes = back(currents.expand(400, 4)[..., None].contiguous()).spikes[0][..., 0]
    for column, current in enumerate(currents.tolist()):
        first = (int(spikes[:, column].nonzero()[0]) + 1) * DT  # step k ends at (k + 1)·dt
        analytic = -tau * math.log(1 - theta / (resistance * current))
        assert analytic <= first < analytic + DT


def test_refused_networks_say_what_nir_lacks():
    with pytest.raises(ValueError, match="adaptive threshold"):
        to_nir(recipe_network(neuron="discrete-alif"))
    with pytest.raises(ValueError, match="refractory"):
        to_nir(SpikingNetwork([SpikingLayer(2, 3, LIF())], LeakyReadout(3, 1)))
    with pytest.raises(ValueError, match="presynaptic"):
        to_nir(recipe_network(delays="fixed", max_delay=3))


def graph_of(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def lif_node(n):
    return nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))


@pytest.mark.parametrize("graph, problem", [
    (lambda: graph_of(nir.Linear(weight=np.ones((3, 2))), nir.IF(r=np.ones(3), v_threshold=np.ones(3))), "nir.IF"),
    (lambda: graph_of(nir.Linear(weight=np.ones((3, 2))), lif_node(4)), "shapes don't chain"),
    (lambda: graph_of(lif_node(2)), "must be fed by"),
])
def test_bad_graphs_are_refused_naming_the_problem(graph, problem):
    with pytest.raises(ValueError, match=problem):
        from_nir(graph())


def test_a_corrupt_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "bad.nir"
    path.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="not a readable NIR graph") as error:
        from_nir(path)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------- peers


def euler_lif_network(recurrent, seed=0):
    """Two layers of LIF neurons peers import alike: E_L = V_r = 0, R = 1, τ = 10 dt; no readout in the
    graph (no peer imports nir.LI), so the network's readout is the last layer's spikes."""
    g = torch.Generator().manual_seed(seed)
    lif = LIF(tau_m=10 * DT, e_l=0.0, v_th=1.0, t_ref=0.0, reset=ResetTo(0.0))
    network = SpikingNetwork([SpikingLayer(6, 8, lif, dt=DT, scale=20.0, generator=g, recurrent=recurrent),
                              SpikingLayer(8, 5, lif, dt=DT, scale=20.0, generator=g)], LeakyReadout(5, 5, dt=DT))
    graph = to_nir(network)
    nodes = {k: v for k, v in graph.nodes.items() if not k.startswith("readout")}
    edges = [e for e in graph.edges if "readout" not in e[0] + e[1]] + [("neurons_1", "output")]
    nodes["output"] = nir.Output(output_type={"output": np.array([5])})
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    return graph, with_euler(from_nir(graph, dt=DT))


def with_euler(network):
    for layer in network.layers:
        layer.neuron = layer.neuron.replace(integrator=Euler())
    return network


def run_stateful(module, x):
    """A nirtorch-built module, one step at a time with its state handed back."""
    outputs, state = [], None
    for x_t in x:
        z, state = module(x_t, state)
        outputs.append(z)
    return torch.stack(outputs)


def peer_run(name, graph, x):
    if name == "snntorch":
        from snntorch.import_nir import import_from_nir
        return run_stateful(import_from_nir(graph), x)
    if name == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange import import_from_nir
        return run_stateful(import_from_nir(graph, dt=DT / 1000), x)
    import norse.torch
    logging.disable(logging.WARNING)  # Norse warns that it ignores r (1 here)
    try:
        return run_stateful(norse.torch.from_nir(graph, dt=DT / 1000), x)
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.parametrize("peer, recurrent", [("snntorch", False), ("spikingjelly", False), ("spikingjelly", True),
                                             ("norse", False), ("norse", True)])
def test_peers_run_our_graphs_with_our_spikes(peer, recurrent):
    """(snnTorch's recurrent import: test_snntorch_import_misroutes_recurrence.)"""
    pytest.importorskip(peer, reason=f"{peer} is a peer of the bench extra")
    graph, ours = euler_lif_network(recurrent)
    x = spikes_in(200, 2, 6)
    expected = ours(x).readout
    assert expected.sum() > 20
    assert torch.equal(peer_run(peer, graph, x), expected)


def test_snntorch_import_misroutes_recurrence():
    """snnTorch 1.0's import_from_nir wires a recurrent layer's input into its recurrent weights
    (``_create_rnn_subgraph`` adds the edge ``input → w_rec``): its neurons receive
    ``W_rec (W_in x_t + z_{t−1})`` instead of ``W_in x_t + W_rec z_{t−1}``. Its spikes are exactly
    those of our layer given the input weights ``W_rec W_in`` — a defect of snnTorch's importer."""
    pytest.importorskip("snntorch", reason="snntorch is a peer of the bench extra")
    graph, ours = euler_lif_network(recurrent=True)
    x = spikes_in(200, 2, 6)
    theirs = peer_run("snntorch", graph, x)
    assert not torch.equal(theirs, ours(x).readout)
    layer = ours.layers[0]
    with torch.no_grad():
        layer.synapses.weight.copy_(layer.recurrent.weight @ layer.synapses.weight)
    assert torch.equal(theirs, ours(x).readout)


def leaky(snn, n, beta, **options):
    """snnTorch's Leaky with β and θ per neuron: its exporter fails on scalars (test below)."""
    return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), init_hidden=True, **options)


def test_snntorch_export_fails_on_scalar_parameters():
    """snnTorch 1.0's export_to_nir fails its own type check on a Leaky with a scalar β (its default,
    documented use), batched sample or not: it writes the LIF's shape from the scalar. A defect of
    snnTorch's exporter; with β and θ per neuron (and an unbatched sample) it works."""
    snn = pytest.importorskip("snntorch", reason="snntorch is a peer of the bench extra")
    from snntorch.export_nir import export_to_nir
    model = torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False), snn.Leaky(beta=0.9, init_hidden=True))
    for sample in (torch.zeros(6), torch.zeros(1, 6)):
        with pytest.raises(ValueError, match="type mismatch"):
            export_to_nir(model, sample)


def test_snntorch_models_import_with_their_spikes():
    snn = pytest.importorskip("snntorch", reason="snntorch is a peer of the bench extra")
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False), leaky(snn, 8, 0.9, reset_mechanism="zero",
                                reset_delay=False), torch.nn.Linear(8, 5),
                                leaky(snn, 5, 0.8, reset_mechanism="zero", reset_delay=False))
    with torch.no_grad():
        model[0].weight.mul_(6.0)
        model[2].weight.mul_(4.0)
    x = spikes_in(200, 2, 6)
    theirs = torch.stack([model(x_t) for x_t in x])
    ours = with_euler(from_nir(export_to_nir(model, x[0, 0]), dt=DT))
    assert theirs.sum() > 20
    assert torch.equal(ours(x).readout, theirs)


def test_snntorch_export_drops_the_reset_by_subtraction():
    """snnTorch 1.0's exporter writes every Leaky with ``v_reset = 0``, whatever its reset_mechanism:
    its default (subtract, one step late) leaves as a reset to zero. The imported network runs the
    model it was told of — snnTorch's reset-to-zero twin — not the one exported."""
    snn = pytest.importorskip("snntorch", reason="snntorch is a peer of the bench extra")
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 5, bias=False)
    with torch.no_grad():
        linear.weight.mul_(6.0)
    x = spikes_in(200, 2, 6)

    def run(**reset):
        model = torch.nn.Sequential(linear, leaky(snn, 5, 0.9, **reset))
        return model, torch.stack([model(x_t) for x_t in x])
    subtracting, subtracted = run()
    graph = export_to_nir(subtracting, x[0, 0])
    assert all(np.all(node.v_reset == 0) for node in graph.nodes.values() if isinstance(node, nir.LIF))
    ours = with_euler(from_nir(graph, dt=DT))(x).readout
    assert not torch.equal(ours, subtracted)
    assert torch.equal(ours, run(reset_mechanism="zero", reset_delay=False)[1])


def test_spikingjelly_models_import_with_their_spikes():
    pytest.importorskip("spikingjelly", reason="spikingjelly is a peer of the bench extra")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir
    torch.manual_seed(0)
    model = torch.nn.Sequential(layer.Linear(6, 8, bias=False), neuron.LIFNode(tau=10.0, decay_input=False),
                                layer.Linear(8, 5), neuron.LIFNode(tau=5.0, decay_input=True))
    with torch.no_grad():
        model[0].weight.mul_(6.0)
        model[2].weight.mul_(20.0)
    x = spikes_in(200, 2, 6)
    functional.reset_net(model)
    theirs = torch.stack([model(x_t) for x_t in x])
    functional.reset_net(model)
    ours = with_euler(from_nir(export_to_nir(model, x[0], dt=DT / 1000), dt=DT))
    assert theirs.sum() > 20
    assert torch.equal(ours(x).readout, theirs)


def test_norse_export_writes_tau_times_dt_and_imports_once_corrected():
    """Norse 1.1's to_nir writes a LIFBoxCell's τ as ``dt / τ_mem_inv`` (10⁻⁵ s for its default
    τ = 10 ms at dt = 1 ms) instead of ``1 / τ_mem_inv``: a defect of Norse's exporter, off by a factor
    of dt. With τ corrected, the graph runs here with Norse's spikes (its step: 10⁻³ s, forward Euler)."""
    pytest.importorskip("norse", reason="norse is a peer of the bench extra")
    import norse.torch as norse
    torch.manual_seed(0)
    model = norse.SequentialState(torch.nn.Linear(6, 8, bias=False), norse.LIFBoxCell(),
                                  torch.nn.Linear(8, 5, bias=False), norse.LIFBoxCell())
    with torch.no_grad():
        model[0].weight.mul_(60.0)
        model[2].weight.mul_(60.0)
    x = spikes_in(200, 2, 6)
    theirs = run_stateful(model, x)
    graph = norse.to_nir(model, x[0, :1])
    lifs = [node for node in graph.nodes.values() if isinstance(node, nir.LIF)]
    assert [float(node.tau) for node in lifs] == pytest.approx([1e-3 / 100.0] * 2)  # dt / τ_mem_inv
    for node in lifs:
        node.tau = 1.0 / np.asarray(model[1].p.tau_mem_inv)  # what NIR means: 10 ms
    ours = with_euler(from_nir(graph, dt=1.0))
    assert theirs.sum() > 20
    assert torch.equal(ours(x).readout, theirs)


# ---------------------------------------------------------------------------- command line


def run_json_lines(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_export_command_round_trip_and_bad_input(tmp_path, capsys):
    """export writes the trained network (it runs here bit for bit), train --init starts from it; a
    graph of other sizes and a corrupt file end with one line and exit 2, writing nothing."""
    from neuroplastic.training.fit import fit
    out = tmp_path / "run"
    fit("digits", "bptt", epochs=1, hidden=(12,), batch_size=256, out=out, progress=False)
    target = tmp_path / "model.nir"
    assert main(["export", "--checkpoint", str(out / "checkpoint.pt"), "--nir", str(target), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sizes"] == [64, 12, 10]
    from neuroplastic.cli.export import network_of
    from neuroplastic.training.checkpoint import load_checkpoint
    assert_same_run(network_of(load_checkpoint(out / "checkpoint.pt")), from_nir(target).eval(),
                    spikes_in(30, 4, 64, rate=0.5))

    trained = run_json_lines(capsys, ["train", "--task", "digits", "--init", str(target), "--epochs", "1",
                                      "--out", str(tmp_path / "again"), "--json"])
    assert trained["epochs"] == 1 and trained["test_accuracy"] > 0.1
    misfit = tmp_path / "misfit.nir"
    nir.write(misfit, to_nir(mixed_network()))
    assert main(["train", "--task", "digits", "--init", str(misfit), "--out", str(tmp_path / "m")]) == 2
    assert "takes 6 inputs and gives 3 outputs" in capsys.readouterr().err

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    assert main(["export", "--checkpoint", str(bad), "--nir", str(tmp_path / "never.nir")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "never.nir").exists() and not (tmp_path / "never.nir.partial").exists()
    assert main(["train", "--task", "digits", "--init", str(bad), "--epochs", "1", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a readable NIR graph" in err[0]
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("spoil, problem", [
    (lambda graph: next(n for n in graph.nodes.values() if hasattr(n, "weight")).weight.__setitem__((0, 0), np.nan),
     "weight holds NaN"),
    (lambda graph: next(n for n in graph.nodes.values() if isinstance(n, nir.LI)).tau.__setitem__(0, 0.0),
     "tau must be positive"),
])
def test_bad_numbers_in_a_graph_are_refused_naming_the_node(spoil, problem):
    network = recipe_network()
    graph = to_nir(network)
    spoil(graph)
    with pytest.raises(ValueError, match=problem):
        from_nir(graph)
    assert all(torch.isfinite(p).all() for p in network.parameters())  # the graph holds copies


def test_export_rebuilds_runs_on_data_of_ones_own_and_from_a_graph(tmp_path, capsys):
    """A run of train --data exports with its file, a run of train --init with its graph; without them,
    or with other data, one line and exit 2. With --init, network flags are refused."""
    from neuroplastic.tasks import load_task
    digits = load_task("digits")
    data = tmp_path / "mine.npz"
    np.savez(data, x_train=digits.train.inputs.numpy()[:200], y_train=digits.train.targets.numpy()[:200],
             x_test=digits.test.inputs.numpy()[:50], y_test=digits.test.targets.numpy()[:50], dt=digits.dt)
    run = tmp_path / "own"
    run_json_lines(capsys, ["train", "--data", str(data), "--epochs", "1", "--hidden", "8", "--out", str(run), "--json"])
    graph = tmp_path / "own.nir"
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--nir", str(graph)]) == 2
    assert "give its file (--data)" in capsys.readouterr().err
    exported = run_json_lines(capsys, ["export", "--checkpoint", str(run / "checkpoint.pt"), "--nir", str(graph),
                                       "--data", str(data), "--json"])
    assert exported["sizes"] == [64, 8, 10]
    assert exported["note"] and "only neuroplastic reproduces" in exported["note"]  # the discrete LIF's reset

    again = tmp_path / "again"
    run_json_lines(capsys, ["train", "--data", str(data), "--init", str(graph), "--epochs", "1", "--out", str(again),
                            "--json"])
    assert main(["export", "--checkpoint", str(again / "checkpoint.pt"), "--nir", str(tmp_path / "x.nir"),
                 "--data", str(data)]) == 2
    assert "--init" in capsys.readouterr().err
    run_json_lines(capsys, ["export", "--checkpoint", str(again / "checkpoint.pt"), "--nir", str(tmp_path / "x.nir"),
                            "--data", str(data), "--init", str(graph), "--json"])
    assert main(["export", "--checkpoint", str(again / "checkpoint.pt"), "--nir", str(tmp_path / "w.nir"),
                 "--data", str(data), "--init", str(tmp_path / "x.nir")]) == 2  # the same sizes, another graph
    assert "is not the NIR graph the run started from" in capsys.readouterr().err
    other = tmp_path / "other.npz"
    np.savez(other, x_train=digits.train.inputs.numpy()[:100], y_train=digits.train.targets.numpy()[:100],
             x_test=digits.test.inputs.numpy()[:50], y_test=digits.test.targets.numpy()[:50], dt=digits.dt)
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--nir", str(tmp_path / "y.nir"),
                 "--data", str(other)]) == 2
    assert "not the data the run trained on" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "--nir", str(tmp_path / "no" / "z.nir"),
                 "--data", str(data)]) == 2
    assert "no folder" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--init", str(graph), "--hidden", "16", "--out", str(tmp_path / "h")]) == 2
    assert "--hidden shapes the recipe's network" in capsys.readouterr().err and not (tmp_path / "h").exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
