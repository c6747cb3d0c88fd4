"""The command line: JSON contracts, plots, and one clear error line (exit 2) for bad input."""
import json
import subprocess
import sys

import pytest

from neuroplastic.cli.main import main


def run_json(capsys, *argv):
    assert main(list(argv) + ["--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_neuron_json_reports_spikes_consistent_with_the_closed_form(capsys):
    # LIF with E_L = 0, θ = 20, V_r = 10, τ = 20, t_ref = 2 under RI = 30: ISI = 2 + 20 ln 2 = 15.86 ms.
    out = run_json(capsys, "neuron", "lif", "--current", "30", "--duration", "500", "--dt", "0.01",
                   "--param", "e_l=0", "--param", "v_th=20", "--param", "tau_m=20")
    assert out["spike_count"] == len(out["spike_times_ms"]) > 2
    assert out["rate_hz"] == pytest.approx(out["spike_count"] / 0.5)
    isis = [b - a for a, b in zip(out["spike_times_ms"], out["spike_times_ms"][1:])]
    assert max(isis) == pytest.approx(min(isis), abs=0.011)


def test_fi_json_lists_currents_and_rates(capsys, tmp_path):
    plot = tmp_path / "fi.png"
    out = run_json(capsys, "fi", "lif", "--currents", "0,10,20,40", "--plot", str(plot))
    assert out["currents"] == [0.0, 10.0, 20.0, 40.0]
    assert out["rates_hz"][0] == 0.0 and out["rates_hz"][3] > out["rates_hz"][2] > 0
    assert plot.stat().st_size > 1000


def test_neuron_plot_is_written(tmp_path, capsys):
    plot = tmp_path / "sub" / "trace.png"
    run_json(capsys, "neuron", "lif", "--plot", str(plot))
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_noise_changes_with_the_seed(capsys):
    a = run_json(capsys, "neuron", "lif", "--noise", "3", "--seed", "1")
    b = run_json(capsys, "neuron", "lif", "--noise", "3", "--seed", "1")
    c = run_json(capsys, "neuron", "lif", "--noise", "3", "--seed", "2")
    assert a["spike_times_ms"] == b["spike_times_ms"] != c["spike_times_ms"]


BAD = [
    ["neuron", "no-such-model"],
    ["neuron", "lif", "--dt", "0"],
    ["neuron", "lif", "--dt", "-0.1"],
    ["neuron", "lif", "--dt", "nan"],
    ["neuron", "lif", "--current", "inf"],
    ["neuron", "lif", "--current", "nan"],
    ["neuron", "lif", "--duration", "-5"],
    ["neuron", "lif", "--param", "tau_m=-10"],
    ["neuron", "lif", "--param", "tau_m=0"],
    ["neuron", "lif", "--param", "t_ref=-1"],
    ["neuron", "lif", "--param", "nonsense=1"],
    ["neuron", "lif", "--param", "tau_m"],
    ["neuron", "lif", "--noise", "-1"],
    ["neuron", "lif", "--preset", "RS"],
    ["neuron", "izhikevich", "--preset", "XY"],
    ["neuron", "hh", "--noise", "1"],
    ["neuron", "lif", "--plot", "trace.txt"],
    ["fi", "lif", "--currents", "1,abc"],
    ["fi", "lif", "--currents", "1,nan"],
    ["fi", "lif", "--currents", ""],
    ["bogus-command"],
]


def exit_code(argv):
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own errors
        return stop.code


@pytest.mark.parametrize("argv", BAD, ids=" ".join)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[0] != "bogus-command" and "--plot" not in argv:
        argv = argv + ["--plot", "should-not-exist.png", "--json"]
    assert exit_code(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("neuroplastic: error:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variable, value", [("NEUROPLASTIC_FUSED", "bogus"), ("NEUROPLASTIC_ISA", "avx9")])
def test_a_bad_kernel_setting_exits_2_before_anything_is_written(variable, value, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(variable, value)
    out = tmp_path / "run"
    assert exit_code(["train", "--task", "digits", "--epochs", "1", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0]
    assert not out.exists()


def test_commands_keep_freed_memory_before_they_run(capsys, monkeypatch):
    """Every command asks for glibc's heap to keep freed memory (``devices.keep_freed_memory``, which
    ``NEUROPLASTIC_HEAP`` governs; its effect is tested in processes of its own, ``test_heap.py``)."""
    from neuroplastic import devices

    calls = []
    monkeypatch.setattr(devices, "keep_freed_memory", lambda: calls.append(1) or True)
    run_json(capsys, "neuron", "lif", "--duration", "10")
    assert calls == [1]


def test_console_script_runs_as_a_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "neuroplastic.cli.main", "neuron", "lif", "--dt", "-1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "dt" in done.stderr


@pytest.mark.parametrize("model", ["lif", "cuba", "alif", "adaptive", "coba", "izhikevich", "hh"])
def test_every_model_fires_under_its_default_current(model, capsys):
    out = run_json(capsys, "neuron", model, "--duration", "100")
    assert out["spike_count"] > 0


def test_izhikevich_presets_from_the_command_line(capsys):
    chattering = run_json(capsys, "neuron", "izhikevich", "--preset", "CH", "--duration", "300")
    regular = run_json(capsys, "neuron", "izhikevich", "--preset", "RS", "--duration", "300")
    assert chattering["spike_count"] > 2 * regular["spike_count"]  # bursts of ~5 vs single spikes


def test_hh_fi_curve_is_class_ii(capsys):
    out = run_json(capsys, "fi", "hh", "--currents", "6.0,10", "--duration", "400")
    assert out["rates_hz"][0] == 0.0 and out["rates_hz"][1] > 60.0  # a jump, not a gradual onset


def test_tour_draws_every_model(tmp_path, capsys):
    out = run_json(capsys, "tour", "--out", str(tmp_path))
    assert (tmp_path / "tour.png").stat().st_size > 10_000
    assert set(out["models"]) == {"lif", "cuba", "alif", "adaptive", "coba", "izhikevich", "hh", "dpi"}
    assert all(max(curve["rates_hz"]) > 0 for curve in out["models"].values())
