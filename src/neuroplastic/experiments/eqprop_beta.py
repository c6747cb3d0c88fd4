"""``eqprop-beta``: equilibrium propagation's gradient estimate against the exact gradient as the
nudging β shrinks (Scellier & Bengio 2017; the symmetric estimate of Laborieux et al. 2021).

The network (5 inputs → 6 → 4 → 3, linear activation, weights at 0.3 of Glorot's, biases and data
standard normal, float64) has a quadratic energy, so its fixed point solves a linear system
(:meth:`~neuroplastic.networks.EnergyNetwork.fixed_point`) and the exact gradient of the cost at the
free fixed point comes from autograd through that solution. The estimates come from the relaxations
alone. The one-sided estimate's error is O(β): halving β halves it; the symmetric one's is O(β²):
halving β quarters it. Criteria (issue 14): ratios 2 ± 0.2 and 4 ± 0.4 at every one of the last
three halvings. Quick: the last four β only.
"""
from __future__ import annotations

import math

import torch

from neuroplastic.experiments.base import Outcome
from neuroplastic.networks import EnergyNetwork
from neuroplastic.networks.energy import cost
from neuroplastic.training.eqprop import eqprop_gradients

BETAS = (0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125)
CRITERIA = {"one_sided_ratio": 2.0, "symmetric_ratio": 4.0, "relative_tolerance": 0.1,
            "source": "issue 14; the orders O(β) and O(β²): Scellier & Bengio 2017, Laborieux et al. 2021"}


def linear_problem(seed: int = 0, device="cpu"):
    """The network, an input batch ``x`` ``(7, 5)`` and targets ``y`` ``(7, 3)`` on ``device`` (drawn on
    the CPU: the same problem everywhere)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("cpu"):
        net = EnergyNetwork((5, 6, 4, 3), activation="linear", step_size=0.5, free_steps=400, nudged_steps=400,
                            tolerance=1e-13, scale=0.3, generator=generator).double()
        with torch.no_grad():
            for bias in net.biases:
                bias.normal_(generator=generator)
        x = torch.randn(7, 5, dtype=torch.float64, generator=generator)
        y = torch.randn(7, 3, dtype=torch.float64, generator=generator)
    return net.to(device), x.to(device), y.to(device)


def exact_gradient(net, x, y) -> tuple:
    """∂/∂θ of ``C(s⁰) = ½ ‖s⁰_L − y‖²`` (a batch mean) through the closed-form fixed point."""
    return torch.autograd.grad(cost(net.fixed_point(x)[-1], y) / x.shape[0], tuple(net.parameters()))


def relative_error(estimate, exact) -> float:
    return math.sqrt(sum(float((a - b).square().sum()) for a, b in zip(estimate, exact))
                     / sum(float(b.square().sum()) for b in exact))


def run(*, quick: bool = False, seed: int = 0, progress: bool = True, device="cpu") -> Outcome:
    device = torch.device(device)
    betas = BETAS[-4:] if quick else BETAS
    net, x, y = linear_problem(seed, device)
    exact = exact_gradient(net, x, y)
    free = net.relax(x)
    errors = {kind: [relative_error(eqprop_gradients(net, x, y, beta=beta, symmetric=kind == "symmetric",
                                                     free=free)[0], exact) for beta in betas]
              for kind in ("one_sided", "symmetric")}
    ratios = {kind: [a / b for a, b in zip(e[:-1], e[1:])] for kind, e in errors.items()}
    tolerance = CRITERIA["relative_tolerance"]
    passed = all(abs(r / CRITERIA[f"{kind}_ratio"] - 1) <= tolerance
                 for kind in ratios for r in ratios[kind][-3:])
    measured = {"betas": list(betas), **{f"{kind}_error": e for kind, e in errors.items()},
                **{f"{kind}_ratio": r for kind, r in ratios.items()}}

    def draw(path):
        from neuroplastic.report.eqprop import draw_beta_errors
        draw_beta_errors(path, betas, errors)

    return Outcome("eqprop-beta", passed, measured, CRITERIA, draw)
