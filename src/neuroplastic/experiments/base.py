"""What every experiment returns, and the registry of experiments by name.

Every experiment module has ``run(*, quick=False, seed=0, progress=True, device="cpu") -> Outcome``:
its networks, rules and draws live on ``device`` (tensors made there, never without naming it; per-step
random draws from a generator on ``device``, seeded from the CPU one, as :mod:`neuroplastic.devices`
says), and what it measures comes back as plain Python numbers, so the figure and the report are the
same wherever it ran. The draws that set up the network come from CPU generators, so a seed gives the
same experiment on every device.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Callable

from neuroplastic.progress import progress_bar as _progress_bar
from neuroplastic.validation import lookup

__all__ = ["Outcome", "EXPERIMENTS", "get_experiment", "progress_bar", "rounded"]

# name -> (module, one-line description); modules are imported only when an experiment runs
EXPERIMENTS = {
    "stdp-window": ("neuroplastic.experiments.stdp_window",
                    "STDP learning window by pairing protocols, fitted τ+ and τ− (Bi & Poo 1998); "
                    "triplet STDP's pairing-frequency dependence (Pfister & Gerstner 2006)"),
    "stdp-bimodal": ("neuroplastic.experiments.stdp_bimodal",
                     "competitive STDP makes the weight distribution bimodal and regulates the output rate "
                     "(Song, Miller & Abbott 2000)"),
    "unsupervised-digits": ("neuroplastic.experiments.digits",
                            "STDP, lateral inhibition and adaptive thresholds learn scikit-learn's digits "
                            "unsupervised (Diehl & Cook 2015 style)"),
    "distal-reward": ("neuroplastic.experiments.distal_reward",
                      "dopamine-modulated STDP finds the one rewarded synapse among 100,000 despite a 1-3 s "
                      "reward delay (Izhikevich 2007)"),
    "delays": ("neuroplastic.experiments.delays",
               "a spike-timing task that needs synaptic delays: none, fixed random and learned (DCLS, "
               "Hammouamri et al. 2023)"),
    "eqprop-beta": ("neuroplastic.experiments.eqprop_beta",
                    "equilibrium propagation's gradient error against β on a network solved in closed form: "
                    "O(β) one-sided, O(β²) symmetric (Scellier & Bengio 2017; Laborieux et al. 2021)"),
    "eqprop-gdu": ("neuroplastic.experiments.eqprop_gdu",
                   "discrete-time EqProp: the nudged phase's per-step updates against BPTT through the free "
                   "phase, per layer and against β (Ernoult et al. 2019)"),
    "pat-mismatch": ("neuroplastic.experiments.pat_mismatch",
                     "digits on simulated DPI chips against device mismatch: transfer from the twin, "
                     "physics-aware training (Wright et al. 2022), calibrated PAT, noise-aware training"),
    "plastic-completion": ("neuroplastic.experiments.plastic_completion",
                           "differentiable plasticity completes half-zeroed 1000-bit patterns seen once per "
                           "episode; the same RNN with α = 0 stays at chance (Miconi, Clune & Stanley 2018)"),
}


@dataclass
class Outcome:
    """The result of one experiment: ``measured`` and ``published`` numbers, ``passed`` criteria."""

    name: str
    passed: bool
    measured: dict
    published: dict
    draw: Callable = field(repr=False, default=None)  # draw(path): write the figure

    def summary(self) -> dict:
        return {"name": self.name, "passed": bool(self.passed), "measured": rounded(self.measured),
                "published": rounded(self.published)}


def rounded(value):
    """JSON-safe copy: floats rounded to 6 significant digits, NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


def get_experiment(name: str) -> Callable:
    """The ``run`` function of the experiment ``name`` (a clear error for an unknown name)."""
    module, _ = lookup("experiment", name, EXPERIMENTS)
    return importlib.import_module(module).run


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "step"):
    """A tqdm bar on stderr (off a terminal, a line per tenth of ``total``), or a silent stand-in with
    the same ``update`` / ``close``."""
    return _progress_bar(total, desc=desc, unit=unit, enabled=enabled, mininterval=0.5, leave=False)
