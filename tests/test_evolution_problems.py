"""The evolution problems CartPole (a spiking policy on gymnasium's cart-pole) and STDPDigits (the
plasticity parameters of unsupervised-digits): the problem contract, batched = looped, determinism."""
import math
import pickle
import sys
from collections import Counter

import pytest
import torch
from torch.func import functional_call, vmap
from torch.utils._pytree import tree_map

from neuroplastic.experiments import digits
from neuroplastic.experiments.digits import Config, load, load_validation
from neuroplastic.outer.evolution import plasticity
from neuroplastic.outer.evolution.control import CartPole, episode_seeds
from neuroplastic.outer.evolution.plasticity import BOUNDS, SEARCHED, STDPDigits
from neuroplastic.outer.evolution.problems import Genome, generation_generator

try:
    import gymnasium
except ImportError:
    gymnasium = None
needs_gymnasium = pytest.mark.skipif(gymnasium is None, reason="needs gymnasium (neuroplastic[evolve])")


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread (as the experiment and the evolution workers use), not a spinning pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturbed(problem, size, spread, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {name: value + spread * torch.randn((size, *value.shape), generator=generator, dtype=value.dtype)
            for name, value in problem.initial().items()}


# --- CartPole ---------------------------------------------------------------------------------------

@needs_gymnasium
def test_cartpole_contract_shapes():
    problem = CartPole(hidden=8, episodes=2, chunk=4)
    initial = problem.initial()
    assert problem.bounds is None and problem.chunk == 4 and problem.name == "cartpole"
    assert set(initial) == {name for name, _ in problem.policy.named_parameters()}
    assert all(value.dtype == torch.float64 for value in initial.values())
    fitness = problem.fitness(perturbed(problem, 3, 1.0), 0)
    assert fitness.shape == (3,) and fitness.dtype == torch.float64
    assert ((fitness >= 1) & (fitness <= 500)).all()
    held_out = problem.evaluate(initial)
    assert held_out["episodes"] == 100 and held_out["min_return"] <= held_out["score"] <= 500
    assert held_out["score"] == held_out["mean_return"]


@needs_gymnasium
def test_cartpole_batched_rollout_equals_single_environments():
    """P individuals × E episodes in one vectorized environment and one vmapped network give the returns
    of each individual played alone in gymnasium.make("CartPole-v1"), episode by episode."""
    problem = CartPole(hidden=8, episodes=3)
    population = perturbed(problem, 3, 1.0)
    seeds = episode_seeds(problem.seed, 3, generation=2)
    batched = problem.returns(population, seeds)
    for index in range(3):
        params = {name: value[index] for name, value in population.items()}
        for episode, seed in enumerate(seeds):
            env = gymnasium.make("CartPole-v1")
            observation, _ = env.reset(seed=seed)
            state, total, done = problem.policy.init_state(1), 0.0, False
            while not done:
                readout, state = functional_call(problem.policy, params, (state, torch.from_numpy(observation)[None]))
                observation, reward, terminated, truncated, _ = env.step(int(readout.argmax(-1)))
                total, done = total + reward, terminated or truncated
            assert batched[index, episode] == total
    assert len(set(batched.flatten().tolist())) > 1  # the policies differ: the comparison means something


@needs_gymnasium
def test_cartpole_vmap_over_individuals_equals_a_loop_of_networks():
    problem = CartPole(hidden=8)
    population = perturbed(problem, 4, 1.0)
    generator = torch.Generator().manual_seed(1)
    observations = torch.randn(6, 4, 5, 4, generator=generator, dtype=torch.float64) * 0.2  # (T, P, B, 4)
    state = tree_map(lambda t: t.expand(4, *t.shape).clone(), problem.policy.init_state(5))
    singles = [problem.policy.init_state(5) for _ in range(4)]
    step = vmap(lambda params, s, o: functional_call(problem.policy, params, (s, o)))
    spiked = False
    for observation in observations:
        readout, state = step(population, state, observation)
        for index in range(4):
            params = {name: value[index] for name, value in population.items()}
            single, singles[index] = functional_call(problem.policy, params, (singles[index], observation[index]))
            torch.testing.assert_close(readout[index], single, rtol=1e-12, atol=1e-12)
            spiked |= bool(singles[index].layers[0].z.any())
            assert torch.equal(state.layers[0].z[index], singles[index].layers[0].z)
    assert spiked


@needs_gymnasium
def test_cartpole_is_deterministic_and_picklable():
    problem = CartPole(hidden=8, episodes=2, seed=3)
    population = perturbed(problem, 4, 1.0)
    first = problem.fitness(population, 5)
    assert torch.equal(first, problem.fitness(population, 5))
    assert torch.equal(first, pickle.loads(pickle.dumps(problem)).fitness(population, 5))
    assert torch.equal(CartPole(hidden=8, episodes=2, seed=3).initial()["network.readout.synapses.bias"],
                       problem.initial()["network.readout.synapses.bias"])


def test_cartpole_training_and_held_out_episodes_are_disjoint():
    training = {s for generation in range(50) for s in episode_seeds(7, 8, generation)}
    held_out = set(episode_seeds(7, 100, None))
    assert len(training) == 400 and len(held_out) == 100 and not training & held_out
    assert episode_seeds(7, 8, 0) != episode_seeds(7, 8, 1) != episode_seeds(8, 8, 1)


@needs_gymnasium
@pytest.mark.parametrize("options, name", [({"hidden": 0}, "hidden"), ({"episodes": 0}, "episodes"),
                                           ({"chunk": 0}, "chunk"), ({"neuron": "nope"}, "neuron"),
                                           ({"tau_m": -1.0}, "tau_m"), ({"tau_out": 0.0}, "tau_out"),
                                           ({"seed": -1}, "seed")])
def test_cartpole_refuses_bad_arguments(options, name):
    with pytest.raises(ValueError, match=name):
        CartPole(**options)


def test_cartpole_without_gymnasium_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    with pytest.raises(ImportError) as error:
        CartPole()
    assert str(error.value) == "CartPole needs gymnasium: pip install 'neuroplastic[evolve]'"


# --- STDPDigits -------------------------------------------------------------------------------------

TINY = {"search_n_exc": 10, "search_images": 20, "present_ms": 5.0}


def test_stdp_digits_starts_at_the_hand_set_values_within_bounds():
    problem = STDPDigits(parameters=tuple(BOUNDS), **TINY)
    initial = problem.initial()
    assert problem.chunk == 1 and set(problem.bounds) == set(initial) == {f"log10_{n}" for n in BOUNDS}
    assert problem.config(initial) == Config()
    for name, value in initial.items():
        low, high = problem.bounds[name]
        assert value.shape == () and value.dtype == torch.float64 and low < float(value) < high
    assert set(STDPDigits().initial()) == {f"log10_{n}" for n in SEARCHED}
    genome = Genome(initial, problem.bounds)  # the lead's flattening accepts the names and bounds
    assert genome.size == len(BOUNDS)


def test_stdp_digits_config_maps_and_clips():
    problem = STDPDigits(parameters=("a_plus", "tau", "inhibition"), **TINY)
    cfg = problem.config({"log10_a_plus": torch.tensor(-2.5, dtype=torch.float64),
                          "log10_tau": torch.tensor(1.0, dtype=torch.float64),
                          "log10_inhibition": torch.tensor(9.0, dtype=torch.float64)}, n_exc=7)
    assert math.isclose(cfg.a_plus, 10 ** -2.5, rel_tol=1e-11) and cfg.tau_plus == cfg.tau_minus == 10.0
    assert cfg.inhibition == 100.0 and cfg.n_exc == 7 and cfg.a_minus == Config().a_minus


def test_stdp_digits_fitness_is_a_deterministic_validation_accuracy():
    problem = STDPDigits(**TINY)
    population = {name: value[None] for name, value in problem.initial().items()}
    fitness = problem.fitness(population, 0)
    assert fitness.shape == (1,) and fitness.dtype == torch.float64 and 0.0 <= float(fitness) <= 1.0
    assert torch.equal(fitness, problem.fitness(population, 0))
    assert torch.equal(fitness, pickle.loads(pickle.dumps(problem)).fitness(population, 0))


def test_stdp_digits_fitness_averages_the_generations_networks_in_turn():
    """``fitness_runs`` networks per individual: the mean of runs drawn one after another from the
    generation's generator — its first run is the one-network fitness."""
    options = {"search_n_exc": 20, "search_images": 40, "present_ms": 30.0}  # enough to learn something
    population = {name: value[None] for name, value in STDPDigits(**options).initial().items()}
    problem = STDPDigits(**options, fitness_runs=3)
    cfg = problem.config({name: values[0] for name, values in population.items()}, n_exc=20, present_ms=30.0)
    learn, validation = load_validation(0, 0.25, n_train=40)
    generator = generation_generator(0, 4)
    runs = [digits.learn_and_classify(cfg, learn, validation, generator)["accuracy"] for _ in range(3)]
    assert len(set(runs)) > 1  # three networks, not one three times
    assert float(problem.fitness(population, 4)) == pytest.approx(sum(runs) / 3, abs=1e-15)
    assert float(STDPDigits(**options).fitness(population, 4)) == runs[0]
    every = STDPDigits(**{**TINY, "search_images": None})  # all the learning images
    assert every.search_images is None and 0.0 <= float(every.fitness(population, 0)) <= 1.0


def test_validation_images_are_training_images_held_out_from_learning():
    (x_train, y_train), (x_test, _) = load(0, None, None)
    (x_learn, y_learn), (x_valid, y_valid) = load_validation(0, 0.25)
    def rows(x, y):
        return Counter(map(tuple, torch.cat([x, y[:, None].double()], 1).tolist()))

    assert rows(x_learn, y_learn) + rows(x_valid, y_valid) == rows(x_train, y_train)
    assert len(x_valid) == round(0.25 * len(x_train)) and len(x_test) == 450
    with pytest.raises(ValueError, match="validation"):
        load_validation(0, 1.0)


def test_stdp_digits_evaluate_is_the_experiment_run(monkeypatch):
    """``evaluate`` with one run is ``unsupervised-digits`` with the individual's parameters (on a few
    images here, to be fast)."""
    def few(seed, n_train, n_test):
        return tuple((x[:20], y[:20]) for x, y in load(seed, None, None))

    monkeypatch.setattr(plasticity, "load", few)
    monkeypatch.setattr(digits, "load", few)
    problem = STDPDigits(n_exc=12, seed=1)
    params = {name: value + 0.1 for name, value in problem.initial().items()}
    held_out = problem.evaluate(params)
    expected = digits.run(config=problem.config(params, n_exc=12), seed=1, progress=False)
    assert held_out["score"] == held_out["test_accuracy"] == expected.measured["test_accuracy"]
    assert held_out["n_exc"] == 12 and held_out["runs"] == 1 and held_out["test_images"] == 20
    assert math.isclose(held_out["theta_plus"], 0.2 * 10 ** 0.1, rel_tol=1e-11)


@pytest.mark.parametrize("options, name", [({"parameters": ("nope",)}, "parameter"),
                                           ({"parameters": "a_plus"}, "parameters"),
                                           ({"parameters": ("tau", "tau")}, "parameters"),
                                           ({"validation": 1.5}, "validation"), ({"n_exc": 0}, "n_exc"),
                                           ({"search_n_exc": 0}, "search_n_exc"),
                                           ({"search_images": 5}, "search_images"),
                                           ({"present_ms": 0.0}, "present_ms"),
                                           ({"evaluation_runs": 0}, "evaluation_runs"),
                                           ({"fitness_runs": 0}, "fitness_runs"), ({"seed": -1}, "seed")])
def test_stdp_digits_refuses_bad_arguments(options, name):
    with pytest.raises(ValueError, match=name):
        STDPDigits(**options)
