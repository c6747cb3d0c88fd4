"""The figure of an architecture search: the cell it found, nodes left to right, forward edges as
arrows above the line, backward edges (the previous step's activity) dashed below it, each labelled
with its operation (``none`` edges left out); with DARTS, each edge's winning ``softmax(α)``."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_cell"]

COLOURS = {"skip": "tab:gray", "lif": "tab:blue", "lif-recurrent": "tab:purple", "alif": "tab:green",
           "delayed": "tab:orange"}


def plot_cell(cell_json: dict, path, *, title: str = "", mixing: list | None = None):
    """``cell_json`` as :meth:`~neuroplastic.outer.search.Cell.to_json` writes it; ``mixing``: each
    edge's ``{operation: weight}`` (DARTS) or ``None``."""
    nodes = cell_json["space"]["nodes"]
    fig, ax = plt.subplots(figsize=(1.6 * (nodes + 3), 1.2 * (nodes + 2)))
    names = ["input", "stem"] + [f"node {j}" for j in range(1, nodes + 1)] + ["readout"]
    for x, name in enumerate(names):
        ax.add_patch(plt.Circle((x, 0), 0.22, color="white", ec="black", zorder=3))
        ax.text(x, 0, name, ha="center", va="center", fontsize=7, zorder=4)
    ax.annotate("", (0.78, 0), (0.22, 0), arrowprops=dict(arrowstyle="->", lw=1.0))
    for j in range(1, nodes + 1):
        ax.annotate("", (nodes + 1.8, 0), (j + 1.2, 0),
                    arrowprops=dict(arrowstyle="->", lw=0.5, color="lightgray", connectionstyle="arc3,rad=0.15"))
    for k, edge in enumerate(cell_json["edges"]):
        if edge["op"] == "none":
            continue
        source, target = edge["from"] + 1, edge["to"] + 1
        span = abs(target - source)
        bend = -(0.6 + 0.15 * span)  # an arc to the left of its direction: above forwards, below backwards
        colour = COLOURS.get(edge["op"], "black")
        ax.annotate("", (target, 0), (source, 0), arrowprops=dict(
            arrowstyle="->", lw=1.4, color=colour, ls="--" if edge["backward"] else "-",
            connectionstyle=f"arc3,rad={bend}", shrinkA=9, shrinkB=9))
        label = edge["op"] + (f" {mixing[k][edge['op']]:.2f}" if mixing else "")
        height = -bend * span / 2 * (1 if source < target else -1)  # the arc's apex
        ax.text((source + target) / 2, height, label, ha="center", va="center", fontsize=7, color=colour,
                bbox=dict(fc="white", ec="none", pad=0.5))
    ax.set_xlim(-0.5, nodes + 2.5)
    ax.set_ylim(-1.5 - 0.25 * nodes, 1.5 + 0.25 * nodes)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or "found cell (dashed: backward edges, the previous step's activity)", fontsize=9)
    return save(fig, path)
