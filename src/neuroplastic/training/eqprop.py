"""Equilibrium propagation (Scellier & Bengio 2017; the symmetric estimate of Laborieux et al. 2021,
"Scaling equilibrium propagation to deep ConvNets by drastically reducing its gradient estimator
bias", Frontiers in Neuroscience 15:633674) as a method of the trainer protocol.

Two relaxations of the same :class:`~neuroplastic.networks.EnergyNetwork` — free (``β = 0``) to ``s⁰``,
then nudged towards the target from there to ``s^β`` — give every parameter's update from the energy
alone, local to the synapse (for ``W_l``: the difference of the pre- and postsynaptic products
``ρ(s_l) ρ(s_{l−1})ᵀ`` between the phases):

    one-sided:  ∇θ L ≈ (∂E/∂θ(s^β) − ∂E/∂θ(s⁰)) / β                  (error O(β))
    symmetric:  ∇θ L ≈ (∂E/∂θ(s^{+β}) − ∂E/∂θ(s^{−β})) / (2β)         (error O(β²))

where ``L = C(s⁰)`` is the cost at the free fixed point (Scellier & Bengio's theorem: the limit
``β → 0`` is exact). ``∂E/∂θ`` comes from autograd of the network's one energy at the settled states.
The target is the one-hot class; the output layer's state is the prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from neuroplastic.networks.energy import EnergyNetwork, cost
from neuroplastic.networks.spiking_energy import SpikingEnergyNetwork
from neuroplastic.rules import apply_updates
from neuroplastic.sim.loop import detached, run
from neuroplastic.sim.probes import Trajectory
from neuroplastic.training.objectives import Classification
from neuroplastic.validation import require_positive

__all__ = ["EqPropMethod", "EqPropLearner", "eqprop_gradients", "nudged_phases", "contrast", "energy_gradients",
           "step_updates", "trajectory"]


def eqprop_gradients(network: EnergyNetwork, x, target, *, beta: float, symmetric: bool = False, free=None):
    """The equilibrium-propagation estimate of the gradient of ``C(s⁰) = ½ ‖s⁰_L − target‖²`` (a batch
    mean) with respect to ``network``'s parameters, and the free states: ``(grads, free)``."""
    free = network.relax(x) if free is None else free
    high, low = nudged_phases(network, x, target, beta=beta, symmetric=symmetric, free=free)
    return contrast(network, x, high, low, 2 * beta if symmetric else beta), free


def nudged_phases(network: EnergyNetwork, x, target, *, beta: float, symmetric: bool, free) -> tuple:
    """The states nudged with ``+β`` from ``free``, and with ``−β`` (symmetric) or the free states."""
    beta = require_positive("eqprop beta", beta)
    high = network.relax(x, target=target, beta=beta, state=free)
    return high, network.relax(x, target=target, beta=-beta, state=free) if symmetric else free


def energy_gradients(network: EnergyNetwork, x, states) -> tuple:
    """``∂E/∂θ`` at ``states`` for every parameter (autograd of the one energy)."""
    with torch.enable_grad():
        return torch.autograd.grad(network.energy(detached(states), x), tuple(network.parameters()))


def contrast(network: EnergyNetwork, x, high, low, scale: float) -> tuple:
    """``(∂E/∂θ(high) − ∂E/∂θ(low)) / scale`` for every parameter."""
    upper, lower = energy_gradients(network, x, high), energy_gradients(network, x, low)
    return tuple((a - b) / scale for a, b in zip(upper, lower))


def trajectory(network: EnergyNetwork, x, *, state, steps: int, target=None, beta: float = 0.0) -> list:
    """The states after each of ``steps`` relaxation steps from ``state`` (no graph, no settling check):
    the discrete-time dynamics of Ernoult et al. 2019."""
    result = run(network.phase(target, float(beta)), x.expand(steps, *x.shape), network.step_size, state=state,
                 keep_spikes=False, probes=[Trajectory()])
    return result["trajectory"]


def step_updates(network: EnergyNetwork, x, target, *, beta: float, free, steps: int) -> list:
    """Ernoult et al. 2019's ("Updates of equilibrium prop match gradients of backprop through time in
    an RNN with static input", NeurIPS) per-step updates of the nudged phase from the free state
    ``free``: for ``t = 0 … steps − 1`` the gradient estimate ``(∂E/∂θ(s^β_{t+1}) − ∂E/∂θ(s^β_t)) / β``
    (one tuple over the parameters each). Their sum is :func:`eqprop_gradients`' one-sided estimate; as
    ``β → 0`` the ``t``-th equals the gradient of the cost with respect to the parameters of the
    ``t+1``-th last step of the free phase (backpropagation through time), where it has converged."""
    beta = require_positive("eqprop beta", beta)
    states = [free, *trajectory(network, x, state=free, steps=steps, target=target, beta=beta)]
    energies = [energy_gradients(network, x, s) for s in states]
    return [tuple((b - a) / beta for a, b in zip(before, after)) for before, after in zip(energies, energies[1:])]


@dataclass(frozen=True)
class EqPropMethod:
    """``beta``: the nudging strength; ``symmetric``: nudge with ``+β`` and ``−β``; ``spiking``: train a
    :class:`~neuroplastic.networks.SpikingEnergyNetwork` (layers that talk in spikes)."""

    beta: float = 0.5
    symmetric: bool = False
    spiking: bool = False
    name: str = "eqprop"

    def __post_init__(self):
        require_positive("eqprop beta", self.beta)
        for flag in ("symmetric", "spiking"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"eqprop {flag} must be true or false, got {getattr(self, flag)!r}")

    def build_network(self, task, recipe, *, seed: int = 0) -> EnergyNetwork:
        """The network ``fit`` trains by default: the recipe's hidden sizes between the task's input and
        one state per class."""
        sizes = (task.n_inputs, *recipe.hidden, task.n_outputs)
        kind = SpikingEnergyNetwork if self.spiking else EnergyNetwork
        return kind(sizes, generator=torch.Generator().manual_seed(seed)).to(task.dtype)

    def learner(self, problem) -> "EqPropLearner":
        return EqPropLearner(problem, self)


class EqPropLearner:
    """A learner of the protocol (:mod:`~neuroplastic.training.problem`): the clamped input is a
    sample's rate (its mean over time), the target its one-hot class."""

    def __init__(self, problem, method: EqPropMethod):
        if not isinstance(problem.network, EnergyNetwork):
            raise ValueError(f"eqprop trains an EnergyNetwork (fit builds one for rule 'eqprop'), got "
                             f"{type(problem.network).__name__}")
        if not isinstance(problem.objective, Classification):
            raise ValueError("eqprop learns classification tasks here (a one-hot target for the output layer)")
        self.network, self.method = problem.network, method
        self.params = tuple(self.network.parameters())
        self.updates_applied = 0
        self.synops = 0

    def train_batch(self, inputs, targets, optimizer) -> float:
        x = inputs.mean(0)
        target = torch.nn.functional.one_hot(targets, self.network.sizes[-1]).to(x.dtype)
        net, method = self.network, self.method
        free = net.relax(x)
        high, low = nudged_phases(net, x, target, beta=method.beta, symmetric=method.symmetric, free=free)
        grads = contrast(net, x, high, low, 2 * method.beta if method.symmetric else method.beta)
        self.updates_applied += apply_updates(optimizer, self.params, grads)
        self.synops += net.relaxation_operations(None, free, net.free_steps) + sum(
            net.relaxation_operations(free, nudged, net.nudged_steps) for nudged in (high, low)[:1 + method.symmetric])
        return float(cost(net.potentials(free)[-1], target) / x.shape[0])
