"""The figure of ``neuroplastic reproduce delays``: accuracy without, with fixed and with learned
delays, and the learned delays' distribution."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["draw_delays"]


def draw_delays(path, accuracy: dict, learned_delays, max_delay: int, *, title: str = ""):
    """``accuracy``: test accuracy by variant; ``learned_delays``: the rounded learned delays (a flat
    sequence of steps)."""
    fig, (bars, histogram) = plt.subplots(1, 2, figsize=(8.0, 3.2))
    bars.bar(list(accuracy), list(accuracy.values()), color=["tab:gray", "tab:blue", "tab:green"][:len(accuracy)])
    bars.axhline(0.95, color="tab:red", lw=0.8, ls="--")
    bars.set_ylim(0.0, 1.0)
    bars.set_ylabel("test accuracy")
    bars.set_title("delays of the input synapses", fontsize=9)
    histogram.hist(learned_delays, bins=range(max_delay + 2), color="tab:green")
    histogram.set_xlabel("learned delay (steps, rounded)")
    histogram.set_ylabel("synapses")
    histogram.set_title("learned delays", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)
