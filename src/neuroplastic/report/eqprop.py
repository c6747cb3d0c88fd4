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


def draw_step_updates(path, betas, errors: dict, ep: list, bptt: list, *, shown: int = 4):
    """Left: each layer's relative error against β (``errors[f"layer_{l}_T1_{T1}"]``); right: the ``shown``
    weights of every layer that BPTT moves most, EP's per-step updates at the paper's β (dashed) over
    BPTT's (solid)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for key, values in errors.items():
        left.loglog(betas, values, "o-" if key.endswith("_100") else "s--", label=key.replace("_", " "))
    left.set_xlabel("nudging β")
    left.set_ylabel("relative error of the per-step updates")
    left.legend(fontsize=7)
    steps = range(len(bptt))
    for layer, color in zip(range(len(bptt[0]) // 2), ("tab:blue", "tab:orange", "tab:green")):
        size = sum(step[layer].abs() for step in bptt).flatten()
        for rank, index in enumerate(size.topk(shown).indices.tolist()):  # the weights BPTT moves most
            right.plot(steps, [float(step[layer].flatten()[index]) for step in bptt], "-", color=color, lw=1.5,
                       label=f"layer {layer + 1}" if rank == 0 else None)
            right.plot(steps, [float(step[layer].flatten()[index]) for step in ep], "--", color="k", lw=0.8)
    right.set_xlabel("step t of the nudged phase (BPTT: t+1-th last free step)")
    right.set_ylabel("update of one weight")
    right.set_title("EP (dashed) over BPTT (solid), β = 0.01", fontsize=9)
    right.legend(fontsize=7)
    return save(fig, path)
