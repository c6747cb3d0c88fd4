"""``CartPole``: evolve the weights of a spiking policy that balances a pole on a cart.

The cart-pole of Barto, Sutton & Anderson (1983), "Neuronlike adaptive elements that can solve
difficult learning control problems", as gymnasium's ``CartPole-v1``: push the cart left or right
every 20 ms; +1 per step until the pole leans more than 12° or the cart leaves ±2.4, at most 500
steps. Solved at a mean return ≥ 475 over 100 episodes.

The policy (:class:`SpikingPolicy`) is the library's own network: the observation
``o = (x, ẋ, φ, φ̇)``, divided by ``s`` = :data:`OBSERVATION_SCALE`, is split by sign into
``2 × 4`` non-negative input currents ``c = [max(o/s, 0), max(−o/s, 0)]`` (a channel per direction, as
sensory neurons code a signed quantity); ``hidden`` neurons of a recipe's model (default
``discrete-lif``: ``v_t = α v_{t−1} + W c_t − ϑ z_{t−1}``) drive a :class:`LeakyReadout`
``y_t = κ y_{t−1} + W_out z_t + b``, and the action is ``argmax y_t``. One simulation step per
environment step, with ``dt`` = the environment's 20 ms: the network's state (membranes, readout)
is carried from step to step, so its leaks give it a memory of the last few observations, and an
episode costs at most 500 network steps — the cheapest rollout that still lets the spikes decide.

The search (Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution strategies as a scalable
alternative to reinforcement learning") sees the fitness ``F(θ)`` = the mean return over
``episodes`` episodes whose starts come from ``(seed, generation)`` — the same episodes for every
individual of a generation (common random numbers). A population is one rollout: the individuals'
parameters stacked, ``vmap`` over ``functional_call(policy, θ_i, (state_i, obs_i))`` each step, and
``P × E`` environments in gymnasium's vectorized cart-pole, masked as each episode ends.
``evaluate`` plays 100 held-out episodes (odd seeds; training uses even ones).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.utils._pytree import tree_map

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.training.recipes import NEURONS, Recipe
from neuroplastic.validation import lookup, require_count, require_positive

__all__ = ["CartPole", "SpikingPolicy", "OBSERVATION_SCALE", "episode_seeds"]

# the observation that alone makes a unit current (the threshold ϑ = 1 of discrete-lif): about a fifth
# of the cart's limit 2.4 m, 0.5 m/s, a quarter of the pole's limit 12° = 0.21 rad, 0.5 rad/s — so that small
# deviations a balancing policy must answer make spikes through weights of the initial size
OBSERVATION_SCALE = (0.5, 0.5, 0.05, 0.5)
EPISODE_CAP = 500  # CartPole-v1's time limit
STEP_MS = 20.0  # the environment's Euler step (tau = 0.02 s): the network's dt
EVALUATION_EPISODES = 100


def _gymnasium():
    try:
        import gymnasium
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
        from gymnasium.utils import seeding
    except ImportError:
        raise ImportError("CartPole needs gymnasium: pip install 'neuroplastic[evolve]'") from None
    return gymnasium, CartPoleVectorEnv, seeding


def episode_seeds(seed: int, episodes: int, generation: int | None) -> list[int]:
    """Environment seeds: ``episodes`` even ones for training ``generation``, odd ones (the same at
    every call) for held-out evaluation (``generation=None``) — never the same episode in both."""
    base = seed << 32
    if generation is None:
        return [base + 2 * e + 1 for e in range(episodes)]
    return [base + 2 * (generation * episodes + e) for e in range(episodes)]


class SpikingPolicy(nn.Module):
    """Observations ``(B, 4)`` → sign-split currents → one step of a spiking network → readout
    ``(B, 2)`` (float64): ``forward(state, observation) -> (readout, state)``."""

    def __init__(self, hidden: int, neuron: str = "discrete-lif", *, tau_m: float = 20.0, tau_out: float = 20.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        model = NEURONS[neuron](Recipe(neuron=neuron, tau_m=tau_m))
        layer = SpikingLayer(8, hidden, model, dt=STEP_MS, generator=generator)
        readout = LeakyReadout(hidden, 2, tau_out=tau_out, dt=STEP_MS, generator=generator)
        self.network = SpikingNetwork([layer], readout).double()
        self.register_buffer("scale", torch.tensor(OBSERVATION_SCALE, dtype=torch.float64))

    def init_state(self, batch: int):
        return self.network.init_state((batch,), dtype=torch.float64)

    def forward(self, state, observation: torch.Tensor):
        x = observation.double() / self.scale
        return self.network.step(state, torch.cat([x.clamp(min=0), (-x).clamp(min=0)], -1))


class CartPole:
    """Evolve the weights of a :class:`SpikingPolicy` of ``hidden`` neurons (model ``neuron``, a key of
    ``recipes.NEURONS``) on CartPole-v1: fitness = mean return over ``episodes`` training episodes,
    up to ``chunk`` individuals per rollout."""

    name = "cartpole"
    bounds = None
    network_prefix = "network."  # the policy's network, as its parameters are named

    def __init__(self, *, hidden: int = 16, episodes: int = 5, chunk: int = 64, neuron: str = "discrete-lif",
                 tau_m: float = 20.0, tau_out: float = 20.0, seed: int = 0):
        _gymnasium()  # a clear error now, not in the first generation
        lookup("neuron", neuron, NEURONS)
        self.hidden, self.episodes = require_count("hidden", hidden), require_count("episodes", episodes)
        self.chunk, self.seed = require_count("chunk", chunk), require_count("seed", seed, minimum=0)
        self.neuron = neuron
        self.tau_m, self.tau_out = require_positive("tau_m", tau_m), require_positive("tau_out", tau_out)
        self.policy = SpikingPolicy(self.hidden, neuron, tau_m=self.tau_m, tau_out=self.tau_out,
                                    generator=torch.Generator().manual_seed(self.seed))
        self.policy.requires_grad_(False)

    @property
    def network(self) -> SpikingNetwork:
        return self.policy.network

    def initial(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.policy.named_parameters()}

    def fitness(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
        seeds = episode_seeds(self.seed, self.episodes, require_count("generation", generation, minimum=0))
        return self.returns(population, seeds).mean(1)

    def evaluate(self, params: dict[str, torch.Tensor]) -> dict[str, float]:
        single = {name: value.unsqueeze(0) for name, value in params.items()}
        returns = self.returns(single, episode_seeds(self.seed, EVALUATION_EPISODES, None))[0]
        return {"score": float(returns.mean()), "mean_return": float(returns.mean()),
                "min_return": float(returns.min()), "std_return": float(returns.std()),
                "episodes": EVALUATION_EPISODES}

    def returns(self, population: dict[str, torch.Tensor], seeds: list[int]) -> torch.Tensor:
        """The return ``(P, E)`` of each of ``P`` stacked individuals in each episode of ``seeds``: one
        vectorized environment of ``P × E`` cart-poles (individual-major), one ``vmap`` ped network step
        per environment step, rewards counted until each episode ends."""
        _, CartPoleVectorEnv, seeding = _gymnasium()
        size, episodes = len(next(iter(population.values()))), len(seeds)
        env = CartPoleVectorEnv(num_envs=size * episodes, max_episode_steps=EPISODE_CAP)
        env.reset(seed=seeds[0])
        # each episode starts where gymnasium.make("CartPole-v1").reset(seed=s) starts it
        starts = np.stack([seeding.np_random(s)[0].uniform(-0.05, 0.05, size=(4,)) for s in seeds], 1)
        env.state = np.tile(starts, (1, size))
        observation = env.state.T.astype(np.float32)
        state = tree_map(lambda t: t.expand(size, *t.shape).clone(), self.policy.init_state(episodes))
        step = vmap(lambda params, s, o: functional_call(self.policy, params, (s, o)))
        total = np.zeros(size * episodes)
        done = np.zeros(size * episodes, dtype=bool)
        with torch.inference_mode():
            while not done.all():
                readout, state = step(population, state, torch.from_numpy(observation).view(size, episodes, 4))
                action = readout.argmax(-1).reshape(-1).numpy()
                observation, reward, terminated, truncated, _ = env.step(action)
                total += np.where(done, 0.0, reward)
                done |= terminated | truncated
        env.close()
        return torch.from_numpy(total).view(size, episodes)
