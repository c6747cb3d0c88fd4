"""Neuroevolution: search without gradients over a network's weights, its topology, or the
hyperparameters of its neurons and plasticity rules. Strategies (:mod:`.strategies`: OpenAI-ES,
CMA-ES; :mod:`.topology`: an EONS-style GA) propose populations, problems (:mod:`.problems`) score
them in batches, here or on Ray actors (:mod:`.population`); :func:`evolve` runs it all."""
from neuroplastic.outer.evolution.population import RayEvaluator, SerialEvaluator, make_evaluator
from neuroplastic.outer.evolution.problems import Classification, EvolutionProblem, Genome, generation_generator
from neuroplastic.outer.evolution.run import EVOLUTION_TASKS, STRATEGIES, evolve, make_problem, make_strategy
from neuroplastic.outer.evolution.strategies import CMAES, OpenAIES, centred_ranks, search_gradient
from neuroplastic.outer.evolution.topology import GeneticTopology, hidden_neurons

__all__ = ["evolve", "EVOLUTION_TASKS", "STRATEGIES", "make_problem", "make_strategy", "EvolutionProblem", "Genome",
           "Classification", "generation_generator", "OpenAIES", "CMAES", "GeneticTopology", "hidden_neurons",
           "centred_ranks", "search_gradient", "SerialEvaluator", "RayEvaluator", "make_evaluator"]
