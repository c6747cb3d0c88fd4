"""The figure of ``neuroplastic reproduce pat-mismatch``: accuracy on the chip against its mismatch."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["draw_accuracy_against_mismatch"]

STYLE = {"transfer": ("tab:gray", "o"), "aware": ("tab:green", "^"), "pat": ("tab:blue", "s"),
         "pat-calibrated": ("tab:orange", "D")}


def draw_accuracy_against_mismatch(path, levels, accuracies: dict, ideal: float):
    """``accuracies[variant][level]``: one test accuracy per chip; drawn as the mean and the chips' range."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    percent = [100 * level for level in levels]
    for variant, values in accuracies.items():
        color, marker = STYLE.get(variant, ("k", "."))
        per_level = [values[level] for level in levels]
        mean = [sum(v) / len(v) for v in per_level]
        ax.plot(percent, mean, marker=marker, color=color, label=variant)
        ax.fill_between(percent, [min(v) for v in per_level], [max(v) for v in per_level], color=color, alpha=0.15)
    ax.axhline(ideal, color="k", ls=":", lw=0.8, label="ideal (no mismatch)")
    ax.set_xlabel("device mismatch σ (%)")
    ax.set_ylabel("test accuracy on the chip")
    ax.set_title("digits on simulated DPI chips: mean and range over chips", fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)
