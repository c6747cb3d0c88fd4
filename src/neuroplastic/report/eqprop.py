"""The figure of ``neuroplastic reproduce eqprop-beta``: the estimates' errors against β."""
from __future__ import annotations

import matplotlib.pyplot as plt

from neuroplastic.report.plots import save

__all__ = ["draw_beta_errors"]


def draw_beta_errors(path, betas, errors: dict):
    """``errors``: the relative error of each estimate (``one_sided``, ``symmetric``) at every β."""
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for (kind, values), color in zip(errors.items(), ("tab:blue", "tab:orange")):
        ax.loglog(betas, values, "o-", color=color, label=kind.replace("_", "-"))
    reference = errors["one_sided"][0]
    ax.loglog(betas, [reference * b / betas[0] for b in betas], "k:", lw=0.8, label="∝ β")
    reference = errors["symmetric"][0]
    ax.loglog(betas, [reference * (b / betas[0]) ** 2 for b in betas], "k--", lw=0.8, label="∝ β²")
    ax.set_xlabel("nudging β")
    ax.set_ylabel("relative error of the gradient")
    ax.set_title("equilibrium propagation vs the exact gradient", fontsize=9)
    ax.legend(fontsize=8)
    return save(fig, path)
