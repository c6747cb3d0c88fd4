"""Architecture search: the mixed operation, the training-free score and DARTS' hypergradient against
exact references; discretization; the search as a user meets it (budget, resume, bad input, CLI)."""
import dataclasses
import json
import math
from fractions import Fraction

import pytest
import torch

import neuroplastic.cli.main as cli_main
from neuroplastic.cli import search as search_command
from neuroplastic.outer.search import (
    OPERATIONS,
    Cell,
    CellNetwork,
    MixedOperation,
    SearchSpace,
    activation_codes,
    architecture_gradient,
    discretize,
    hamming_kernel,
    kernel_score,
    search,
    sparsity_aware_kernel,
    split_parameters,
)
from neuroplastic.tasks import load_task
from neuroplastic.training.checkpoint import load_checkpoint
from neuroplastic.training.objectives import Classification
from neuroplastic.training.problem import Problem
from neuroplastic.training.recipes import recipe_for

RECIPE = recipe_for("randman")
TINY_TASK = dict(classes=3, units=6, steps=8, samples_per_class=20)
TINY_SPACE = SearchSpace(nodes=2, width=4, max_delay=2)
TINY = dict(task_options=TINY_TASK, space=TINY_SPACE, retrain_epochs=1, progress=False)


def spikes(*shape, seed=0, dtype=torch.float32):
    return (torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) < 0.4).to(dtype)


@pytest.mark.parametrize("chosen", range(6))
def test_a_mixed_operation_with_one_hot_weights_is_that_operation_in_values_and_gradients(chosen):
    generator = torch.Generator().manual_seed(0)
    names = tuple(OPERATIONS)
    mixed = MixedOperation({n: OPERATIONS[n](5, 1.0, dataclasses.replace(RECIPE, max_delay=2), generator)
                            for n in names})
    alone = mixed.candidates[names[chosen]]
    weights = torch.nn.functional.one_hot(torch.tensor(chosen), len(names)).float()
    x = spikes(7, 3, 5).requires_grad_()
    probe = torch.randn(7, 3, 5, generator=generator)
    y_mixed, _, _ = mixed(x, weights)
    y_alone, _ = alone(x, alone.init_state(3))
    assert torch.equal(y_mixed, y_alone)
    params = [x, *alone.parameters()]
    if y_alone.requires_grad:
        for g_mixed, g_alone in zip(torch.autograd.grad((y_mixed * probe).sum(), params, allow_unused=True),
                                    torch.autograd.grad((y_alone * probe).sum(), params, allow_unused=True)):
            assert (g_mixed is None and g_alone is None) or torch.equal(g_mixed, g_alone)
    state = mixed.init_state(3)  # the step path too
    step, _, _ = mixed.step(state, x[0], weights)
    assert torch.equal(step, alone.step(alone.init_state(3), x[0])[0])


def test_the_score_is_the_log_determinant_of_agreements_by_hand():
    codes = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float32)
    # N_A = 4; d_H = 2, 2, 4 for the pairs (0,1), (0,2), (1,2): K = [[4,2,2],[2,4,0],[2,0,4]], det 32
    assert torch.equal(hamming_kernel(codes), torch.tensor([[4.0, 2, 2], [2, 4, 0], [2, 0, 4]], dtype=torch.float64))
    assert kernel_score(hamming_kernel(codes)) == pytest.approx(math.log(32.0), abs=1e-12)
    assert kernel_score(hamming_kernel(codes[[0, 0, 1]])) == -math.inf  # two samples with one code


def test_the_sparsity_aware_kernel_by_hand():
    """SNASNet's kernel: each distance over the one expected of independent codes at the samples' rates,
    averaged over layers and steps; two silent codes agree fully."""
    codes = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float32)
    # rates 3/4, 3/4, 1/4: E = 3/8, 5/8, 5/8 and d_H = 2, 2, 4 for (0,1), (0,2), (1,2)
    # K = 4 − d/(2E): 4 − 8/3, 4 − 8/5, 4 − 16/5 = 4/3, 12/5, 4/5
    by_hand = [[4, Fraction(4, 3), Fraction(12, 5)], [Fraction(4, 3), 4, Fraction(4, 5)],
               [Fraction(12, 5), Fraction(4, 5), 4]]
    step = torch.tensor([[float(x) for x in row] for row in by_hand], dtype=torch.float64)
    silent = torch.zeros(1, 3, 4)  # a second step without spikes: K = N = 4 everywhere
    kernel = sparsity_aware_kernel((torch.stack([codes, silent[0]]),))
    assert torch.allclose(kernel, (step + 4.0) / 2, rtol=0, atol=1e-12)
    mean = [[(x + 4) / 2 for x in row] for row in by_hand]
    (a, b, c), (d, e, f), (g, h, i) = mean
    determinant = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    assert kernel_score(kernel) == pytest.approx(math.log(determinant), abs=1e-12)
    # two layers: the mean of their kernels
    two = sparsity_aware_kernel((codes[None], silent))
    assert torch.allclose(two, (step + 4.0) / 2, rtol=0, atol=1e-12)


