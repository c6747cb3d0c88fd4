"""Figures of the plasticity experiments (``neuroplastic reproduce``)."""
from __future__ import annotations

import numpy as np

from neuroplastic.report.plots import plt, save

__all__ = ["draw_bimodal", "draw_window", "draw_digits"]


def draw_bimodal(path, w0, w, out_steps, steps, dt, snapshots, measured):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(w0.numpy(), bins=20, range=(0, 1), color="lightgray", label="start")
    axes[0].hist(w.numpy(), bins=20, range=(0, 1), color="tab:blue", alpha=0.8, label="end")
    axes[0].set_xlabel("w / g_max")
    axes[0].set_ylabel("synapses")
    axes[0].legend()
    axes[0].set_title(f"{100 * measured['fraction_below_0.1_gmax']:.0f}% < 0.1, "
                      f"{100 * measured['fraction_above_0.9_gmax']:.0f}% > 0.9", fontsize=9)
    seconds = steps * dt / 1000.0
    bins = max(1, int(seconds))
    counts, edges = np.histogram(out_steps.numpy() * dt / 1000.0, bins=bins, range=(0, seconds))
    axes[1].plot(edges[1:], counts / (seconds / bins), color="tab:red")
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("output rate (Hz)")
    axes[1].set_title(f"end: {measured['output_rate_hz']:.1f} Hz (Brian2 ≈ 26 Hz)", fontsize=9)
    if snapshots:
        low = [float((s < 0.1).float().mean()) for s in snapshots]
        high = [float((s > 0.9).float().mean()) for s in snapshots]
        times = np.arange(1, len(snapshots) + 1) * (seconds / len(snapshots))
        axes[2].plot(times, low, label="< 0.1 g_max")
        axes[2].plot(times, high, label="> 0.9 g_max")
        axes[2].legend()
    axes[2].set_xlabel("time (s)")
    axes[2].set_ylabel("fraction of synapses")
    fig.suptitle("Song, Miller & Abbott 2000: competitive STDP", fontsize=10)
    return save(fig, path)


def draw_window(path, delta_t, measured_dw, closed_form, fit, frequencies, triplet):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    grid = np.linspace(min(delta_t), max(delta_t), 400)
    axes[0].axhline(0, color="gray", lw=0.5)
    axes[0].plot(grid, closed_form(grid), color="black", lw=1, label="closed form")
    axes[0].plot(delta_t, measured_dw, "o", ms=4, color="tab:blue", label="measured (pairings)")
    axes[0].set_xlabel("Δt = t_post − t_pre (ms)")
    axes[0].set_ylabel("Δw per pairing")
    axes[0].set_title(f"fit: τ+ = {fit['tau_plus_ms']:.2f} ms, τ− = {fit['tau_minus_ms']:.2f} ms", fontsize=9)
    axes[0].legend(fontsize=8)
    for delta, values in triplet.items():
        axes[1].plot(frequencies, values, "o-", label=f"Δt = {delta:+g} ms")
    axes[1].axhline(0, color="gray", lw=0.5)
    axes[1].set_xlabel("pairing frequency (Hz)")
    axes[1].set_ylabel("Δw (60 pairings)")
    axes[1].set_title("triplet STDP (Pfister & Gerstner 2006)", fontsize=9)
    axes[1].legend(fontsize=8)
    return save(fig, path)


def draw_digits(path, weights, labels, accuracy, side=8):
    n = weights.shape[0]
    columns = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    mosaic = np.full((rows * (side + 1), columns * (side + 1)), np.nan)
    for k in range(n):
        r, c = divmod(k, columns)
        mosaic[r * (side + 1):r * (side + 1) + side, c * (side + 1):c * (side + 1) + side] = \
            weights[k].reshape(side, side)
    fig, ax = plt.subplots(figsize=(7, 7 * rows / columns + 0.5))
    ax.imshow(mosaic, cmap="hot_r")
    ax.set_axis_off()
    ax.set_title(f"receptive fields of {n} excitatory neurons; test accuracy {100 * accuracy:.1f}%", fontsize=9)
    return save(fig, path)
