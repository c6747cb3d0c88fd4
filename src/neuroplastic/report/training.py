"""Figures of a training run: the learning curve and a raster of one test sample."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["plot_learning_curve", "plot_raster"]


def plot_learning_curve(history: list[dict], metric: str, path):
    epochs = [h["epoch"] for h in history]
    fig, left = plt.subplots(figsize=(6, 3.5))
    left.plot(epochs, [h["train_loss"] for h in history], "o-", ms=3, color="tab:blue", label="train loss")
    left.set_xlabel("epoch")
    left.set_ylabel("train loss", color="tab:blue")
    right = left.twinx()
    right.plot(epochs, [h[metric] for h in history], "s-", ms=3, color="tab:green", label=metric)
    right.set_ylabel(metric.replace("_", " "), color="tab:green")
    left.set_title("learning curve", fontsize=9)
    return save(fig, path)


def plot_raster(inputs, hidden: list, readout, dt: float, path, *, title=""):
    """``inputs`` ``(T, n_in)``, each hidden layer's spikes ``(T, n)``, ``readout`` ``(T, C)``."""
    rows = 2 + len(hidden)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 1.8 * rows), sharex=True)
    for ax, (name, spikes) in zip(axes, [("input", inputs)] + [(f"hidden {i + 1}", h) for i, h in enumerate(hidden)]):
        t, neuron = spikes.nonzero(as_tuple=True)
        ax.plot(t.numpy() * dt, neuron.numpy(), "|", ms=2, color="black")
        ax.set_ylabel(f"{name}\nneuron", fontsize=8)
    steps = readout.shape[0]
    lines = axes[-1].plot([i * dt for i in range(steps)], readout.numpy(), lw=0.8)
    if len(lines) <= 20:
        axes[-1].legend(lines, [str(i) for i in range(len(lines))], fontsize=6, ncol=10, loc="upper left")
    axes[-1].set_ylabel("readout", fontsize=8)
    axes[-1].set_xlabel("time (ms)")
    axes[0].set_title(title, fontsize=9)
    return save(fig, path)