def test_codes_are_every_spiking_layers_binary_spikes_at_every_step():
    cell = Cell(TINY_SPACE, ("lif", "skip", "delayed", "lif"))  # 0>1, 0>2, 1>2, backward 2<1
    network = CellNetwork(TINY_SPACE, 6, 3, RECIPE, cell=cell, seed=1)
    codes = activation_codes(network, spikes(8, 5, 6))
    assert codes.shape == (5, 8 * 4 * 4)  # stem + three spiking edges, 8 steps, width 4
    assert set(codes.unique().tolist()) <= {0.0, 1.0}


def test_a_cell_runs_the_same_over_whole_sequences_and_step_by_step():
    cell = Cell(TINY_SPACE, ("lif-recurrent", "alif", "delayed", "none"))  # no backward edge: the fast path
    network = CellNetwork(TINY_SPACE, 6, 3, RECIPE, cell=cell, seed=2)
    assert not network.runs_stepwise
    x = spikes(8, 5, 6)
    readout, _, _ = network.run(x)
    state, steps = network.init_state((5,)), []
    for x_t in x:
        y, state, _ = network.step(state, x_t)
        steps.append(y)
    torch.testing.assert_close(readout, torch.stack(steps), rtol=1e-6, atol=1e-6)
    assert Cell.from_json(json.loads(json.dumps(cell.to_json()))) == cell


def _supernet_problem(seed=0):
    space = SearchSpace(nodes=2, width=4, backward=False, operations=("none", "skip", "lif", "delayed"), max_delay=2)
    network = CellNetwork(space, 3, 2, RECIPE, seed=seed).double()
    for alpha in network.alphas:
        alpha.data.normal_(generator=torch.Generator().manual_seed(seed + 3))
    batches = [(spikes(8, 4, 3, seed=seed + k, dtype=torch.float64), torch.tensor([0, 1, 1, 0])) for k in (1, 2)]
    return network, Problem(network, Classification()), batches


def _exact_hypergradient(loss_fn, weights, alphas, train, validation, xi):
    """``∇_α L_val(w − ξ ∇_w L_train(w, α), α)`` by autograd through the virtual step."""
    w = {n: p.detach().clone().requires_grad_() for n, p in weights.items()}
    step = torch.autograd.grad(loss_fn({**w, **alphas}, *train), list(w.values()), create_graph=True)
    w_prime = {n: p - xi * g for (n, p), g in zip(w.items(), step)}
    return dict(zip(alphas, torch.autograd.grad(loss_fn({**w_prime, **alphas}, *validation), list(alphas.values()))))


def test_second_order_darts_equals_the_exact_hypergradient_of_a_smooth_loss():
    generator = torch.Generator().manual_seed(0)
    weights = {"w": torch.randn(3, 4, generator=generator, dtype=torch.float64)}
    alphas = {"a": torch.randn(3, generator=generator, dtype=torch.float64, requires_grad=True)}

    def loss_fn(params, x, y):  # a mixture of three squashed linear maps
        mixed = torch.einsum("o,ob->b", torch.softmax(params["a"], 0), torch.tanh(params["w"] @ x))
        return ((mixed - y) ** 2).mean()
    train, validation = [(torch.randn(4, 6, generator=generator, dtype=torch.float64),
                          torch.randn(6, generator=generator, dtype=torch.float64)) for _ in range(2)]
    exact = _exact_hypergradient(loss_fn, weights, alphas, train, validation, xi=0.3)
    approx = architecture_gradient(loss_fn, weights, alphas, train, validation, xi=0.3, epsilon=1e-4)
    torch.testing.assert_close(approx["a"], exact["a"], rtol=1e-6, atol=1e-9)


def test_second_order_darts_on_a_spiking_supernet_matches_the_exact_hypergradient():
    network, problem, (train, validation) = _supernet_problem()
    weights, alphas = split_parameters(network)
    readout = {n: p for n, p in weights.items() if n.startswith("readout.")}  # no spike between w and α: exact
    exact = _exact_hypergradient(problem.loss_fn, readout, alphas, train, validation, xi=0.05)
    approx = architecture_gradient(problem.loss_fn, readout, alphas, train, validation, xi=0.05, epsilon=1e-5)
    for name in alphas:
        torch.testing.assert_close(approx[name], exact[name], rtol=1e-6, atol=1e-10)
    # every weight: spikes between, where the surrogate's mixed derivatives are not symmetric (darts.py)
    exact = _exact_hypergradient(problem.loss_fn, weights, alphas, train, validation, xi=0.05)
    approx = architecture_gradient(problem.loss_fn, weights, alphas, train, validation, xi=0.05, epsilon=1e-5)
    first = architecture_gradient(problem.loss_fn, weights, alphas, train, validation, xi=0.0)
    scale = max(float(g.abs().max()) for g in exact.values())
    assert max(float((approx[n] - exact[n]).abs().max()) for n in alphas) < 3e-3 * scale
    assert max(float((first[n] - exact[n]).abs().max()) for n in alphas) > 0.1 * scale  # the second order matters


