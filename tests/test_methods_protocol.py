"""The trainer others can extend: ``fit`` with a Task object, a method object of one's own, an
injected loss, evaluation, optimizer and device — without editing the trainer."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad

from neuroplastic.rules import BPTT, TruncatedBPTT, apply_updates, chain, clip
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.methods import as_method, make_method
from neuroplastic.training.objectives import Classification, LossFunction, objective_for
from neuroplastic.training.problem import GradientMethod, Problem
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.training.trainer import Trainer


@pytest.fixture(scope="module")
def small_task():
    return load_task("randman", seed=0, classes=3, samples_per_class=60, steps=40, units=20)


class SignOfDifferences:
    """A method of one's own: antithetic random perturbations of every parameter through the problem's
    ``loss_fn`` (an evolution strategy, Salimans et al. 2017, with one pair), no autograd."""

    name = "es-pair"
    momentum = True

    def __init__(self, sigma=0.02, seed=0):
        self.sigma, self.generator = sigma, torch.Generator().manual_seed(seed)
        self.batches = 0

    def learner(self, problem):
        method = self

        class Learner:
            params = tuple(problem.network.parameters())
            updates_applied = synops = 0

            def train_batch(self, inputs, targets, optimizer):
                method.batches += 1
                names = [name for name, _ in problem.network.named_parameters()]
                with torch.no_grad():
                    noise = [torch.randn(p.shape, generator=method.generator, dtype=p.dtype) for p in self.params]
                    plus = {n: p + method.sigma * e for n, p, e in zip(names, self.params, noise)}
                    minus = {n: p - method.sigma * e for n, p, e in zip(names, self.params, noise)}
                    difference = problem.loss_fn(plus, inputs, targets) - problem.loss_fn(minus, inputs, targets)
                    estimate = [difference / (2 * method.sigma) * e for e in noise]
                    self.updates_applied += apply_updates(optimizer, self.params, estimate)
                    return float(problem.loss_fn(dict(zip(names, self.params)), inputs, targets))

        return Learner()


def test_a_method_of_ones_own_trains_through_fit_with_a_task_object(small_task, tmp_path):
    method = SignOfDifferences()
    summary = fit(small_task, method, epochs=2, out=tmp_path, progress=False, hidden=(16,), batch_size=32)
    assert summary["rule"] == "es-pair" and summary["task"] == "randman"
    assert method.batches == 2 * math.ceil(len(small_task.train) / 32)
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["updates"] > 0
    assert (tmp_path / "learning_curve.png").exists()


def test_loss_fn_is_the_problems_loss_as_a_function_of_the_parameters(small_task):
    net = build_network(small_task, recipe_for("randman", hidden=(8,), rate_weight=0.1), seed=0).double()
    problem = Problem(net, objective_for(small_task), small_task.dt, rate_weight=0.1)
    inputs, labels = next(small_task.batches("train", 8, shuffle=False))
    inputs = inputs.double()
    params = dict(net.named_parameters())
    torch.testing.assert_close(problem.loss_fn(params, inputs, labels), problem.loss(net(inputs), labels))
    expected = torch.autograd.grad(problem.loss(net(inputs), labels), list(params.values()))
    by_transform = grad(problem.loss_fn)({k: v.detach() for k, v in params.items()}, inputs, labels)
    for got, want in zip(by_transform.values(), expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_injected_loss_evaluation_optimizer_and_device(tmp_path):
    def count_loss(readout, labels):  # cross-entropy of the readout averaged over the whole sequence
        return F.cross_entropy(readout.mean(0), labels)

    def evaluate(readout, labels):
        return {"hits": (readout.mean(0).argmax(-1) == labels).double().mean().item(),
                "loss": count_loss(readout, labels).item()}

    digits = load_task("digits", seed=0).to(torch.float64)
    summary = fit(digits, "bptt", loss=count_loss, evaluate=evaluate, device="cpu",
                  optimizer=lambda params: torch.optim.Adam(params, lr=0.003), epochs=3, out=tmp_path,
                  progress=False, hidden=(64,))
    assert summary["test_hits"] > 0.8  # 10 classes: chance is 0.1
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3] and "test_hits" in summary["history"][-1]


def test_a_loss_of_whole_sequences_serves_bptt_and_sequence_mode_not_per_step_updates(small_task, tmp_path):
    loss = LossFunction(lambda y, labels: F.cross_entropy(y[-5:].mean(0), labels))
    fit(small_task, "eprop", loss=loss, epochs=1, out=tmp_path / "eprop", progress=False, hidden=(8,))
    with pytest.raises(ValueError, match="per-step error"):
        fit(small_task, "decolle", loss=loss, epochs=1, out=tmp_path / "decolle", progress=False, hidden=(8,))
    with pytest.raises(ValueError, match="cannot weigh segments"):
        fit(small_task, "tbptt", loss=loss, rule_options={"steps": 10}, epochs=1, out=tmp_path / "tbptt",
            progress=False, hidden=(8,))


def test_the_sequence_errors_of_a_loss_function_are_the_objectives(small_task):
    """LossFunction's autograd error equals the analytic ∂E/∂y of the same cross-entropy."""
    objective = Classification(small_task.loss_steps)
    readout = torch.randn(40, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 1, 0])
    wrapped = LossFunction(lambda y, t: objective.loss(y, t, segment=_whole(40)))
    torch.testing.assert_close(wrapped.error(readout, labels, 40), objective.error(readout, labels, 40))


