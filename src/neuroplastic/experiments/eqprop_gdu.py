"""``eqprop-gdu``: the discrete-time equilibrium propagation of Ernoult, Grollier, Querlioz, Bengio &
Scellier 2019 ("Updates of equilibrium prop match gradients of backprop through time in an RNN with
static input", NeurIPS): the per-step updates of the nudged phase against backpropagation through time
(BPTT) through the free phase of the same network.

The network relaxes by ``s_{t+1} = s_t − ε ∂E/∂s`` (projected to [0, 1]): their prototypical setting with
``Φ = ½‖s‖² − εE``. After ``T1`` free steps, the nudged phase runs ``T2`` steps; its ``t``-th update
``(∂E/∂θ(s^β_{t+1}) − ∂E/∂θ(s^β_t)) / β`` (:func:`~neuroplastic.training.eqprop.step_updates`) is compared
with BPTT's gradient of the cost ``C(s_{T1})`` with respect to the parameters of the ``t+1``-th last
free step (the difference of the gradients truncated to ``t+1`` and ``t`` steps). Their theorem: equal
as ``β → 0`` where the free phase has converged. Measured per layer (its weights, over all ``T2`` steps):
the cosine and the relative error, at the paper's ``β = 0.01``, ``T1 = 30``, ``T2 = 10``, and as β
shrinks: after 30 free steps the phase still drifts (its last step moves a state by ~1e-5), which the
nudged updates divide by β, so their error grows again below β ≈ 0.01; after 100 free steps (converged)
it shrinks with β. The network: digits' inputs (a batch of 32), 64 → 128 → 10, the hard sigmoid,
float64. Criteria (thresholds ours): at the paper's settings every layer's cosine ≥ 0.99, and after
the converged free phase the error shrinks at every β down to 0.001. Quick: the same (seconds).
"""
from __future__ import annotations

import torch

from neuroplastic.experiments.base import Outcome
from neuroplastic.networks.energy import EnergyNetwork, Phase, cost
from neuroplastic.sim.loop import run as simulate
from neuroplastic.tasks import load_task
from neuroplastic.training.eqprop import step_updates, trajectory

BETAS = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
FREE_STEPS, NUDGED_STEPS, PAPER_BETA = 30, 10, 0.01
CONVERGED_STEPS = 100  # a free phase whose last step moves no state by more than 1e-11
CRITERIA = {"cosine_at_beta_0.01_at_least": 0.99, "converged_error_shrinks_with_beta": True,
            "source": "Ernoult et al. 2019 (NeurIPS), Theorem 1 and their settings β = 0.01, T1 = 30, T2 = 10"}


def bptt_step_gradients(network: EnergyNetwork, x, target, *, free_steps: int, steps: int) -> list:
    """BPTT's gradient of ``C(s_{T1})`` with respect to the parameters of each of the last ``steps`` free
    steps, the last first: differences of the gradients through the last ``t`` steps alone."""
    if not 0 < steps < free_steps:
        raise ValueError(f"BPTT's last {steps} steps must lie within the {free_steps} free steps")
    states = trajectory(network, x, state=network.init_state(x.shape[:1], dtype=x.dtype, device=x.device), steps=free_steps)
    params = tuple(network.parameters())
    truncated = [tuple(torch.zeros_like(p) for p in params)]
    for t in range(1, steps + 1):
        start = states[free_steps - t - 1]
        with torch.enable_grad():
            final = simulate(Phase(network, None, 0.0, differentiable=True), x.expand(t, *x.shape),
                             network.step_size, state=start, keep_spikes=False).state
            # a single step reaches the cost from the layer below the output only: unused parameters
            grads = torch.autograd.grad(cost(final[-1], target) / x.shape[0], params, allow_unused=True)
            truncated.append(tuple(torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)))
    return [tuple(b - a for a, b in zip(shorter, longer)) for shorter, longer in zip(truncated, truncated[1:])]


def compare(ep: list, bptt: list, layers: int) -> dict:
    """Per layer: cosine and relative error of EP's per-step weight updates against BPTT's, all steps."""
    result = {}
    for layer in range(layers):
        a = torch.stack([step[layer] for step in ep]).flatten()
        b = torch.stack([step[layer] for step in bptt]).flatten()
        result[f"layer_{layer + 1}"] = {"cosine": float(a @ b / (a.norm() * b.norm())),
                                        "relative_error": float((a - b).norm() / b.norm())}
    return result


def sweep(network, x, target, free_steps: int) -> tuple[dict, list, list]:
    """Per β, the comparison of every layer after ``free_steps`` free steps; EP's updates at the paper's β
    and BPTT's gradients (for the figure)."""
    free = trajectory(network, x, state=network.init_state(x.shape[:1], dtype=x.dtype, device=x.device), steps=free_steps)[-1]
    bptt = bptt_step_gradients(network, x, target, free_steps=free_steps, steps=NUDGED_STEPS)
    updates = {beta: step_updates(network, x, target, beta=beta, free=free, steps=NUDGED_STEPS) for beta in BETAS}
    return {beta: compare(ep, bptt, len(network.weights)) for beta, ep in updates.items()}, updates[PAPER_BETA], bptt


def run(*, quick: bool = False, seed: int = 0, progress: bool = True, device="cpu") -> Outcome:
    device = torch.device(device)
    task = load_task("digits", seed=seed)
    inputs, labels = next(task.batches("train", 32, shuffle=False))
    x = inputs.double().mean(0).to(device)
    target = torch.nn.functional.one_hot(labels, 10).double().to(device)
    with torch.device("cpu"):  # the CPU generator's weights: the same network on every device
        network = EnergyNetwork((64, 128, 10), generator=torch.Generator().manual_seed(seed)).double()
    network = network.to(device)
    paper, ep, bptt = sweep(network, x, target, FREE_STEPS)
    converged, _, _ = sweep(network, x, target, CONVERGED_STEPS)
    names = list(paper[PAPER_BETA])
    errors = {f"{name}_T1_{steps}": [result[beta][name]["relative_error"] for beta in BETAS]
              for steps, result in ((FREE_STEPS, paper), (CONVERGED_STEPS, converged)) for name in names}
    shrinking = [values for key, values in errors.items() if key.endswith(f"_T1_{CONVERGED_STEPS}")]
    passed = (all(paper[PAPER_BETA][name]["cosine"] >= CRITERIA["cosine_at_beta_0.01_at_least"] for name in names)
              and all(later < earlier for values in shrinking for earlier, later in zip(values, values[1:])))
    measured = {"betas": list(BETAS), "free_steps": FREE_STEPS, "converged_free_steps": CONVERGED_STEPS,
                "nudged_steps": NUDGED_STEPS,
                **{f"{name}_at_beta_0.01": paper[PAPER_BETA][name] for name in names},
                **{f"{key}_relative_error": values for key, values in errors.items()},
                **{f"{name}_T1_{FREE_STEPS}_cosine": [paper[beta][name]["cosine"] for beta in BETAS] for name in names}}

    def draw(path):
        from neuroplastic.report.eqprop import draw_step_updates
        draw_step_updates(path, BETAS, errors, *([tuple(g.cpu() for g in step) for step in steps] for steps in (ep, bptt)))

    return Outcome("eqprop-gdu", passed, measured, CRITERIA, draw)
