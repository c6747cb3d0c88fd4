"""Search strategies without gradients: OpenAI-ES and CMA-ES, over a flat vector of ``D`` numbers.

Every strategy proposes a population (:meth:`ask`, a ``(P, D)`` float64 tensor), is told its fitness
(:meth:`tell`, ``(P,)``, higher is better), and names its current answer (:meth:`centre`). Its state
is tensors only (:meth:`state_dict`), so a checkpoint of a run holds no pickled objects.

- :class:`OpenAIES` (Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution strategies as a scalable
  alternative to reinforcement learning"): ``θ_i = θ + σ ε_i`` with antithetic pairs ``±ε``, fitness
  replaced by centred ranks in ``[−½, ½]``, and the search gradient
  ``g = 1/(P σ) Σ_i F_i ε_i`` (:func:`search_gradient`) — in expectation the gradient of the Gaussian-
  smoothed objective ``E_ε F(θ + σ ε)`` — followed by Adam (Kingma & Ba 2015) with weight decay.
- :class:`CMAES` (Hansen & Ostermeier 2001; Hansen 2016, "The CMA evolution strategy: a tutorial"):
  the ``cmaes`` package's ``CMA`` (Nomura & Shibata 2024), not a hand-written one. Its state is the
  fitness it was told: resuming replays them through a fresh ``CMA`` with the same seed, which draws
  the same populations (at the cost of one eigendecomposition of the ``D × D`` covariance per past
  generation: seconds per generation where ``D`` is in the thousands).
"""
from __future__ import annotations

import numpy as np
import torch

from neuroplastic.validation import require_count, require_positive

__all__ = ["OpenAIES", "CMAES", "search_gradient", "centred_ranks"]


def centred_ranks(fitness: torch.Tensor) -> torch.Tensor:
    """Fitness replaced by its rank, scaled to ``[−½, ½]``: the shaping of Salimans et al. 2017 that
    makes the update blind to the fitness's scale and outliers. Tied values share their mean rank, so
    a population that scores all alike (CartPole's 500s) moves nothing."""
    fitness = fitness.double()
    below = (fitness[None, :] < fitness[:, None]).sum(1)
    tied = (fitness[None, :] == fitness[:, None]).sum(1)
    return (below + (tied - 1) / 2) / (len(fitness) - 1) - 0.5


def search_gradient(noise: torch.Tensor, fitness: torch.Tensor, sigma: float) -> torch.Tensor:
    """``1/(P σ) Σ_i F_i ε_i`` for noise ``ε`` ``(P, D)`` and fitness ``F`` ``(P,)``: with the raw
    fitness, an unbiased estimate of ``∇_θ E_ε F(θ + σ ε)``."""
    return noise.T.double() @ fitness.double() / (len(fitness) * sigma)


class OpenAIES:
    """OpenAI-ES around ``centre`` (``(D,)``): ``population`` (even: antithetic pairs) candidates per
    generation at spread ``sigma``, Adam steps of ``lr`` on the centre with decoupled ``weight_decay``.
    ``bounds`` (``(D, 2)`` or None) clip candidates and centre."""

    name = "openai-es"

    def __init__(self, centre: torch.Tensor, *, population: int, sigma: float = 0.05, lr: float = 0.03,
                 weight_decay: float = 0.0, bounds: torch.Tensor | None = None, seed: int = 0):
        require_count("population", population, minimum=2)
        if population % 2:
            raise ValueError(f"OpenAI-ES samples antithetic pairs: population must be even, got {population}")
        self.sigma, self.lr = require_positive("sigma", sigma), require_positive("lr", lr)
        self.weight_decay, self.population, self.bounds = weight_decay, population, bounds
        self.theta = centre.detach().double().clone()
        self.moments = torch.zeros(2, len(self.theta), dtype=torch.float64)
        self.steps = 0
        self.generator = torch.Generator().manual_seed(seed)
        self._noise = None

    def ask(self) -> torch.Tensor:
        half = torch.randn(self.population // 2, len(self.theta), generator=self.generator, dtype=torch.float64)
        self._noise = torch.cat([half, -half])
        return _clip(self.theta + self.sigma * self._noise, self.bounds)

    def tell(self, candidates: torch.Tensor, fitness: torch.Tensor) -> None:
        if self._noise is None or len(fitness) != self.population:
            raise ValueError(f"tell expects the fitness of the {self.population} candidates of the last ask")
        noise = self._noise if self.bounds is None else (candidates - self.theta) / self.sigma  # as evaluated
        ascent = search_gradient(noise, centred_ranks(fitness), self.sigma)
        self.steps += 1
        beta1, beta2 = 0.9, 0.999
        self.moments[0].mul_(beta1).add_(ascent, alpha=1 - beta1)
        self.moments[1].mul_(beta2).addcmul_(ascent, ascent, value=1 - beta2)
        m_hat = self.moments[0] / (1 - beta1 ** self.steps)
        v_hat = self.moments[1] / (1 - beta2 ** self.steps)
        self.theta = _clip(self.theta * (1 - self.lr * self.weight_decay) + self.lr * m_hat / (v_hat.sqrt() + 1e-8),
                           self.bounds)
        self._noise = None

    def centre(self) -> torch.Tensor:
        return self.theta.clone()

    def state_dict(self) -> dict:
        return {"theta": self.theta, "moments": self.moments, "steps": self.steps,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.theta, self.moments, self.steps = state["theta"].clone(), state["moments"].clone(), state["steps"]
        self.generator.set_state(state["generator"])


class CMAES:
    """CMA-ES of the ``cmaes`` package from mean ``centre`` with step size ``sigma``; ``bounds``
    ``(D, 2)`` or None; ``population`` (None: the package's default ``4 + ⌊3 ln D⌋``)."""

    name = "cmaes"

    def __init__(self, centre: torch.Tensor, *, population: int | None = None, sigma: float = 0.3,
                 bounds: torch.Tensor | None = None, seed: int = 0):
        try:
            from cmaes import CMA
        except ImportError:
            raise ImportError("CMA-ES needs the cmaes package: pip install 'neuroplastic[evolve]'") from None
        if population is not None:  # fewer leave CMA's rank-μ update without weights (a division by zero)
            require_count("population", population, minimum=4)
        self._options = dict(mean=centre.detach().double().numpy().copy(), sigma=require_positive("sigma", sigma),
                             seed=seed,
                             population_size=population,
                             bounds=None if bounds is None else bounds.double().numpy().copy())
        self._cma = CMA(**self._options)
        self.population = self._cma.population_size
        self.told: list[torch.Tensor] = []

    def ask(self) -> torch.Tensor:
        return torch.from_numpy(np.stack([self._cma.ask() for _ in range(self.population)]))

    def tell(self, candidates: torch.Tensor, fitness: torch.Tensor) -> None:
        if len(fitness) != self.population:
            raise ValueError(f"tell expects the fitness of the {self.population} candidates of the last ask")
        self._cma.tell([(x.numpy(), -float(f)) for x, f in zip(candidates, fitness)])  # cmaes minimizes
        self.told.append(fitness.detach().double().clone())

    def centre(self) -> torch.Tensor:
        return torch.from_numpy(self._cma.mean.copy())

    def state_dict(self) -> dict:
        return {"told": list(self.told)}

    def load_state_dict(self, state: dict) -> None:
        from cmaes import CMA

        self._cma, self.told = CMA(**self._options), []
        for fitness in state["told"]:
            self.tell(self.ask(), fitness)


def _clip(values: torch.Tensor, bounds: torch.Tensor | None) -> torch.Tensor:
    return values if bounds is None else values.clamp(bounds[:, 0], bounds[:, 1])

