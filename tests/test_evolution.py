"""Neuroevolution's parts against what no one here wrote: the ES search gradient against the gradient
of a quadratic (where the Gaussian-smoothed gradient is exact), the ``cmaes`` package's CMA-ES on
Rosenbrock, the GA's structural mutations against the network's own rows and columns, the batched
population against a loop over single networks, and exact resumption of every strategy."""
import json

import pytest
import torch
from torch.func import functional_call

from neuroplastic.outer.evolution import (
    CMAES,
    Classification,
    GeneticTopology,
    Genome,
    OpenAIES,
    SerialEvaluator,
    centred_ranks,
    evolve,
    hidden_neurons,
    make_problem,
    make_strategy,
    search_gradient,
)
from neuroplastic.training.checkpoint import load_checkpoint

TINY = dict(hidden=6, batch=16, chunk=4)


def quadratic(centre, curvature):
    return lambda theta: -0.5 * ((theta - centre) @ curvature * (theta - centre)).sum(-1)


def test_the_search_gradient_is_unbiased_for_the_smoothed_objective_of_a_quadratic():
    # E_ε F(θ + σε) = F(θ) − σ²/2 tr A for F = −½(θ−c)ᵀA(θ−c): its gradient is the true −A(θ−c)
    generator = torch.Generator().manual_seed(0)
    dim, sigma, draws, population = 5, 0.3, 4000, 20
    curvature = torch.diag(torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5], dtype=torch.float64))
    centre, theta = torch.randn(dim, generator=generator, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64)
    objective = quadratic(centre, curvature)
    estimates = []
    for _ in range(draws):
        noise = torch.randn(population, dim, generator=generator, dtype=torch.float64)
        estimates.append(search_gradient(noise, objective(theta + sigma * noise), sigma))
    estimates = torch.stack(estimates)
    truth = curvature @ (centre - theta)
    error = estimates.std(0) / draws ** 0.5
    assert torch.all((estimates.mean(0) - truth).abs() < 4 * error), (estimates.mean(0), truth, error)
    assert torch.all(error < 0.1 * truth.abs().max())  # the test can tell a wrong gradient apart


def test_centred_ranks_are_evenly_spaced_in_order_of_fitness_and_shared_by_ties():
    fitness = torch.tensor([3.0, -1.0, 10.0, 0.5])
    assert centred_ranks(fitness).tolist() == pytest.approx([1 / 6, -0.5, 0.5, -1 / 6])
    assert centred_ranks(torch.tensor([2.0, 5.0, 2.0, 7.0])).tolist() == pytest.approx([-1 / 3, 1 / 6, -1 / 3, 0.5])
    search = OpenAIES(torch.zeros(3), population=6, seed=0)
    candidates = search.ask()
    search.tell(candidates, torch.full((6,), 500.0))  # a population that scores all alike moves nothing
    assert torch.equal(search.centre(), torch.zeros(3, dtype=torch.float64))


def test_openai_es_climbs_a_quadratic_and_samples_antithetic_pairs():
    centre = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    objective = quadratic(centre, torch.eye(3, dtype=torch.float64))
    search = OpenAIES(torch.zeros(3), population=20, sigma=0.1, lr=0.05, seed=1)
    for _ in range(300):
        candidates = search.ask()
        search.tell(candidates, objective(candidates))
    assert torch.allclose(candidates[:10] + candidates[10:], 2 * candidates.mean(0).expand(10, 3), atol=1e-12)
    assert torch.allclose(search.centre(), centre, atol=0.05)
    with pytest.raises(ValueError, match="even"):
        OpenAIES(torch.zeros(3), population=5)


def rosenbrock(x):
    return ((1 - x[..., :-1]) ** 2).sum(-1) + 100 * ((x[..., 1:] - x[..., :-1] ** 2) ** 2).sum(-1)


