"""The published plasticity experiments (quick configurations; the full ones are marked slow), the
event-driven Song network against the step-by-step reference, and ``neuroplastic reproduce``."""
import json

import numpy as np
import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.experiments import EXPERIMENTS, get_experiment
from neuroplastic.experiments.song import SongNetwork, poisson_events, simulate_events, simulate_steps
from neuroplastic.experiments.stdp_bimodal import measure


def test_event_driven_song_network_equals_the_step_by_step_reference():
    # Faster learning and denser input, so that 0.4 s holds many output spikes and weight changes.
    net = SongNetwork(n_inputs=1000, rate_hz=25.0, a_plus=0.05)
    gen = torch.Generator().manual_seed(3)
    w0, steps, dt = net.initial_weights(gen), 4000, 0.1
    events = poisson_events(net.n_inputs, net.rate_hz, steps, dt, gen)
    w_ref, out_ref = simulate_steps(net, w0, events, steps, dt)
    w_fast, out_fast, _ = simulate_events(net, w0, events, steps, dt, chunk=700)
    assert len(out_ref) > 10
    assert out_fast.tolist() == out_ref.tolist()
    torch.testing.assert_close(w_fast, w_ref, rtol=0, atol=1e-14)
    assert (w_ref - w0).abs().max() > 0.1 * net.g_max  # the weights did move
    assert ((w_ref == 0) | (w_ref == net.g_max)).any()  # and the hard bounds were hit


def test_poisson_events_have_the_rate_and_geometric_intervals():
    steps, dt, rate = 200_000, 0.1, 15.0
    step, neuron = poisson_events(50, rate, steps, dt, torch.Generator().manual_seed(0))
    assert bool((step[1:] >= step[:-1]).all()) and step.max() < steps and step.min() >= 0
    p = rate * dt / 1000
    expected = 50 * steps * p
    assert abs(len(step) - expected) < 4 * np.sqrt(expected)
    isi = torch.diff(step[neuron == 0]).double()
    assert isi.mean().item() == pytest.approx(1 / p, rel=0.1)  # mean of the geometric law
    assert isi.std().item() == pytest.approx(np.sqrt(1 - p) / p, rel=0.1)
    with pytest.raises(ValueError, match="rate"):
        poisson_events(5, 20000.0, 10, 0.1, torch.Generator())


def test_decile_measure_against_a_hand_count():
    w = torch.tensor([0.0, 0.05, 0.2, 0.95, 1.0, 0.99, 0.5, 0.08]) * 2.0
    m = measure(w, 2.0)
    assert m["fraction_below_0.1_gmax"] == 3 / 8 and m["fraction_above_0.9_gmax"] == 3 / 8
    assert m["middle_decile_max"] == 1 / 8 and m["u_shaped"]


def test_stdp_bimodal_quick_is_u_shaped_and_regulates_the_rate():
    outcome = get_experiment("stdp-bimodal")(quick=True, progress=False)
    m = outcome.measured
    assert outcome.passed, m
    assert m["fraction_below_0.1_gmax"] >= 0.20 and m["fraction_above_0.9_gmax"] >= 0.15
    assert max(m["deciles"][1:9]) < min(m["deciles"][0], m["deciles"][9])
    assert m["output_rate_hz"] < m["initial_output_rate_hz"]  # competition lowers the output rate
    assert m["realtime_factor"] > 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_stdp_bimodal_full_matches_brian2(seed):
    outcome = get_experiment("stdp-bimodal")(seed=seed, progress=False)
    assert outcome.passed, outcome.measured
    assert abs(outcome.measured["output_rate_hz"] - 26.0) < 6.5


def test_stdp_window_quick_matches_the_closed_form_and_fits_bi_and_poo():
    outcome = get_experiment("stdp-window")(quick=True, progress=False)
    m = outcome.measured
    assert outcome.passed, m
    assert m["max_relative_error_vs_closed_form"] < 0.02
    assert m["tau_plus_ms"] == pytest.approx(16.8, rel=0.02) and m["tau_minus_ms"] == pytest.approx(33.7, rel=0.02)
    dts = np.array(m["delta_t_ms"])
    assert dts.min() == pytest.approx(-100.0) and dts.max() == pytest.approx(100.0)  # measured, not assumed


def test_reproduce_json_contract_and_figure(capsys, tmp_path):
    assert main(["reproduce", "stdp-bimodal", "--quick", "--no-progress", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"name", "passed", "measured", "published"}
    assert out["name"] == "stdp-bimodal" and out["passed"] is True
    assert out["published"]["fraction_below_0.1_gmax"] == 0.23
    assert (tmp_path / "stdp-bimodal.png").read_bytes()[:4] == b"\x89PNG"


def test_reproduce_list_names_every_experiment(capsys):
    assert main(["reproduce", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert listed == list(EXPERIMENTS)


@pytest.mark.parametrize("argv", [["reproduce", "no-such-experiment"], ["reproduce"],
                                  ["reproduce", "stdp-bimodal", "--plot", "figure.txt"],
                                  ["reproduce", "stdp-bimodal", "--seed", "nan"]], ids=" ".join)
def test_reproduce_bad_input_exits_2_with_one_line_and_writes_nothing(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv + ["--json"])
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_thresholded_lif_with_zero_offsets_is_the_conductance_lif():
    from neuroplastic.experiments.digits import ThresholdedLIF
    from neuroplastic.neurons import ConductanceLIF
    from neuroplastic.neurons.conductance_lif import conductance_input

    model = ConductanceLIF(t_ref=2.0)
    gen = torch.Generator().manual_seed(0)
    shifted = ThresholdedLIF(model, torch.zeros(6, dtype=torch.float64))
    a = b = model.init_state((1, 6), dtype=torch.float64)
    for _ in range(300):
        g_e = (torch.rand(1, 6, generator=gen, dtype=torch.float64) < 0.3) * 0.4
        g_i = (torch.rand(1, 6, generator=gen, dtype=torch.float64) < 0.1) * 0.2
        sa, a = model.step(a, conductance_input(torch.zeros(1, 6, dtype=torch.float64), g_e, g_i), 0.5)
        sb, b = shifted.step(b, g_e, g_i, 0.5)
        assert torch.equal(sa, sb) and torch.equal(a.v, b.v)
    raised = ThresholdedLIF(model, torch.full((6,), 1e3, dtype=torch.float64))
    assert not raised.step(model.init_state((1, 6), dtype=torch.float64)._replace(
        v=torch.zeros(1, 6, dtype=torch.float64)), torch.zeros(1, 6), torch.zeros(1, 6), 0.5)[0].any()


def test_unsupervised_digits_quick_reaches_80_percent():
    outcome = get_experiment("unsupervised-digits")(quick=True, progress=False)
    m = outcome.measured
    assert outcome.passed, m
    assert m["test_accuracy"] >= 0.80 and m["n_exc"] <= 400 and m["classes_covered"] == 10


@pytest.mark.slow
def test_unsupervised_digits_full():
    outcome = get_experiment("unsupervised-digits")(progress=False)
    assert outcome.passed and outcome.measured["n_exc"] == 400, outcome.measured