def _whole(steps):
    from neuroplastic.rules.base import Segment

    return Segment(0, steps, steps)


def test_rules_and_methods_as_objects():
    assert as_method("bptt") == GradientMethod(BPTT(), name="bptt")
    assert as_method(TruncatedBPTT(steps=20)).rule == TruncatedBPTT(steps=20)
    clipped = as_method(chain(BPTT(), clip(1.0)))
    assert isinstance(clipped, GradientMethod)
    assert as_method(make_method("eprop")) == make_method("eprop")
    with pytest.raises(ValueError, match="a rule must be"):
        as_method(object())
    with pytest.raises(ValueError, match="rule options apply to a rule given by name"):
        as_method(BPTT(), steps=3)


def test_bad_arguments_to_fit(small_task, tmp_path):
    with pytest.raises(ValueError, match="task must be"):
        fit(123, out=tmp_path)
    with pytest.raises(ValueError, match="task_options apply to a task given by name"):
        fit(small_task, task_options={"steps": 3}, out=tmp_path)
    with pytest.raises(ValueError, match="optimizer must be"):
        fit(small_task, optimizer="adam", epochs=1, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="a loss must be callable"):
        fit(small_task, loss="mse", epochs=1, out=tmp_path, progress=False)


def test_the_trainer_evaluates_a_validation_split(small_task):
    task = small_task.with_validation(0.2)
    net = build_network(task, recipe_for("randman", hidden=(8,)), seed=0)
    learner = make_method("bptt").learner(Problem(net, objective_for(task), task.dt))
    trainer = Trainer(task, net, learner, torch.optim.Adam(net.parameters()), evaluate=objective_for(task).evaluate)
    metrics = trainer.evaluate("validation")
    assert set(metrics) == {"accuracy", "loss", "spikes_per_sample", "bits_per_sample", "neurobench"}


def test_resume_checks_a_task_objects_data_and_the_validation_split_is_reported(small_task, tmp_path):
    held = small_task.with_validation(0.2)
    first = fit(held, "bptt", epochs=1, out=tmp_path, progress=False, hidden=(8,))
    assert 0.0 <= first["history"][0]["validation_accuracy"] <= 1.0
    resumed = fit(held, "bptt", epochs=2, out=tmp_path, resume=True, progress=False, hidden=(8,))
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    other = load_task("randman", seed=5, classes=3, samples_per_class=60, steps=40, units=20).with_validation(0.2)
    with pytest.raises(ValueError, match="made with"):
        fit(other, "bptt", epochs=3, out=tmp_path, resume=True, progress=False, hidden=(8,))
