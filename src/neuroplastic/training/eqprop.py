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

from neuroplastic.networks.energy import EnergyNetwork, Phase
from neuroplastic.rules import apply_updates
from neuroplastic.sim.loop import run
from neuroplastic.sim.probes import Trajectory
from neuroplastic.training.objectives import Classification
from neuroplastic.validation import require_positive

__all__ = ["EqPropMethod", "EqPropLearner", "eqprop_gradients", "step_updates", "trajectory"]


def eqprop_gradients(network: EnergyNetwork, x, target, *, beta: float, symmetric: bool = False, free=None):
    """The equilibrium-propagation estimate of the gradient of ``C(s⁰) = ½ ‖s⁰_L − target‖²`` (a batch
    mean) with respect to ``network``'s parameters, and the free states: ``(grads, free)``."""
    beta = require_positive("eqprop beta", beta)
    free = network.relax(x) if free is None else free
    high = network.relax(x, target=target, beta=beta, state=free)
    low = network.relax(x, target=target, beta=-beta, state=free) if symmetric else free
    params = tuple(network.parameters())
    with torch.enable_grad():
        upper, lower = (torch.autograd.grad(network.energy(tuple(s.detach() for s in states), x), params)
                        for states in (high, low))
    scale = 2 * beta if symmetric else beta
    return tuple((a - b) / scale for a, b in zip(upper, lower)), free


def trajectory(network: EnergyNetwork, x, *, state, steps: int, target=None, beta: float = 0.0) -> list:
    """The states after each of ``steps`` relaxation steps from ``state`` (no graph, no settling check):
    the discrete-time dynamics of Ernoult et al. 2019."""
    result = run(Phase(network, target, float(beta)), x.expand(steps, *x.shape), network.step_size, state=state,
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
    params = tuple(network.parameters())
    with torch.enable_grad():
        energies = [torch.autograd.grad(network.energy(s, x), params) for s in states]
    return [tuple((b - a) / beta for a, b in zip(before, after)) for before, after in zip(energies, energies[1:])]


@dataclass(frozen=True)
class EqPropMethod:
    """``beta``: the nudging strength; ``symmetric``: nudge with ``+β`` and ``−β``."""

    beta: float = 0.5
    symmetric: bool = False
    name: str = "eqprop"

    def __post_init__(self):
        require_positive("eqprop beta", self.beta)
        if not isinstance(self.symmetric, bool):
            raise ValueError(f"eqprop symmetric must be true or false, got {self.symmetric!r}")

    def build_network(self, task, recipe, *, seed: int = 0) -> EnergyNetwork:
        """The network ``fit`` trains by default: the recipe's hidden sizes between the task's input and
        one state per class."""
        sizes = (task.n_inputs, *recipe.hidden, task.n_outputs)
        return EnergyNetwork(sizes, generator=torch.Generator().manual_seed(seed)).to(task.dtype)

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
        grads, free = eqprop_gradients(self.network, x, target, beta=self.method.beta,
                                       symmetric=self.method.symmetric)
        self.updates_applied += apply_updates(optimizer, self.params, grads)
        net, phases = self.network, 2 if self.method.symmetric else 1  # each relaxation ends with its check step
        self.synops += net.pass_operations(x.shape[0]) + net.synaptic_operations(x.shape[0],
                                                                                 phases * (net.nudged_steps + 1))
        return float(0.5 * ((free[-1] - target) ** 2).sum() / x.shape[0])
