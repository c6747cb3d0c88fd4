"""Every tensor a training step makes follows the model's device; models, rules and tasks move with ``.to()``.

The check runs everywhere: the model and the batch stay on the CPU while the default device is
``meta``, so any tensor made without naming its device lands on ``meta`` and the first operation mixing
it with the model's tensors fails ("Tensor on device meta is not on the expected device cpu"). CUDA
runs of the same steps are in ``benchmarks/devices.py`` and in the tests below marked for CUDA.
"""
from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch

from neuroplastic.analysis import fi_curve
from neuroplastic.cli.main import main
from neuroplastic.experiments.base import EXPERIMENTS, get_experiment
from neuroplastic.neurons import MODELS
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.methods import as_method
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import Problem
from neuroplastic.training.recipes import build_network, recipe_for

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

# (task, rule, rule options, recipe changes): every method, its step-by-step modes, and the unit kinds
CASES = [
    ("digits", "bptt", {}, {}),
    ("digits", "tbptt", {"steps": 10}, {}),
    ("digits", "eprop", {}, {}),
    ("digits", "eprop", {"mode": "online", "apply_every": 10}, {}),
    ("digits", "eprop", {"reward": True}, {}),
    ("cue", "eprop", {"mode": "online"}, {}),
    ("digits", "ostl", {}, {}),
    ("digits", "fa", {"mode": "online"}, {}),
    ("digits", "dfa", {}, {}),
    ("digits", "decolle", {}, {}),
    ("digits", "etl", {}, {}),
    ("digits", "superspike", {"mode": "online"}, {}),
    ("digits", "rtrl", {}, {"hidden": (8,)}),
    ("digits", "eqprop", {}, {}),
    ("digits", "eqprop", {"spiking": True}, {}),
    ("digits", "pat", {"mismatch": 0.3, "noise": 0.01, "bits": 4}, {}),
    ("digits", "twin", {"mismatch": 0.3}, {}),
    ("digits", "bptt", {}, {"neuron": "discrete-alif"}),
    ("digits", "bptt", {}, {"neuron": "cuba-lif"}),
    ("digits", "bptt", {}, {"delays": "learned", "max_delay": 5}),
    ("digits", "bptt", {}, {"graded": "learned"}),
    ("pattern", "eprop", {}, {}),
]

IDS = [f"{c[0]}-{c[1]}-{'-'.join(map(str, c[2].values())) or 'default'}"
       f"{'-' + '-'.join(map(str, c[3].values())) if c[3] else ''}" for c in CASES]


