"""Rules, losses, checkpoints and the training loop, against closed forms and plain autograd."""
import json
import math

import pytest
import torch
import torch.nn.functional as F

from neuroplastic.cli.main import main
from neuroplastic.rules import BPTT, TruncatedBPTT, make_rule, segments
from neuroplastic.tasks import load_task
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.training.fit import fit
from neuroplastic.training.losses import (
    rate_regularization,
    readout_cross_entropies,
    readout_cross_entropy,
    spike_count_loss,
    van_rossum_distance,
)
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.problem import GradientLearner, Problem, detached
from neuroplastic.training.trainer import Trainer


def test_van_rossum_distance_matches_the_continuous_closed_forms():
    """One spike against none: D² = ½; two single spikes Δ apart: D² = 1 − e^{−Δ/τ} (van Rossum 2001)."""
    dt, tau, steps = 0.01, 10.0, 20_000
    one, other = torch.zeros(steps, 1, 1), torch.zeros(steps, 1, 1)
    one[1000] = 1.0
    assert van_rossum_distance(one, other, tau=tau, dt=dt).item() == pytest.approx(0.5, rel=1e-3)
    other[1500] = 1.0  # Δ = 5 ms
    assert van_rossum_distance(one, other, tau=tau, dt=dt).item() == pytest.approx(1 - math.exp(-0.5), rel=1e-3)


def test_spike_count_loss_is_the_mse_to_the_target_counts():
    spikes = torch.zeros(10, 2, 3)
    spikes[:8, 0, 1] = 1.0  # sample 0 (label 1): counts (0, 8, 0) = its targets (2, 8, 2) off by 2, 0, 2
    spikes[:, 1, 0] = 1.0  # sample 1 (label 2): counts (10, 0, 0) against targets (2, 2, 8)
    loss = spike_count_loss(spikes, torch.tensor([1, 2]), correct_rate=0.8, incorrect_rate=0.2)
    assert loss.item() == pytest.approx((4 + 0 + 4 + 64 + 4 + 64) / 6)


def test_readout_cross_entropy_is_the_mean_per_step_cross_entropy():
    y = torch.randn(7, 5, 3)
    labels = torch.tensor([0, 2, 1, 1, 0])
    expected = torch.stack([F.cross_entropy(y[t], labels) for t in range(4, 7)]).mean()
    torch.testing.assert_close(readout_cross_entropy(y, labels, 3), expected)


@pytest.mark.parametrize("loss_steps", [None, 3])
def test_readout_cross_entropies_are_each_models_cross_entropy(loss_steps):
    """Many readouts at once — laid out time first as a population's are, and large enough that the
    shift by the largest value matters — against ``F.cross_entropy`` of each model's steps."""
    y = (torch.randn(7, 5, 4, 3, dtype=torch.float64) * 300.0).permute(2, 0, 1, 3)  # (M, T, B, C), time first
    labels = torch.tensor([0, 2, 1, 1, 0])
    window = range(7) if loss_steps is None else range(4, 7)
    expected = torch.stack([torch.stack([F.cross_entropy(y[m, t], labels) for t in window]).mean() for m in range(4)])
    torch.testing.assert_close(readout_cross_entropies(y, labels, loss_steps), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="one label per sample"):
        readout_cross_entropies(y, labels[:1], loss_steps)


def test_rate_regularization_vanishes_at_the_target_rate():
    spikes = torch.zeros(100, 2, 4)
    spikes[::10] = 1.0  # 1 spike per 10 steps of 1 ms: 100 Hz
    assert rate_regularization([spikes], target_hz=100.0, dt=1.0).item() == pytest.approx(0.0, abs=1e-6)
    assert rate_regularization([spikes], target_hz=90.0, dt=1.0).item() == pytest.approx(100.0, rel=1e-4)


def tiny_learner(rule, task_name="randman", **changes):
    task = load_task(task_name, seed=0)
    recipe = recipe_for(task_name, hidden=(16,), recurrent=True, **changes)
    net = build_network(task, recipe, seed=0).double()
    return GradientLearner(Problem(net, objective_for(task), task.dt), rule), task