def test_cma_es_reaches_1e_8_on_the_10_dimensional_rosenbrock_function():
    search = CMAES(torch.zeros(10), sigma=0.5, seed=0)
    for _ in range(3000):
        candidates = search.ask()
        fitness = -rosenbrock(candidates)
        search.tell(candidates, fitness)
        if -fitness.max() < 1e-10:
            break
    assert rosenbrock(search.centre()) < 1e-8


@pytest.mark.parametrize("strategy", ["openai-es", "cmaes"])
def test_a_restored_strategy_proposes_what_the_original_would(strategy):
    objective = quadratic(torch.ones(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64))
    build = lambda: (OpenAIES(torch.zeros(4), population=6, seed=3) if strategy == "openai-es"  # noqa: E731
                     else CMAES(torch.zeros(4), population=6, seed=3))
    original = build()
    for _ in range(3):
        candidates = original.ask()
        original.tell(candidates, objective(candidates))
    restored = build()
    restored.load_state_dict(original.state_dict())
    assert torch.equal(restored.ask(), original.ask())


def tiny_problem():
    return Classification("digits", **TINY)


def test_a_batched_population_scores_as_a_loop_over_single_networks():
    problem = tiny_problem()
    genome = Genome(problem.initial())
    population = genome.unflatten(genome.start + 0.1 * torch.randn(5, genome.size, generator=torch.Generator().manual_seed(0),
                                                                   dtype=torch.float64))
    batched = SerialEvaluator(problem)(population, 2)  # chunks of 4 and 1
    alone = torch.cat([problem.fitness({k: v[i:i + 1] for k, v in population.items()}, 2) for i in range(5)])
    assert torch.allclose(batched, alone, rtol=1e-5)
    train = problem.task.train
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(2))[:16]
    params = {k: v[3] for k, v in population.items()}
    readout = functional_call(problem.network, params, (train.inputs[index].transpose(0, 1),)).readout
    steps = readout.shape[0]  # the cross-entropy of every step's readout, averaged
    by_hand = torch.nn.functional.cross_entropy(readout.reshape(-1, 10), train.targets[index].repeat(steps))
    assert float(-batched[3]) == pytest.approx(float(by_hand), rel=1e-5)
    assert problem.evaluate(params)["test_samples"] == len(problem.task.test)


def test_genome_flattens_and_restores_named_parameters():
    problem = tiny_problem()
    genome = Genome(problem.initial())
    back = genome.unflatten(genome.start[None])
    assert all(torch.equal(back[name][0], value) for name, value in problem.initial().items())
    with pytest.raises(ValueError, match="lacks"):
        Genome(problem.initial(), {"nope": (0.0, 1.0)})


def test_hidden_neurons_are_a_row_in_and_a_column_out():
    problem = tiny_problem()
    genome = Genome(problem.initial())
    neurons = hidden_neurons(problem.network, genome)
    assert len(neurons) == 6
    vector = torch.zeros(genome.size, dtype=torch.float64)
    vector[neurons[2]] = 1.0
    params = genome.unflatten(vector[None])
    incoming, outgoing = params["layers.0.synapses.weight"][0], params["readout.synapses.weight"][0]
    assert incoming[2].eq(1).all() and incoming.sum() == incoming.shape[1]
    assert outgoing[:, 2].eq(1).all() and outgoing.sum() == outgoing.shape[0]
    assert params["readout.synapses.bias"].sum() == 0


def test_the_ga_keeps_its_elite_and_masks_what_it_removes():
    problem = tiny_problem()
    genome = Genome(problem.initial())
    search = make_strategy("ga", problem, genome, population=12, sigma=0.05, lr=1.0, seed=0)
    search.structure_rate = 1.0
    fitness_of = SerialEvaluator(problem)
    for generation in range(8):
        candidates = search.ask()
        fitness = fitness_of(genome.unflatten(candidates), generation)
        best = candidates[fitness.argmax()]
        search.tell(candidates, fitness)
        assert torch.equal(search.ask()[0], best)  # the elite passes unchanged
    assert torch.equal(search.ask(), search.weights * search.masks)


