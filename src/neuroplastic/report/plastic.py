"""The figure of ``neuroplastic reproduce plastic-completion``: training curves of the plastic network
and of the same network with ``α = 0``, and one probe with its completion."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from neuroplastic.report.plots import save

__all__ = ["draw_completion"]

STYLE = {"plastic": ("tab:blue", "plastic (w + α Hebb)"), "frozen": ("tab:gray", "α = 0 (plain RNN)")}


def _image(vector: torch.Tensor) -> torch.Tensor:
    """A pattern as a near-square image (padded with zeros)."""
    side = int(len(vector) ** 0.5 + 0.999)
    padded = torch.zeros(side * side, device="cpu")
    padded[:len(vector)] = vector.float().cpu()
    return padded.reshape(side, side).numpy()


def draw_completion(path, curves: dict, examples: dict, batch: int = 1):
    """``curves[kind]``: the wrong-bit fraction of each update's batch; ``examples[kind]``: ``(probe,
    output, target, zeroed)`` of one test episode."""
    fig = plt.figure(figsize=(10, 3.6))
    grid = fig.add_gridspec(2, 5)
    ax = fig.add_subplot(grid[:, :2])
    for kind, curve in curves.items():
        color, label = STYLE.get(kind, ("k", kind))
        episodes = [batch * (i + 1) for i in range(len(curve))]
        ax.plot(episodes, curve, color=color, lw=0.8, label=label)
    ax.axhline(0.5, color="k", ls=":", lw=0.8, label="chance")
    ax.axhline(0.05, color="tab:red", ls="--", lw=0.8, label="goal 5%")
    ax.set_xlabel("training episode")
    ax.set_ylabel("wrong bits on the zeroed half")
    ax.set_ylim(0, 0.6)
    ax.legend(fontsize=7)
    ax.set_title("pattern completion (Miconi et al. 2018)", fontsize=9)
    probe, _, target, zeroed = examples["plastic"]
    panels = [("probe (half zeroed)", probe), ("pattern", target)]
    panels += [(f"{STYLE[kind][1]}\n{float(((out.sign() != target) & zeroed).sum())/float(zeroed.sum()):.0%} wrong",
                out) for kind, (_, out, _, _) in examples.items()]
    for column, (title, vector) in enumerate(panels[:4]):
        image_ax = fig.add_subplot(grid[column // 2, 2 + column % 2] if column < 2 else grid[column - 2, 4])
        image_ax.imshow(_image(vector), cmap="gray", vmin=-1, vmax=1)
        image_ax.set_title(title, fontsize=7)
        image_ax.axis("off")
    return save(fig, path)
