"""``neuroplastic bench``: its JSON contract, bad input, and that every library computes the same layer.

The comparison is only fair if each peer's configuration is the same neuron: snnTorch's ``Leaky``
must give neuroplastic's spikes exactly; SpikingJelly and Norse reset at once and then decay the reset
(see :mod:`neuroplastic.bench.workloads`), so theirs must agree up to each neuron's first spike.
"""
import ast
import json
from pathlib import Path

import pytest
import torch

from neuroplastic.bench import default_peers
from neuroplastic.bench.timing import machine_record
from neuroplastic.bench.workloads import INPUT_SCALE, build, neuron, spiking_layer
from neuroplastic.cli.main import main


def currents(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(120, 4, 64, generator=generator) * 0.6 + 0.15


def peer_spikes(name, c):
    return neuron(name)(c * INPUT_SCALE.get(name, 1.0)).detach()


def up_to_first_spike(spikes):
    """Mask of the steps up to and including each neuron's first spike (all steps if it never fires)."""
    fired_before = spikes.cumsum(0) - spikes
    return fired_before == 0


def test_neuroplastic_workload_runs_the_fused_layer_and_matches_the_lif_alone():
    assert spiking_layer(32).fused
    workload, x = build("neuroplastic", 32, 50, 3)
    (weight,) = workload.parameters
    expected = neuron("neuroplastic")(torch.nn.functional.linear(x, weight))
    assert torch.equal(workload.forward(x), expected)
    assert 0 < expected.mean() < 0.5


def test_snntorch_leaky_gives_exactly_neuroplastics_spikes():
    pytest.importorskip("snntorch")
    c = currents()
    ours = neuron("neuroplastic")(c)
    assert ours.sum() > 100
    assert torch.equal(peer_spikes("snntorch", c), ours)


@pytest.mark.parametrize("name, module", [("spikingjelly", "spikingjelly"), ("norse", "norse")])
def test_immediate_reset_peers_agree_until_the_first_spike(name, module):
    pytest.importorskip(module)
    c = currents(1)
    ours, theirs = neuron("neuroplastic")(c), peer_spikes(name, c)
    before = up_to_first_spike(ours)
    assert torch.equal(before, up_to_first_spike(theirs))  # the same first spike for every neuron
    assert torch.equal(theirs[before], ours[before])
    assert (ours.sum(0) > 1).any()  # later spikes exist, where the reset conventions differ
    # Their reset lowers the next voltage by βθ instead of θ: slightly more spikes, never fewer.
    assert ours.sum() <= theirs.sum() <= 1.2 * ours.sum()


def test_quick_json_has_every_case_positive(capsys):
    peers = default_peers()[:1] or ["none"]  # one peer's process is enough for the contract; each costs seconds
    assert main(["bench", "--quick", "--threads", "1", "--peers", peers[0], "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out.strip().splitlines()[-1])
    assert "bench" in captured.err  # the progress bar
    assert [case["name"] for case in out["cases"]] == ["neuroplastic", *default_peers()[:1], "neuroplastic-delays"]
    delays = out["delays"]
    assert delays["N"] == 64 and delays["max_delay"] == 25 and delays["floor_ms"] > 0
    assert delays["over_plain"] == pytest.approx(out["cases"][-1]["fwd_bwd_ms"] / out["cases"][0]["fwd_bwd_ms"])
    for case in out["cases"]:
        assert case["N"] == 64 and case["peak_mb"] > 0
        assert 0 < case["fwd_min_ms"] <= case["fwd_ms"] and 0 < case["fwd_bwd_min_ms"] <= case["fwd_bwd_ms"]
    assert out["case"] == "feedforward" and out["gemm_floor_ms"]["64"] > 0 and out["matmul_peak_gflops"] > 0
    assert out["backend"] in ("cpp", "torch") and out["threads"] == 1
    assert 0 < out["utilization"]["64"]["fraction_of_peak"]
    growth = out["memory_growth"]
    assert growth["steps"] == [4, 20, 80] and 0 < growth["peak_mb"][0] < growth["peak_mb"][2]
    assert growth["activation_tensors_per_step"] > 0
    assert out["ratios"]["64"]["neuroplastic_fwd_bwd_over_floor"] > 0
    with open("/proc/cpuinfo") as info:  # the machine, as the kernel names it
        model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), None)
    assert out["machine"]["cpu"] == model and out["machine"]["cores"] >= 1
    assert_names_the_generation_and_caches(out["machine"])


def assert_names_the_generation_and_caches(machine):
    """Two CPU generations of one vendor may share a model name in a virtual machine: the record holds
    the family and model numbers and the data caches, as the kernel gives them."""
    with open("/proc/cpuinfo") as info:
        fields = dict(line.split(":", 1) for line in info.read().split("\n\n")[0].splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    assert machine["generation"] == f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"
    l1d = next((index for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")
                if (index / "level").read_text().strip() == "1" and (index / "type").read_text().strip() == "Data"),
               None)
    if l1d is not None:
        assert machine["caches"]["L1d"] == (l1d / "size").read_text().strip()


def test_the_machine_record_names_the_cpu_its_flags_and_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = json.loads(machine_record())
    finally:
        torch.set_num_threads(threads)
    machine = record["machine"]
    with open("/proc/cpuinfo") as info:
        flags = set(next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), []))
    assert set(machine["vector"]) <= flags and ("avx2" in flags) == ("avx2" in machine["vector"])
    assert_names_the_generation_and_caches(machine)
    caches = ", ".join(f"{level} {size}" for level, size in machine["caches"].items())
    for part in (machine["cpu"], machine["generation"], caches, f"{machine['cores']} cores",
                 "/".join(machine["vector"]), f"kernels {machine['kernels']}", f"ATen {machine['aten']}"):
        assert part in machine["described"]
    assert record["threads"] == 1 and record["torch"] == torch.__version__