def test_discretization_keeps_the_operation_of_the_largest_alpha_on_every_edge():
    network = CellNetwork(TINY_SPACE, 6, 3, RECIPE, seed=0)
    chosen = []
    for edge, alpha in zip(TINY_SPACE.edges, network.alphas):
        k = torch.randint(len(alpha), (1,), generator=torch.Generator().manual_seed(len(chosen))).item()
        alpha.data = torch.linspace(0, 1, len(alpha)).roll(k + 1)  # the largest at position k
        chosen.append(TINY_SPACE.candidates(edge)[k])
    assert discretize(network).operations == tuple(chosen)


@pytest.mark.parametrize("method", ["darts", "snasnet", "random"])
def test_a_search_stays_within_its_budget_and_retrains_its_pick(tmp_path, method):
    summary = search("randman", method, 1.5, out=tmp_path, **TINY,
                     method_options={"batches": 2} if method == "random" else None)
    ends = [0.0] + [h["elapsed_s"] for h in summary["history"]]  # the rule, on the times it saw (not a timed test)
    assert summary["units"] == len(ends) - 1 >= 1
    assert all(end + end / i <= 1.5 for i, end in enumerate(ends[1:-1], start=1))  # each unit begun fitted
    assert ends[-1] + ends[-1] / (len(ends) - 1) > 1.5  # and it stopped at the first that would not
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["retrain_epochs"] == 1
    assert (tmp_path / "cell.png").stat().st_size > 0 and (tmp_path / "retrain" / "checkpoint.pt").is_file()
    assert json.loads((tmp_path / "summary.json").read_text())["cell"] == summary["cell"]


@pytest.mark.parametrize("method", ["darts", "random"])
def test_a_resumed_search_equals_an_uninterrupted_one(tmp_path, method):
    options = dict(TINY, method_options={"batches": 2} if method == "random" else {"second_order": True})
    whole = search("randman", method, 1e4, iterations=4, out=tmp_path / "whole", **options)
    search("randman", method, 1e4, iterations=2, out=tmp_path / "parts", **options)
    resumed = search("randman", method, 1e4, iterations=4, out=tmp_path / "parts", resume=True, **options)
    strip = [{k: v for k, v in h.items() if k != "elapsed_s"} for h in whole["history"]]
    assert [{k: v for k, v in h.items() if k != "elapsed_s"} for h in resumed["history"]] == strip
    assert resumed["cell"] == whole["cell"] and resumed["test_accuracy"] == whole["test_accuracy"]
    one, two = (load_checkpoint(tmp_path / name / "checkpoint.pt")["searcher"] for name in ("whole", "parts"))
    assert _same(one, two)
    with pytest.raises(ValueError, match="made with"):
        search("randman", method, 1e4, iterations=4, out=tmp_path / "parts", resume=True, seed=1, **options)


@pytest.mark.parametrize("bad, message", [(dict(budget_s=0), "budget_s"), (dict(budget_s=-1.0), "budget_s"),
                                          (dict(method="evolution"), "search method"), (dict(task="mnist"), "task"),
                                          (dict(method_options={"steps": 3}), "no option")])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, bad, message):
    arguments = {"task": "randman", "method": "darts", "budget_s": 1.0, **bad}
    with pytest.raises(ValueError, match=message):
        search(arguments.pop("task"), arguments.pop("method"), arguments.pop("budget_s"), out=tmp_path / "x",
               **{**TINY, **arguments})
    assert not (tmp_path / "x").exists()


def _same(one, two) -> bool:
    """Equal nested checkpoints: dicts, lists and tuples of tensors, numbers and strings."""
    if isinstance(one, torch.Tensor):
        return torch.equal(one, two)
    if isinstance(one, dict):
        return one.keys() == two.keys() and all(_same(one[k], two[k]) for k in one)
    if isinstance(one, (list, tuple)):
        return len(one) == len(two) and all(map(_same, one, two))
    return one == two


def test_the_search_command_prints_json_last_and_exits_2_on_bad_input(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["search", "--task", "randman", "--method", "snasnet", "--budget-s", "1000", "--nodes", "2", "--width", "4",
            "--retrain-epochs", "1", "--iterations", "3", "--no-progress", "--out", str(out), "--json"]
    monkeypatch.setattr(search_command, "search", _with_tiny_task(search_command.search))
    assert cli_main.main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["method"] == "snasnet" and summary["units"] == 3 and 0 <= summary["test_accuracy"] <= 1
    assert (out / "cell.png").is_file()
    for bad in (["--budget-s", "0"], ["--method", "grid"], ["--task", "nothing"]):
        assert cli_main.main(argv[:1] + bad + ["--out", str(tmp_path / "bad")]) == 2
        assert "error" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def _with_tiny_task(run):
    def tiny(task, *args, **kwargs):
        return run(load_task(task, **TINY_TASK), *args, **kwargs)
    return tiny
