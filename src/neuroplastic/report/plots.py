"""Plots a person would rather look at than numbers: voltage traces with spikes, f-I curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["draw_trace", "draw_fi", "save"]


def draw_trace(ax, times_ms, voltage, spike_times_ms, *, title="", unit="mV"):
    """Membrane potential over time, with a tick above the trace at every spike."""
    ax.plot(times_ms, voltage, lw=0.8, color="tab:blue")
    if len(spike_times_ms):
        top = max(voltage.max(), 0.0) if len(voltage) else 0.0
        ax.plot(spike_times_ms, [top] * len(spike_times_ms), "|", color="tab:red", ms=8)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(f"V ({unit})")
    ax.set_title(title, fontsize=9)


def draw_fi(ax, currents, rates_hz, *, title="", unit=""):
    """Steady-state rate against input current."""
    ax.plot(currents, rates_hz, "o-", ms=3, color="tab:green")
    ax.set_xlabel(f"current ({unit})" if unit else "current")
    ax.set_ylabel("rate (Hz)")
    ax.set_title(title, fontsize=9)


def save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