def test_every_benchmark_script_prints_the_machine_record_once_its_threads_are_set():
    """Every table in BENCHMARKS.md names the CPU and flags it ran on (issue 19 §0): each script in
    ``benchmarks/`` prints :func:`machine_record` before its figures, in a function that has set the
    threads first where the script sets them (so that the record's count is the run's);
    ``bench_lif_layer.py`` runs ``neuroplastic bench``, whose summary holds the machine. distributed.py's
    rows each name their processes and threads (``OMP_NUM_THREADS`` of its children)."""
    scripts = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.py"))
    assert len(scripts) >= 17
    for script in scripts:
        text = script.read_text()
        if '["bench", "--json"' in text:
            continue
        calls = [(function, node) for function in ast.walk(ast.parse(text)) if isinstance(function, ast.FunctionDef)
                 for node in ast.walk(function) if isinstance(node, ast.Call) and _named(node) == "print"
                 and node.args and isinstance(node.args[0], ast.Call) and _named(node.args[0]) == "machine_record"]
        assert len(calls) == 1, script.name
        function, call = calls[0]
        if "set_num_threads(" in text and script.name != "distributed.py":
            assert any(isinstance(node, ast.Call) and _named(node) == "set_num_threads" and node.lineno < call.lineno
                       for node in ast.walk(function)), script.name


def _named(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def test_the_recurrent_case_times_its_ways_against_the_floor(capsys):
    peers = ["snntorch"] if "snntorch" in default_peers() else ["none"]
    assert main(["bench", "--case", "recurrent", "--quick", "--threads", "1", "--peers", peers[0], "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ways = {"alif_fused", "alif_step", "lif_fused", "lif_step"} | ({"lif_snntorch"} if peers == ["snntorch"] else set())
    assert set(out["over_floor"]) == ways and out["size"] == 64 and out["threads"] == 1
    floor = out["median_ms"]
    assert out["floor_ms"] == pytest.approx(2 * floor["floor_in_fwd"] + 2 * floor["floor_rec_step"] + floor["floor_wgrad"])
    for way in ways:
        assert out["over_floor"][way] == pytest.approx(out["median_ms"][way + "_fwd_bwd"] / out["floor_ms"])
        assert 0 < out["min_ms"][way + "_fwd"] <= out["median_ms"][way + "_fwd"]
    assert 0 < out["activation_tensors_per_step"]["alif"] < 8
    assert out["snntorch_agreement"] == (1.0 if peers == ["snntorch"] else None)  # the same recurrence


def test_the_online_case_times_every_rule_against_a_forward_step(capsys):
    assert main(["bench", "--case", "online", "--quick", "--threads", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["median_ms"]) == {"forward", "forward_steps", "bptt", "eprop_online", "eprop_online_unfiltered",
                                     "eprop_sequence", "decolle_online", "decolle_online_unfiltered"}
    assert out["over_forward_steps"]["forward_steps"] == 1.0 and out["over_bptt"]["bptt"] == 1.0
    assert out["ms_per_sample"]["bptt"] == pytest.approx(out["median_ms"]["bptt"] / 4)


@pytest.mark.parametrize("argv", [
    ["--sizes", "512,abc"], ["--sizes", "0"], ["--steps", "0"], ["--batch", "-1"], ["--repeats", "0"],
    ["--threads", "0"], ["--peers", "brian2"], ["--case", "recurrent", "--sizes", "64,128"],
    ["--case", "recurrent", "--steps", "1"], ["--case", "online", "--no-delays"], ["--case", "online", "--peers", "snntorch"], ["--case", "recurrent", "--peers", "norse"],
])
def test_bad_input_exits_2_with_one_line(argv, capsys):
    assert main(["bench", "--quick", "--json", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_a_requested_peer_that_is_not_installed_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setattr("neuroplastic.cli.bench.installed", lambda name: False)
    assert main(["bench", "--quick", "--peers", "snntorch"]) == 2
    assert "pip install snntorch" in capsys.readouterr().err
