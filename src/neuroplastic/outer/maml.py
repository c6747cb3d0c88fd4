"""The outer loop of meta-learning: a network's start (and the inner rates) learned from episodes.

For each episode ``i`` of a meta-batch the inner loop (:mod:`.inner`) adapts the network's parameters
``θ`` on the support set, and the outer loop minimizes the query loss of the adapted ones:

    θ'_i = adapt(θ, α; support_i)         min_{θ, α}  (1/E) Σ_i L(θ'_i; query_i)

MAML (Finn, Abbeel & Levine 2017) learns ``θ`` with one fixed rate ``α`` for every parameter;
Meta-SGD (Li, Zhou, Chen & Li 2017, "Meta-SGD: learning to learn quickly for few-shot learning")
learns ``α`` too, one per weight (``learn_rates=True``). With an online rule inside, this is the bi-level
bootstrapping of online learning: the start and rates of e-prop or DECOLLE, learned offline.

The network runs through ``torch.func.functional_call`` and the episodes of a meta-batch through
one ``torch.func.vmap``: one batched forward pass for all of them, not a loop over episodes; the
outer gradient is ordinary autograd through it all (second order unless the inner loop is first
order). Classification only: the loss and the decision are the objective's (the readout's
cross-entropy over its window, the arg-max of the readout averaged over it).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, vmap

from neuroplastic.training.objectives import Classification
from neuroplastic.training.problem import Problem
from neuroplastic.validation import require_count, require_positive

__all__ = ["MetaLearner"]


class MetaLearner(nn.Module):
    """``network``'s start and the inner rates, meta-learned through ``inner`` (a :mod:`.inner` loop).

    ``inner_lr``: the initial rate ``α`` of every parameter; ``learn_rates``: learn one per weight
    (Meta-SGD) instead of keeping ``α`` fixed; ``objective``: a classification objective (default:
    cross-entropy over all steps); ``generator``: what an online rule inside draws its fixed feedback from.
    Build it on its final device and dtype: an online rule's fixed feedback is drawn here, like the network's.
    """

    def __init__(self, network: nn.Module, inner, *, inner_lr: float = 0.5, learn_rates: bool = False,
                 objective: Classification | None = None, generator: torch.Generator | None = None):
        super().__init__()
        require_positive("inner_lr", inner_lr)
        if not isinstance(learn_rates, bool):
            raise ValueError(f"learn_rates must be true or false, got {learn_rates!r}")
        objective = Classification(None) if objective is None else objective
        if not isinstance(objective, Classification):
            raise ValueError(f"meta-learning scores episodes by classification; got a {type(objective).__name__}")
        self.network = network
        self.inner = inner
        self.problem = Problem(network, objective, generator=generator)
        self.names = [name for name, _ in network.named_parameters()]
        self.learn_rates, self.inner_lr = learn_rates, float(inner_lr)
        self.rates = nn.ParameterList([nn.Parameter(torch.full_like(p.detach(), inner_lr))
                                       for _, p in network.named_parameters()] if learn_rates else [])
        self.adapt = inner.bind(self.problem)

    def start(self) -> tuple[dict, dict]:
        """The network's parameters and the inner rates, by name (what the episodes start from)."""
        params = dict(self.network.named_parameters())
        rates = dict(zip(self.names, self.rates)) if self.learn_rates else dict.fromkeys(self.names, self.inner_lr)
        return params, rates

    def _episode(self, params, rates, support_inputs, support_targets, query_inputs, query_targets):
        adapted = self.adapt(params, rates, support_inputs, support_targets)
        output = functional_call(self.network, adapted, (query_inputs,))
        decided = self.problem.objective.decide(output.readout)
        return self.problem.loss(output, query_targets), (decided == query_targets).to(output.readout.dtype).mean()

    def forward(self, episodes) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean query loss of a batch of episodes after adaptation (a scalar to back-propagate)
        and each episode's query accuracy ``(E,)``, detached."""
        params, rates = self.start()
        losses, accuracies = vmap(self._episode, in_dims=(None, None, 0, 0, 0, 0))(params, rates, *episodes)
        return losses.mean(), accuracies.detach()

    def evaluate(self, episodes, chunk: int = 50) -> torch.Tensor:
        """Each episode's query accuracy after adaptation ``(E,)`` (``chunk`` episodes at a time)."""
        require_count("chunk", chunk)
        with torch.no_grad():  # the inner loop's own gradients still flow (torch.func.grad)
            return torch.cat([self(tuple(part[i:i + chunk] for part in episodes))[1]
                              for i in range(0, episodes[0].shape[0], chunk)])

