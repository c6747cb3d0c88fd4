"""The figure of a meta-learning run: validation accuracy over the iterations, and the meta-test
accuracy against the network trained from scratch on the same episodes."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_meta_curve"]


def plot_meta_curve(summary: dict, path):
    history = summary["history"]
    iterations = [h["iteration"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(iterations, [h["train_accuracy"] for h in history], "o-", ms=3, label="meta-train episodes")
    ax.plot(iterations, [h["validation_accuracy"] for h in history], "s-", ms=3, label="meta-validation episodes")
    for key, colour, label in (("test_accuracy", "tab:green", "meta-test, meta-learned"),
                               ("scratch_accuracy", "tab:red", "meta-test, from scratch")):
        ax.axhline(summary[key], color=colour, ls="--", lw=1, label=f"{label}: {summary[key]:.3f}")
        ax.axhspan(summary[key] - summary[f"{key}_ci95"], summary[key] + summary[f"{key}_ci95"], color=colour,
                   alpha=0.15)
    ax.axhline(1.0 / summary["ways"], color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel("query accuracy after adaptation")
    ax.set_ylim(0, 1)
    order = "first-order" if summary["first_order"] else "second-order"
    ax.set_title(f"{summary['dataset']}: {summary['ways']}-way {summary['shots']}-shot, {summary['inner']} inside "
                 f"({summary['inner_steps']} steps, {order})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return save(fig, path)
