"""``neuroplastic meta`` and ``meta_fit``: the run as a user meets it (JSON, figure, checkpoint), exact
resumption, bad input refused before anything is written, and (slow) the issue's few-shot goal."""
import json

import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.outer.training import interval, meta_fit
from neuroplastic.training.checkpoint import load_checkpoint

TINY = dict(ways=3, queries=2, meta_batch=2, inner_steps=2, validate_every=2, validation_episodes=4, test_episodes=4,
            progress=False)


def test_meta_command_reports_json_writes_its_figure_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["meta", "--ways", "3", "--queries", "2", "--meta-batch", "2", "--iterations", "2",
                 "--validate-every", "1", "--test-episodes", "4", "--validation-episodes", "4", "--inner", "eprop", "--first-order",
                 "--inner-steps", "1",
                 "--no-progress", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["inner"] == "eprop" and summary["first_order"] and summary["iterations"] == 2
    assert 0 <= summary["test_accuracy"] <= 1 and summary["test_accuracy_ci95"] >= 0
    assert (out / "meta_curve.png").stat().st_size > 0 and (out / "checkpoint.pt").is_file()
    assert len(json.loads((out / "summary.json").read_text())["history"]) == 2


@pytest.mark.parametrize("stop", [2, 3])  # on the validation grid, and off it
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, stop):
    whole = meta_fit(iterations=4, out=tmp_path / "whole", **TINY)
    meta_fit(iterations=stop, out=tmp_path / "parts", **TINY)
    resumed = meta_fit(iterations=4, out=tmp_path / "parts", resume=True, **TINY)
    assert resumed["history"] == whole["history"] and [h["iteration"] for h in whole["history"]] == [2, 4]
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    one, two = (load_checkpoint(tmp_path / name / "checkpoint.pt")["meta"] for name in ("whole", "parts"))
    assert all(torch.equal(one[k], two[k]) for k in one)
    with pytest.raises(ValueError, match="made with"):
        meta_fit(iterations=4, out=tmp_path / "parts", resume=True, **{**TINY, "ways": 2})
    with pytest.raises(ValueError, match="holds 4 meta-iterations, more than the 3"):
        meta_fit(iterations=3, out=tmp_path / "parts", resume=True, **TINY)


def test_a_diverging_run_stops_with_one_error_and_checkpoints_no_diverged_state(tmp_path):
    with pytest.raises(ValueError, match="diverged"):  # the layer's check or meta's, whichever sees it first
        meta_fit(iterations=2, inner_lr=1e300, out=tmp_path, **TINY)  # float32 weights overflow
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("flags, message", [
    (["--ways", "17"], "exceeds the 16 classes"),
    (["--ways", "1"], "ways must be an integer >= 2"),
    (["--shots", "0"], "shots must be"),
    (["--inner-steps", "0"], "inner steps must be"),
    (["--inner", "etl"], "unknown inner rule"),
    (["--inner-lr", "nan"], "inner_lr"),
    (["--meta-batch", "0"], "meta_batch"),
    (["--shots", "19", "--queries", "2"], "exceeds the 20 samples per class"),
    (["--task", "double-nmnist"], "--data"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert main(["meta", "--iterations", "1", "--out", str(out), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_the_interval_is_the_normal_one_over_episodes():
    accuracies = torch.tensor([0.2, 0.4, 0.6, 0.8])
    mean, half = interval(accuracies)
    assert mean == pytest.approx(0.5) and half == pytest.approx(1.96 * 0.2581988897 / 2)


@pytest.mark.slow
def test_maml_5_way_1_shot_beats_training_from_scratch_by_25_points(tmp_path):
    summary = meta_fit(iterations=300, out=tmp_path, progress=False)  # BENCHMARKS.md: second order, BPTT inside
    assert summary["test_accuracy"] - summary["scratch_accuracy"] >= 0.25


def test_meta_fit_on_double_nmnist_files(tmp_path):
    from test_episodes import _write_digits
    _write_digits(tmp_path / "nmnist", files_per_digit=5)  # 25 pairs per class ≥ 20 samples
    summary = meta_fit("double-nmnist", dataset_options={"path": str(tmp_path / "nmnist"), "steps": 20}, iterations=1,
                       out=tmp_path / "run", **{**TINY, "ways": 2, "queries": 1, "inner_steps": 1})
    assert summary["dataset"] == "double-nmnist" and 0 <= summary["test_accuracy"] <= 1
