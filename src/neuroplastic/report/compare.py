"""The figure of ``neuroplastic compare``: accuracy, training time, weight updates and traffic per rule,
and NeuroBench's workload of each trained network on the test split (activation sparsity; effective
accumulates and multiply-accumulates per sample against the dense count)."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_comparison"]


def plot_comparison(results: list[dict], metric: str, path, *, title: str = ""):
    names = [r["rule"] for r in results]
    panels = [(metric.replace("_", " "), metric, False), ("training time (s)", "wall_time_s", False),
              ("weight updates", "updates", True), ("synaptic operations", "synops", True),
              ("bits sent per sample", "bits_per_sample", True)]
    fig, axes = plt.subplots(1, len(panels) + 2, figsize=(3.2 * (len(panels) + 2), 3.2))
    for ax, (label, key, log) in zip(axes, panels):
        ax.bar(names, [max(r[key], 1e-12) for r in results], color="tab:blue")
        ax.set_title(label, fontsize=9)
        if log:
            ax.set_yscale("log")
    neurobench = [r.get("neurobench") or {} for r in results]
    _activation_sparsity(axes[-2], names, neurobench)
    _operations(axes[-1], names, neurobench)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def _activation_sparsity(ax, names, neurobench):
    """NeuroBench's activation sparsity; "n/a" where the network does not show it (no spiking layers)."""
    for x, metrics in enumerate(neurobench):
        value = metrics.get("activation_sparsity")
        if value is None:
            ax.text(x, 0.02, "n/a", ha="center", fontsize=7)
        else:
            ax.bar(x, value, color="tab:purple")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.set_title("activation sparsity (NeuroBench)", fontsize=9)


def _operations(ax, names, neurobench):
    """Effective ACs and MACs per sample stacked, the dense count as a hollow bar behind them (a log
    scale from a tenth of the smallest count drawn)."""
    drawn = []
    for x, metrics in enumerate(neurobench):
        dense = metrics.get("dense_operations_per_sample") or 0.0
        acs, macs = metrics.get("effective_acs_per_sample"), metrics.get("effective_macs_per_sample")
        stack = [] if acs is None or macs is None else [("ACs", acs, "tab:green"), ("MACs", macs, "tab:orange")]
        for label, value, style in [("dense", dense, None), *stack]:
            if value > 0:
                bottom = acs if label == "MACs" else 0.0
                ax.bar(x, value, bottom=bottom, fill=style is not None, color=style, edgecolor=style or "grey",
                       label=label if label not in ax.get_legend_handles_labels()[1] else None)
                drawn.append(value)
        if not stack:
            ax.text(x, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    if drawn:
        ax.set_yscale("log")
        ax.set_ylim(bottom=min(drawn) / 10)
        ax.legend(fontsize=7)
    ax.set_title("synaptic ops / sample (NeuroBench)", fontsize=9)