def test_bptt_update_is_the_autograd_gradient_of_the_sequence_loss():
    learner, task = tiny_learner(BPTT())
    inputs, labels = next(task.batches("train", 8, shuffle=False))
    inputs = inputs.double()
    output = learner.problem.network(inputs)
    loss = readout_cross_entropy(output.readout, labels, task.loss_steps)
    expected = torch.autograd.grad(loss, learner.params)
    segment = segments(inputs.shape[0], None)[0]
    updates, _ = learner.rule.update(segment, None, learner.params,
                                     loss=learner.problem.loss(learner.problem.network(inputs), labels, segment))
    for a, b in zip(updates, expected):
        torch.testing.assert_close(a, b)


def test_truncated_bptt_segments_sum_to_the_whole_loss_and_cut_the_gradient():
    learner, task = tiny_learner(TruncatedBPTT(steps=30))
    inputs, labels = next(task.batches("train", 8, shuffle=False))
    inputs = inputs.double()
    whole = learner.problem.loss(learner.problem.network(inputs), labels, segments(inputs.shape[0], None)[0])
    state = learner.problem.network.init_state((8,), dtype=torch.float64)
    pieces, last_state = [], None
    for segment in segments(inputs.shape[0], 30):
        last_state = state
        out = learner.problem.network(inputs[segment.start:segment.stop], state)
        pieces.append(learner.problem.loss(out, labels, segment))
        state = detached(out.state)
    assert sum(p.item() for p in pieces) == pytest.approx(whole.item(), rel=1e-10)
    # the last segment's gradient is BPTT of its loss from the detached state it started in
    last = segments(inputs.shape[0], 30)[-1]
    reference = torch.autograd.grad(pieces[-1], learner.params, allow_unused=True)
    out = learner.problem.network(inputs[last.start:last.stop], last_state)
    updates, _ = learner.rule.update(last, None, learner.params, loss=learner.problem.loss(out, labels, last))
    for a, b in zip(updates, reference):
        torch.testing.assert_close(a, torch.zeros_like(a) if b is None else b)


def test_torch_optimizers_and_schedulers_work_unchanged():
    task = load_task("randman", seed=0)
    net = build_network(task, recipe_for("randman", hidden=(32,)), seed=0)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    learner = GradientLearner(Problem(net, objective_for(task), task.dt), BPTT())
    trainer = Trainer(task, net, learner, optimizer, evaluate=objective_for(task).evaluate, batch_size=64)
    before = trainer.evaluate()["loss"]
    for _ in range(3):
        trainer.train_epoch(torch.Generator().manual_seed(0))
        scheduler.step()
    assert trainer.evaluate()["loss"] < 0.8 * before
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / 8)


def test_checkpoints_are_atomic_and_bad_files_give_clear_errors(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"epoch": 3, "w": torch.ones(2)})
    assert load_checkpoint(path)["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"epoch": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a neuroplastic"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_fit_resumes_where_it_stopped(tmp_path):
    first = fit("digits", epochs=1, out=tmp_path, progress=False, hidden=(32,))
    resumed = fit("digits", epochs=2, out=tmp_path, resume=True, progress=False, hidden=(32,))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert resumed["history"][0] == first["history"][0]
    with pytest.raises(ValueError, match="made with"):
        fit("digits", epochs=3, out=tmp_path, resume=True, progress=False, hidden=(64,))


def test_train_command_json_and_report(tmp_path, capsys):
    assert main(["train", "--task", "digits", "--epochs", "3", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("test_accuracy", "wall_time_s", "peak_memory_mb", "spikes_per_sample"):
        assert key in summary
    assert summary["test_accuracy"] > 0.9  # digits, 3 of the default 20 epochs
    assert {p.name for p in tmp_path.iterdir()} >= {"checkpoint.pt", "summary.json", "learning_curve.png", "raster.png"}


@pytest.mark.parametrize("argv", [
    ["train", "--task", "nope"],
    ["train", "--task", "digits", "--rule", "nope"],
    ["train", "--task", "digits", "--epochs", "0"],
    ["train", "--task", "digits", "--lr", "-1"],
    ["train", "--task", "digits", "--hidden", "12,x"],
    ["train", "--task", "digits", "--neuron", "nope"],
    ["train", "--task", "digits", "--truncation", "5"],
    ["train", "--task", "digits", "--resume"],
])
def test_train_bad_input_exits_2(argv, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_make_rule_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown rule"):
        make_rule("nope")
    with pytest.raises(ValueError):
        TruncatedBPTT(steps=0)


def test_an_unwritable_output_folder_exits_2_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "--task", "digits", "--out", str(blocker / "run")]) == 2
    assert "Not a directory" in capsys.readouterr().err
