"""Inner loops of meta-learning: how a network adapts to one task's support set, written functionally
so that the outer loop can differentiate through the adaptation.

An inner loop is bound to a :class:`~neuroplastic.training.problem.Problem` (the network and its
objective) and then maps ``(params, rates, inputs, targets)`` to adapted parameters, ``params`` and
``rates`` dicts by parameter name (as ``named_parameters`` gives them). Each of its ``steps`` updates

    θ ← θ − α ⊙ g(θ)

with ``α`` the per-parameter rates (one number each for MAML, one per weight for Meta-SGD) and ``g``:

- :class:`GradientSteps` (``bptt``): the exact gradient of the support loss, back-propagated through
  time with surrogate gradients (MAML: Finn, Abbeel & Levine 2017, "Model-agnostic meta-learning for
  fast adaptation of deep networks", ICML; for SNNs: Stewart & Neftci 2022, "Meta-learning spiking
  neural networks with surrogate gradient descent", Neuromorph. Comput. Eng. 2:044002);
- :class:`OnlineSteps` (``eprop``, ``decolle``): the estimate of one of the library's online rules
  over the support sequence (:meth:`~neuroplastic.training.online.OnlineLearner.estimate`, the very
  code that trains a network on its own), so the outer loop learns the start and the rates of the
  rule that would run on a chip (bi-level bootstrapping of online learning). One update is the rule's
  estimate of a whole support sequence applied once: its online mode with ``apply_every=None``,
  which equals it.

Second order: the outer gradient flows through ``g(θ)`` (its Hessian-vector products). First order
(``first_order=True``, FO-MAML) treats each ``g`` as a constant, so only ``∂L_query/∂θ'`` remains.
Through spikes the second order needs a surrogate whose derivative itself has a derivative: a
:class:`~neuroplastic.spikes.Boxcar`'s is zero wherever it is defined, so second-order MAML refuses
it (:func:`check_second_order`); a ``Triangle``'s is piecewise constant, not zero, and is accepted.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.func import functional_call, grad

from neuroplastic.rules.signals import Quantized, Reinforce
from neuroplastic.spikes import Boxcar, Rescaled
from neuroplastic.training.methods import decolle, eprop
from neuroplastic.training.online import OnlineLearner
from neuroplastic.training.problem import Problem
from neuroplastic.validation import lookup, require_count

__all__ = ["GradientSteps", "OnlineSteps", "OnlineAdapter", "INNER_LOOPS", "make_inner", "descend", "check_second_order"]


def descend(params: dict, rates: dict, grads: dict, first_order: bool) -> dict:
    """One step ``θ − α ⊙ g`` by name (a parameter without a gradient in ``grads`` stays where it is);
    ``g`` held constant for the outer gradient if ``first_order``."""
    return {name: value if name not in grads else
            value - rates[name] * (grads[name].detach() if first_order else grads[name])
            for name, value in params.items()}


def check_second_order(network: nn.Module) -> None:
    """Refuses a network whose spikes have a surrogate without curvature (second-order MAML through it
    would silently drop every spike path of the meta-gradient)."""
    for module in network.modules():
        surrogate = getattr(getattr(module, "neuron", None), "surrogate", None)
        while isinstance(surrogate, Rescaled):
            surrogate = surrogate.inner
        if isinstance(surrogate, Boxcar):
            raise ValueError("second-order meta-learning needs a surrogate with a second derivative; a Boxcar's "
                             "is zero: use first_order=True (--first-order) or another surrogate")


@dataclass(frozen=True)
class GradientSteps:
    """``steps`` steps of gradient descent on the support loss (BPTT with surrogate gradients)."""

    steps: int = 5
    first_order: bool = False

    def __post_init__(self):
        require_count("inner steps", self.steps)

    def bind(self, problem: Problem):
        """``adapt(params, rates, inputs, targets) -> params`` for ``problem``'s network and loss."""
        if not self.first_order:
            check_second_order(problem.network)
        return self.adapter(problem.loss_fn)

    def adapter(self, loss_fn):
        """``adapt`` for any ``loss_fn(params, inputs, targets)`` (a closed form in the tests)."""
        gradient = grad(loss_fn)

        def adapt(params, rates, inputs, targets):
            for _ in range(self.steps):
                params = descend(params, rates, gradient(params, inputs, targets), self.first_order)
            return params
        return adapt


class _Estimate(nn.Module):
    """The online learner's estimate as a module call, so ``functional_call`` can swap its network's
    parameters for the ones being adapted."""

    def __init__(self, learner: OnlineLearner):
        super().__init__()
        self.network = learner.network
        self.learner = [learner]  # not a submodule: its network is registered once, above

    def forward(self, inputs, targets):
        return self.learner[0].estimate(inputs, targets, count=False)[0]


@dataclass(frozen=True)
class OnlineSteps:
    """``steps`` updates of an online rule (``method``: an :class:`OnlineMethod` in sequence mode whose
    learning signal keeps no state of its own: feedback of any fixed kind, or local readouts)."""

    method: object
    steps: int = 5
    first_order: bool = False

    def __post_init__(self):
        require_count("inner steps", self.steps)
        name = getattr(self.method, "name", type(self.method).__name__)
        if getattr(self.method, "mode", None) != "sequence":
            raise ValueError(f"an online rule inside a meta loop runs in sequence mode (one update per support "
                             f"sequence); {name} has mode {getattr(self.method, 'mode', None)!r}")
        signal = self.method.signal
        if isinstance(signal, (Reinforce, Quantized)) or getattr(signal, "adaptive", False):
            raise ValueError(f"{name}'s learning signal ({type(signal).__name__}) keeps state or draws at random "
                             "from update to update; inside a meta loop use fixed feedback or local readouts")

    def bind(self, problem: Problem) -> "OnlineAdapter":
        if not self.first_order:
            check_second_order(problem.network)
        return OnlineAdapter(self.method.learner(problem), self.steps, self.first_order)


class OnlineAdapter:
    """``adapt(params, rates, inputs, targets) -> params`` by ``steps`` updates of ``learner``'s rule
    (parameters the rule does not learn stay where they are)."""

    def __init__(self, learner: OnlineLearner, steps: int, first_order: bool):
        self.learner, self.steps, self.first_order = learner, steps, first_order
        self.estimate = _Estimate(learner)
        named = list(learner.network.named_parameters())
        self.names = [name for name, _ in named]
        by_id = {id(p): name for name, p in named}
        self.learned = [by_id[id(p)] for p in learner.params]  # the rule's parameters, in its order

    def __call__(self, params, rates, inputs, targets):
        for _ in range(self.steps):
            estimates = functional_call(self.estimate, {f"network.{n}": params[n] for n in self.names},
                                        (inputs, targets))
            params = descend(params, rates, dict(zip(self.learned, estimates)), self.first_order)
        return params


INNER_LOOPS = {
    "bptt": lambda steps, first_order: GradientSteps(steps, first_order),
    "eprop": lambda steps, first_order: OnlineSteps(eprop(), steps, first_order),
    "decolle": lambda steps, first_order: OnlineSteps(decolle(mode="sequence", apply_every=None), steps, first_order),
}


def make_inner(name: str, steps: int = 5, first_order: bool = False):
    """The inner loop called ``name`` (``bptt``, ``eprop``: random feedback, ``decolle``: fixed local readouts)."""
    return lookup("inner rule", name, INNER_LOOPS)(steps, first_order)
