"""``train --rule <online method>`` and ``compare``: JSON contracts, counts, bad input."""
import json

import pytest

from neuroplastic.cli.main import main
from neuroplastic.tasks import load_task


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_with_eprop_reports_updates_and_synaptic_operations(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--rule", "eprop", "--epochs", "2", "--out", str(tmp_path),
                 "--json"]) == 0
    summary = last_json(capsys)
    assert summary["rule"] == "eprop" and summary["test_accuracy"] > 0.85
    # at most 64 → 256 → 10 weights plus 10 biases, once per batch (45 batches × 2 epochs); inputs
    # from the digits' blank border pixels never spike, so their weights get no update
    assert 0.6 < summary["updates"] / (90 * (64 * 256 + 256 * 10 + 10)) <= 1.0
    assert summary["synops"] > 0


def test_train_online_options_reach_the_method(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--rule", "etl", "--epochs", "1", "--hidden", "32",
                 "--rule-option", "threshold=0.01", "--rule-option", "apply_every=5", "--out", str(tmp_path),
                 "--json"]) == 0
    assert 0 < last_json(capsys)["updates"]


def test_compare_prints_one_result_per_rule_and_writes_the_figure(tmp_path, capsys):
    assert main(["compare", "--task", "digits", "--rules", "bptt,dfa", "--epochs", "1", "--out", str(tmp_path),
                 "--json"]) == 0
    out = last_json(capsys)
    assert [r["rule"] for r in out["results"]] == ["bptt", "dfa"]
    for result in out["results"]:
        assert set(result) == {"rule", "test_accuracy", "wall_time_s", "ms_per_sample", "peak_memory_mb", "updates",
                               "synops", "bits_per_sample", "neurobench"}
        samples = len(load_task("digits").train)  # one epoch
        assert result["ms_per_sample"] == pytest.approx(1e3 * result["wall_time_s"] / samples)
        assert 0.0 < result["neurobench"]["activation_sparsity"] < 1.0
        assert result["test_accuracy"] > 0.5 and result["updates"] > 0 and result["synops"] > 0
    assert (tmp_path / "comparison.png").stat().st_size > 0
    assert json.loads((tmp_path / "comparison.json").read_text())["results"] == out["results"]


def test_the_comparison_figure_shows_neurobench_workload_per_rule(tmp_path, monkeypatch):
    """The last two panels: activation sparsity and the effective ACs and MACs stacked over the dense
    count; a network that does not show them (EqProp's energy network: None) is marked, not drawn."""
    from neuroplastic.report import compare as report

    drawn = {}
    monkeypatch.setattr(report, "save", lambda fig, path: drawn.setdefault("fig", fig))
    row = {"test_accuracy": 0.9, "wall_time_s": 1.0, "updates": 10, "synops": 100.0, "bits_per_sample": 5.0}
    spiking = {"activation_sparsity": 0.75, "dense_operations_per_sample": 5000.0,
               "effective_acs_per_sample": 300.0, "effective_macs_per_sample": 40.0}
    energy = {"activation_sparsity": None, "dense_operations_per_sample": 800.0,
              "effective_acs_per_sample": None, "effective_macs_per_sample": None}
    report.plot_comparison([{**row, "rule": "bptt", "neurobench": spiking},
                            {**row, "rule": "eqprop", "neurobench": energy}], "test_accuracy", tmp_path / "f.png")
    sparsity, operations = drawn["fig"].axes[-2:]
    assert [p.get_height() for p in sparsity.patches] == [0.75]
    assert "n/a" in [t.get_text() for t in sparsity.texts]
    bars = [(p.get_y(), p.get_height()) for p in operations.patches]
    assert bars == [(0.0, 5000.0), (0.0, 300.0), (300.0, 40.0), (0.0, 800.0)]  # dense, ACs, MACs on top; eqprop dense
    assert "n/a" in [t.get_text() for t in operations.texts]


@pytest.mark.parametrize("argv", [
    ["compare", "--task", "digits", "--rules", ""],
    ["compare", "--task", "digits", "--rules", "bptt,nope"],
    ["compare", "--task", "digits", "--rules", "bptt,bptt"],
    ["compare", "--task", "nope", "--rules", "bptt"],
    ["compare", "--task", "digits", "--rules", "bptt", "--epochs", "0"],
    ["train", "--task", "digits", "--rule", "eprop", "--rule-option", "feedback"],
    ["train", "--task", "digits", "--rule", "eprop", "--rule-option", "feedback=sideways"],
    ["train", "--task", "digits", "--rule", "eprop", "--rule-option", "colour=1"],
    ["train", "--task", "digits", "--rule", "decolle", "--rule-option", "mode=sometimes"],
    ["train", "--task", "digits", "--rule", "etl", "--rule-option", "target_rate=2"],
    ["train", "--task", "digits", "--rule", "eprop", "--neuron", "cuba"],
], ids=" ".join)
def test_bad_input_exits_2_and_writes_nothing(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_train_with_superspike_learns_digits(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--rule", "superspike", "--epochs", "1", "--hidden", "64",
                 "--out", str(tmp_path), "--json"]) == 0
    assert last_json(capsys)["test_accuracy"] > 0.6
