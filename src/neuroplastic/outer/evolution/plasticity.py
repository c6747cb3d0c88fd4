"""``STDPDigits``: evolve the plasticity and homeostasis parameters of unsupervised digit learning.

The network is that of :mod:`neuroplastic.experiments.digits` (Diehl & Cook 2015, "Unsupervised
learning of digit recognition using spike-timing-dependent plasticity": pair STDP with amplitudes
``A+``, ``A−`` and time constant ``τ``, lateral inhibition of strength ``w_inh``, adaptive thresholds
``θ ← θ + θ+`` per spike, each neuron's input weights normalized to ``w_total``). Its hand-set values
were chosen for 400 neurons; evolving such parameters instead follows Carlson, Dutt, Nageswaran &
Krichmar (2014), "An efficient automated parameter tuning framework for spiking neural networks",
Front. Neurosci. 8:10, who evolved STDP and homeostasis parameters of CARLsim networks.

A genome holds ``log10`` of each searched parameter (:data:`SEARCHED`; all positive scales, so a
step of the search multiplies them), started at the hand-set values and held in :data:`BOUNDS`.
``fitness`` is the accuracy on a validation part of the *training* images (``validation``, held out
from learning) of a run of ``search_n_exc`` neurons learning from ``search_images`` images (None:
all the others) shown ``present_ms`` each, averaged over ``fitness_runs`` networks whose initial
weights and Poisson inputs are drawn from ``(seed, generation)``: the same networks for every
individual of a generation. The test images are never seen by the search. A run may be reduced in
images, not in presentation time: a search on 50-ms presentations found weak inhibition (``w_inh`` ≈
5) best there, and it lost at full size; parameters found on 600 of the ~1010 images learned faster
there and lost at full size too — their accuracy varies between networks by several points, so
one network per individual reads mostly that noise.
``evaluate`` runs the full-size experiment (every training image, the experiment's presentation)
with ``n_exc`` neurons and reports its test accuracy, averaged over ``evaluation_runs`` networks on
the same split (run ``r`` is seeded ``seed + r``; run 0 at ``n_exc = 400`` is ``reproduce unsupervised-digits`` with
these parameters); ``evaluate(problem.initial())`` is the hand-set comparison at the same neuron
count.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from neuroplastic.experiments.digits import Config, learn_and_classify, load, load_validation
from neuroplastic.outer.evolution.problems import generation_generator
from neuroplastic.validation import lookup, require_count, require_positive

__all__ = ["STDPDigits", "SEARCHED", "BOUNDS"]

# log10 ranges, around the hand-set values of Config (A+ = 0.01, A− = 1e-4, τ± = 20 ms, θ+ = 0.2 mV,
# w_inh = 17, w_total = 12)
BOUNDS = {
    "a_plus": (-3.0, -1.0),
    "a_minus": (-6.0, -2.0),
    "tau": (math.log10(5.0), math.log10(80.0)),  # ms, τ+ = τ− (Diehl & Cook's single STDP time constant)
    "theta_plus": (-2.0, math.log10(2.0)),
    "inhibition": (math.log10(2.0), 2.0),
    "weight_total": (math.log10(4.0), math.log10(40.0)),
}
SEARCHED = ("a_plus", "a_minus", "tau", "theta_plus", "inhibition", "weight_total")


def _hand_set(name: str) -> float:
    return Config().tau_plus if name == "tau" else getattr(Config(), name)


class STDPDigits:
    """Search ``log10`` of ``parameters`` (names of :data:`BOUNDS`) of unsupervised-digits; see the
    module docstring for the fitness (a reduced run, scored on validation images) and ``evaluate``
    (the full run with ``n_exc`` neurons, scored on the test images)."""

    name = "stdp-digits"
    chunk = 1  # a run learns sequentially; individuals do not share it

    def __init__(self, *, parameters: tuple[str, ...] = SEARCHED, n_exc: int = 100, search_n_exc: int = 100,
                 search_images: int | None = 600, present_ms: float = 100.0, validation: float = 0.25,
                 fitness_runs: int = 1, evaluation_runs: int = 1, seed: int = 0):
        if isinstance(parameters, str) or not parameters or len(set(parameters)) != len(parameters):
            raise ValueError(f"parameters must name distinct searched parameters, got {parameters!r}")
        for name in parameters:
            lookup("parameter", name, BOUNDS)
        if not 0.0 < validation < 1.0:
            raise ValueError(f"validation must be a fraction in (0, 1), got {validation!r}")
        self.parameters, self.validation = tuple(parameters), float(validation)
        self.n_exc, self.search_n_exc = require_count("n_exc", n_exc), require_count("search_n_exc", search_n_exc)
        self.search_images = None if search_images is None else require_count("search_images", search_images,
                                                                               minimum=10)
        self.fitness_runs = require_count("fitness_runs", fitness_runs)
        self.present_ms = require_positive("present_ms", present_ms)
        self.evaluation_runs = require_count("evaluation_runs", evaluation_runs)
        self.seed = require_count("seed", seed, minimum=0)
        self.bounds = {f"log10_{name}": BOUNDS[name] for name in self.parameters}

    def initial(self) -> dict[str, torch.Tensor]:
        """The hand-set values of ``Config``, as ``log10``."""
        return {f"log10_{name}": torch.tensor(math.log10(_hand_set(name)), dtype=torch.float64)
                for name in self.parameters}

    def config(self, params: dict[str, torch.Tensor], **changes) -> Config:
        """The experiment's ``Config`` with one individual's parameters, clipped to the bounds and rounded
        to 12 significant digits (so that :meth:`initial` gives the hand-set ``Config`` exactly)."""
        values = {}
        for name in self.parameters:
            low, high = BOUNDS[name]
            value = float(f"{10.0 ** min(max(float(params[f'log10_{name}']), low), high):.12g}")
            values.update({"tau_plus": value, "tau_minus": value} if name == "tau" else {name: value})
        return replace(Config(), **values, **changes)

    def fitness(self, population: dict[str, torch.Tensor], generation: int) -> torch.Tensor:
        require_count("generation", generation, minimum=0)
        learn, validation = load_validation(self.seed, self.validation, n_train=self.search_images)
        scores = []
        for index in range(len(next(iter(population.values())))):
            cfg = self.config({name: values[index] for name, values in population.items()},
                              n_exc=self.search_n_exc, present_ms=self.present_ms)
            generator = generation_generator(self.seed, generation)  # the generation's networks, in turn
            runs = [learn_and_classify(cfg, learn, validation, generator)["accuracy"] for _ in range(self.fitness_runs)]
            scores.append(sum(runs) / len(runs))
        return torch.tensor(scores, dtype=torch.float64)

    def runs(self, params: dict[str, torch.Tensor]) -> list[float]:
        """The test accuracy of each of ``evaluation_runs`` full-size networks (run ``r`` seeded ``seed + r``)."""
        cfg = self.config(params, n_exc=self.n_exc)
        return self._runs(cfg, *load(self.seed, cfg.n_train, cfg.n_test))

    def _runs(self, cfg, train, test) -> list[float]:
        return [learn_and_classify(cfg, train, test, torch.Generator().manual_seed(self.seed + run))["accuracy"]
                for run in range(self.evaluation_runs)]

    def evaluate(self, params: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.config(params, n_exc=self.n_exc)
        train, test = load(self.seed, cfg.n_train, cfg.n_test)
        accuracies = self._runs(cfg, train, test)
        mean = sum(accuracies) / len(accuracies)
        return {"score": mean, "test_accuracy": mean, "min_test_accuracy": min(accuracies),
                "n_exc": self.n_exc, "runs": self.evaluation_runs, "test_images": len(test[0]),
                **{name: getattr(cfg, "tau_plus" if name == "tau" else name) for name in self.parameters}}
