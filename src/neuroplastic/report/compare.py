"""The figure of ``neuroplastic compare``: accuracy, training time and weight updates per rule."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_comparison"]


def plot_comparison(results: list[dict], metric: str, path, *, title: str = ""):
    names = [r["rule"] for r in results]
    panels = [(metric.replace("_", " "), metric, False), ("training time (s)", "wall_time_s", False),
              ("weight updates", "updates", True), ("synaptic operations", "synops", True),
              ("bits sent per sample", "bits_per_sample", True)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2))
    for ax, (label, key, log) in zip(axes, panels):
        ax.bar(names, [max(r[key], 1e-12) for r in results], color="tab:blue")
        ax.set_title(label, fontsize=9)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)