def test_each_structural_mutation_adds_or_removes_one_synapse_or_one_whole_neuron():
    problem = tiny_problem()
    genome = Genome(problem.initial())
    neurons = hidden_neurons(problem.network, genome)
    search = GeneticTopology(genome.start, population=40, synapses=torch.arange(genome.size - 10), neurons=neurons,
                             structure_rate=1.0, elite=0, seed=0)
    search.tell(search.ask(), torch.zeros(40))  # every child of an all-on parent, mutated once
    removed = [set((~mask).nonzero().flatten().tolist()) for mask in search.masks]
    as_sets = [set(n.tolist()) for n in neurons]
    assert all(len(r) <= 1 or r in as_sets for r in removed)  # nothing to add: only removals change the mask
    assert any(len(r) == 1 for r in removed) and any(r in as_sets for r in removed)
    assert all(not (r & set(range(genome.size - 10, genome.size))) for r in removed)  # the bias never switches off
    with pytest.raises(ValueError, match="GA evolves network topologies"):
        make_strategy("ga", _Hyperparameters(), genome, population=4, sigma=0.1, lr=1.0, seed=0)


class _Hyperparameters:
    name, bounds, network = "hyper", {"a": (0.0, 1.0)}, None


class _Diverging(Classification):
    def fitness(self, population, generation):
        return torch.full((len(next(iter(population.values()))),), float("nan"), dtype=torch.float64)


def test_a_generation_that_diverges_is_written_as_null_not_as_nan(tmp_path, monkeypatch):
    import neuroplastic.outer.evolution.run as run

    monkeypatch.setitem(run.EVOLUTION_TASKS, "diverging", lambda *, seed=0: _Diverging("digits", **TINY, seed=seed))
    summary = evolve("diverging", population=4, generations=2, progress=False, out=tmp_path)
    assert summary["history"][-1] == {"generation": 2, "best": None, "mean": None}
    assert json.loads((tmp_path / "summary.json").read_text())["history"] == summary["history"]


@pytest.mark.parametrize("strategy", ["openai-es", "cmaes", "ga"])
def test_a_resumed_evolution_equals_an_uninterrupted_one(tmp_path, strategy):
    run = dict(task="digits", strategy=strategy, population=6, sigma=0.05, progress=False, task_options=TINY)
    whole = evolve(generations=4, out=tmp_path / "whole", **run)
    evolve(generations=2, out=tmp_path / "parts", **run)
    resumed = evolve(generations=4, out=tmp_path / "parts", resume=True, **run)
    assert resumed["history"] == whole["history"] and resumed["score"] == whole["score"]
    one, two = (load_checkpoint(tmp_path / name / "checkpoint.pt")["strategy"] for name in ("whole", "parts"))
    assert all(torch.equal(torch.as_tensor(one[k][-1] if isinstance(one[k], list) else one[k]),
                           torch.as_tensor(two[k][-1] if isinstance(two[k], list) else two[k])) for k in one)
    with pytest.raises(ValueError, match="made with"):
        evolve(generations=4, out=tmp_path / "parts", resume=True, **{**run, "population": 8})
    with pytest.raises(ValueError, match="more than"):
        evolve(generations=3, out=tmp_path / "parts", resume=True, **run)


def test_the_ga_finds_the_neurons_of_a_network_inside_a_policy():
    pytest.importorskip("gymnasium")
    problem = make_problem("cartpole", options={"hidden": 4})
    genome = Genome(problem.initial())
    search = make_strategy("ga", problem, genome, population=4, sigma=0.1, lr=1.0, seed=0)
    assert len(search.neurons) == 4 and all(len(n) == 8 + 2 for n in search.neurons)  # 8 inputs in, 2 actions out
