"""The figure of an evolution run: the best and mean fitness of each generation, and the held-out
score of the strategy's answer."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_fitness"]


def plot_fitness(summary: dict, path):
    history = summary["history"]
    generations = [h["generation"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(generations, [h["best"] for h in history], lw=1, label="best of the generation")
    ax.plot(generations, [h["mean"] for h in history], lw=1, label="mean of the generation")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (higher is better)")
    ax.set_title(f"{summary['task']} by {summary['strategy']} (population {summary['population']}): "
                 f"held-out score {summary['score']:.3f}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, path)