def one_batch(task_name, rule, rule_options, changes, *, device="cpu", dtype=None, steps=40, default_device=None):
    """One training batch of four samples (the first ``steps`` steps) through ``rule``'s learner, the
    model and the data on ``device``; returns the loss and the network. The learner is made and
    trained with ``default_device`` as torch's default device."""
    task = load_task(task_name, seed=0)
    if dtype is not None:
        task = task.to(dtype)
    recipe = recipe_for(task.name, None, epochs=1, **changes)
    method = as_method(rule, **rule_options)
    network = getattr(method, "build_network", build_network)(task, recipe, seed=0).to(device)
    problem = Problem(network, objective_for(task), task.dt, recipe.rate_target_hz, recipe.rate_weight,
                      generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.SGD(network.parameters(), lr=1e-3)
    inputs, targets = next(task.batches("train", 4, shuffle=False))
    inputs = inputs[:steps].to(device)
    targets = (targets[:steps] if task.kind == "regression" else targets).to(device)
    with torch.device(default_device or device):
        loss = method.learner(problem).train_batch(inputs, targets, optimizer)
    return loss, network


@pytest.mark.parametrize("task_name, rule, rule_options, changes", CASES, ids=IDS)
def test_a_training_step_makes_no_tensor_off_the_model_device(task_name, rule, rule_options, changes):
    loss, _ = one_batch(task_name, rule, rule_options, changes, default_device="meta")
    assert isinstance(loss, float) and loss == loss, f"{task_name}/{rule}: loss {loss}"


@pytest.mark.parametrize("task_name, rule, rule_options, changes", CASES, ids=IDS)
def test_training_in_float64_keeps_every_tensor_in_float64(task_name, rule, rule_options, changes):
    loss, network = one_batch(task_name, rule, rule_options, changes, dtype=torch.float64)
    assert isinstance(loss, float) and loss == loss
    floats = [t for t in (*network.parameters(), *network.buffers()) if t.is_floating_point()]
    assert {t.dtype for t in floats} == {torch.float64}


# draws made at every step come from a generator on the device (neuroplastic.devices): CUDA's differ
SAME_DRAWS = [case for case in CASES if not (case[2].get("reward") or case[2].get("noise"))]


@CUDA
@pytest.mark.parametrize("task_name, rule, rule_options, changes", SAME_DRAWS,
                         ids=[IDS[CASES.index(case)] for case in SAME_DRAWS])
def test_a_training_step_on_cuda_matches_the_cpu(task_name, rule, rule_options, changes):
    """The same batch from the same weights: the loss on the GPU equals the CPU's to float64 rounding."""
    cpu, _ = one_batch(task_name, rule, rule_options, changes, dtype=torch.float64)
    gpu, network = one_batch(task_name, rule, rule_options, changes, device="cuda", dtype=torch.float64)
    assert {p.device.type for p in network.parameters()} == {"cuda"}
    assert gpu == pytest.approx(cpu, rel=1e-6, abs=1e-9)


def host_syncs(rule, rule_options, steps):
    """Synchronising CUDA calls (``torch.cuda.set_sync_debug_mode``) of one training batch of ``steps``
    steps, after a warm-up batch."""
    one_batch("digits", rule, rule_options, {}, device="cuda", steps=steps)  # lazy initialisations
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            one_batch("digits", rule, rule_options, {}, device="cuda", steps=steps)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


@CUDA
@pytest.mark.parametrize("rule, rule_options", [("bptt", {}), ("eprop", {"mode": "online", "apply_every": 5}),
                                                 ("decolle", {}), ("etl", {}), ("eprop", {"reward": True})])
def test_no_host_synchronisation_per_time_step_on_cuda(rule, rule_options):
    """Twice the steps, no more synchronisations: none happens per step (counters and losses
    accumulate on the device and are read once per batch)."""
    assert host_syncs(rule, rule_options, 40) <= host_syncs(rule, rule_options, 20)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_neuron_model_simulates_without_tensors_off_its_device(name):
    """An f-I curve of every model, noise included where the model has it, with ``meta`` as torch's
    default device: the currents, states and draws all stay on the CPU the inputs are on."""
    model = MODELS[name]()
    if "sigma" in {f.name for f in dataclasses.fields(model)}:
        model = model.replace(sigma=0.5)
    with torch.device("meta"):
        rates = fi_curve(model, [0.0, model.default_current], 50.0, model.default_dt,
                         generator=torch.Generator().manual_seed(0), device="cpu")
    assert rates.device.type == "cpu" and rates.shape == (2,)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_makes_no_tensor_off_its_device(name, tmp_path):
    """``reproduce NAME --device D``: each published experiment, quick, and its figure, with ``meta`` as
    torch's default device and ``cpu`` asked for — a tensor made without naming the experiment's device
    lands on ``meta`` and fails the first operation with the others. (Their criteria are tested with
    each experiment; quick distal-reward is too short to meet its own.)"""
    with torch.device("meta"):
        outcome = get_experiment(name)(quick=True, progress=False, device=torch.device("cpu"))
        outcome.draw(tmp_path / f"{name}.png")
    assert outcome.summary()["name"] == name and (tmp_path / f"{name}.png").stat().st_size > 0


def test_reproduce_names_its_device_and_refuses_mps(tmp_path, capsys, monkeypatch):
    assert main(["reproduce", "eqprop-beta", "--quick", "--quiet", "--out", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["device"] == "cpu"
    monkeypatch.setattr("neuroplastic.cli.reproduce.device", lambda args: torch.device("mps"))
    assert main(["reproduce", "eqprop-beta", "--quick", "--quiet", "--out", str(tmp_path / "mps")]) == 2
    assert "float64" in capsys.readouterr().err and not (tmp_path / "mps").exists()


def test_the_song_reference_simulation_stays_on_its_device():
    """The step-by-step reference of stdp-bimodal (``song.simulate_steps``), which no experiment runs:
    its synapses' drive follows the spikes' device, not torch's default one."""
    from neuroplastic.experiments.song import SongNetwork, poisson_events, simulate_steps

    net = SongNetwork(n_inputs=50)
    generator = torch.Generator().manual_seed(0)
    weights, events = net.initial_weights(generator), poisson_events(50, net.rate_hz, 200, 0.1, generator)
    with torch.device("meta"):
        final, out = simulate_steps(net, weights, events, 200, 0.1)
    assert final.device.type == "cpu" and out.device.type == "cpu"


@CUDA
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_passes_on_cuda(name, tmp_path):
    """Each experiment, quick, on CUDA: its criteria as on the CPU (quick distal-reward meets its own on
    neither), its figure drawn."""
    outcome = get_experiment(name)(quick=True, progress=False, device=torch.device("cuda"))
    assert outcome.passed or name == "distal-reward", outcome.summary()
    outcome.draw(tmp_path / f"{name}.png")


@pytest.mark.parametrize("argv, message", [
    (["neuron", "lif", "--device", "gpu"], "unknown device 'gpu'"),
    (["fi", "lif", "--currents", "1", "--device", "cuda:x"], "unknown device"),
    (["train", "--task", "digits", "--epochs", "1", "--device", "tpu"], "unknown device 'tpu'"),
    (["compare", "--task", "digits", "--rules", "bptt", "--device", "cpu:3"], "no index other than 0"),
    (["tour", "--device", "gpu"], "unknown device 'gpu'"),
    (["reproduce", "stdp-window", "--quick", "--device", "npu"], "unknown device 'npu'"),
])
def test_an_unknown_device_is_one_line_and_exit_2_with_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*argv, *(["--out", str(out)] if argv[0] in ("train", "compare", "tour") else [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_says_so(capsys):
    assert main(["neuron", "lif", "--device", "cuda"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


def test_the_device_flag_runs_the_neuron_on_the_cpu(capsys):
    assert main(["neuron", "lif", "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["spike_count"] > 0


def test_a_checkpoint_resumes_on_the_device_asked_for(tmp_path):
    """Checkpoints are read onto the CPU (``map_location``) and then moved to the run's device."""
    first = fit("digits", "bptt", epochs=1, out=tmp_path, progress=False, hidden=(16,), device="cpu")
    state = torch.load(tmp_path / "checkpoint.pt", map_location="meta", weights_only=True)
    assert state["network"]  # it reads onto another device too
    again = fit("digits", "bptt", epochs=2, out=tmp_path, progress=False, hidden=(16,), resume=True, device="cpu")
    assert again["history"][0] == first["history"][0] and len(again["history"]) == 2
    assert again["updates"] > first["updates"]  # the added epoch trains (its rate is the new schedule's, not 0)


@pytest.mark.parametrize("rule", ["bptt", "decolle"])
def test_a_whole_fit_makes_no_tensor_off_the_model_device(rule, tmp_path):
    """Training, evaluation (NeuroBench's metrics included), checkpoint and figures with ``meta`` as the
    default device; the task and the network are made before, as constructors use the default device."""
    task = load_task("digits", seed=0)
    network = build_network(task, recipe_for("digits", hidden=(8,)), seed=0)
    with torch.device("meta"):
        summary = fit(task, rule, network=network, epochs=1, out=tmp_path, progress=False)
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["neurobench"]["activation_sparsity"] > 0
