"""Default networks and hyperparameters per task: what ``neuroplastic train --task T`` uses.

Each recipe names its neuron model by a key that says what it is, mapped to a model tuned for
learning (threshold 1, or 0.6 for e-prop's ALIF; reset by subtraction):

- ``discrete-lif``: the discrete-time LIF of e-prop and snnTorch's ``Leaky``, ``v_t = α v_{t−1} + I_t −
  θ z_{t−1}`` — the :class:`~neuroplastic.neurons.ALIF` map with ``beta = 0``, no refractoriness (not
  the continuous-time :class:`~neuroplastic.neurons.LIF`); the layers run it on the fused path;
- ``discrete-alif``: e-prop's adaptive LIF (``ALIF``, adaptation ``beta`` > 0, refractory);
- ``cuba-lif``: the current-based LIF (:class:`~neuroplastic.neurons.CurrentLIF`, exact propagator);
- ``dpi``: the current-mode DPI neuron of mixed-signal chips (:class:`~neuroplastic.neurons.DPI`).

``delays`` puts the input synapses of every layer behind a delay per synapse, up to ``max_delay``
steps: ``fixed`` (drawn uniformly) or ``learned`` (:class:`~neuroplastic.synapses.LearnedDelays`,
whose width ``fit`` anneals and whose positions train ``delay_lr_scale`` times faster).

``graded`` makes the hidden layers' spikes carry a payload (:mod:`neuroplastic.spikes`): ``learned``
(a magnitude per neuron) or ``bits:B`` (an integer of ``B`` bits read from the membrane potential at
the crossing, ALIF-based neurons); ``none``: binary spikes.

A recipe may also say how to read its task (``task_options``, for a task loaded by name) and may be
chosen by name instead of the task's (``fit(..., recipe="shd-delays")``, ``train --recipe``):
``shd-delays`` is Hammouamri, Khalfaoui-Hassani & Masquelier's SHD setup (ICLR 2024; 95.07 ± 0.24%).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, DPI, CurrentLIF, NeuronModel, ResetBySubtraction
from neuroplastic.spikes import FastSigmoid, LearnedPayload, Payload, QuantizedPayload, Triangle
from neuroplastic.synapses import Dense, FixedDelays, LearnedDelays
from neuroplastic.tasks import Task
from neuroplastic.validation import lookup

__all__ = ["Recipe", "RECIPES", "NEURONS", "DELAYS", "payload_for", "recipe_for", "build_network"]

NEURONS = {
    "discrete-lif": lambda r: ALIF(tau_m=r.tau_m, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0)),
    "discrete-alif": lambda r: ALIF(tau_m=r.tau_m, tau_a=r.tau_a, beta=r.adaptation, v_th=0.6, t_ref=r.t_ref,
                           surrogate=Triangle(0.3)),
    "cuba-lif": lambda r: CurrentLIF(tau_m=r.tau_m, tau_s=5.0, e_l=0.0, v_th=1.0, t_ref=0.0,
                                 reset=ResetBySubtraction(), surrogate=FastSigmoid(10.0)),
    "dpi": lambda r: DPI(tau_m=r.tau_m),
}


DELAYS = {  # what the input synapses of a layer sit behind
    "none": lambda dense, recipe, generator: dense,
    "fixed": lambda dense, recipe, generator: FixedDelays(dense, max_delay=recipe.max_delay, generator=generator),
    "learned": lambda dense, recipe, generator: LearnedDelays(dense, recipe.max_delay, lr_scale=recipe.delay_lr_scale,
                                                              generator=generator),
}


def payload_for(graded: str, size: int) -> Payload | None:
    """The payload a ``graded`` setting names (``none``, ``learned`` or ``bits:B``) for ``size`` neurons."""
    if graded == "none":
        return None
    if graded == "learned":
        return LearnedPayload(size)
    kind, _, bits = str(graded).partition(":")
    if kind != "bits" or not bits.strip().isdigit():
        raise ValueError(f"graded must be none, learned or bits:B (B ≥ 1 payload bits), got {graded!r}")
    return QuantizedPayload(int(bits))


@dataclass(frozen=True)
class Recipe:
    hidden: tuple[int, ...] = (128,)
    neuron: str = "discrete-lif"
    recurrent: bool = False
    tau_m: float = 20.0
    tau_a: float = 2000.0  # discrete-alif only: adaptation time constant (ms)
    adaptation: float = 0.0174  # discrete-alif only: β of the adaptive threshold (e-prop's cue task)
    t_ref: float = 5.0  # discrete-alif only
    tau_out: float = 20.0
    scale: float = 1.0
    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    dropout: float = 0.0  # of hidden spikes while training
    rate_target_hz: float = 10.0
    rate_weight: float = 0.0
    delays: str = "none"  # of the input synapses: none, fixed (drawn uniformly) or learned (DCLS)
    max_delay: int = 0  # the largest delay, in steps
    delay_lr_scale: float = 30.0  # learned delays: the positions' rate, a multiple of the weights'
    graded: str = "none"  # the hidden spikes' payload: none (binary), learned, or bits:B
    task_options: tuple = ()  # (name, value) pairs for loading the task by name, e.g. its binning

    def __post_init__(self):
        lookup("neuron", self.neuron, NEURONS)
        payload_for(self.graded, 1)  # refuses an unknown setting or B < 1
        lookup("delays", self.delays, DELAYS)
        if self.delays != "none" and (isinstance(self.max_delay, bool) or not isinstance(self.max_delay, int)
                                      or self.max_delay < 1):
            raise ValueError(f"delays need a max_delay of at least 1 step, got {self.max_delay!r}")


RECIPES = {
    "digits": Recipe(hidden=(256,), epochs=20, batch_size=32, lr=3e-3, scale=2.0),
    "mnist1d": Recipe(hidden=(256,), recurrent=True, epochs=30, batch_size=64, lr=2e-3),
    "randman": Recipe(hidden=(128,), epochs=5, batch_size=64, lr=2e-3, scale=2.0),
    "cue": Recipe(hidden=(100,), neuron="discrete-alif", recurrent=True, epochs=8, batch_size=64, lr=5e-3,
                  rate_weight=1e-4),
    "pattern": Recipe(hidden=(100,), recurrent=True, tau_m=30.0, tau_out=30.0, epochs=150,
                      batch_size=1, lr=3e-3),
    "shd": Recipe(hidden=(256,), recurrent=True, epochs=20, batch_size=64, lr=2e-3),
    "nmnist": Recipe(hidden=(256,), epochs=10, batch_size=64, lr=2e-3),
    # Hammouamri et al. 2023 on SHD: 700 channels summed in groups of 5, 10 ms bins over 1 s; two
    # feed-forward hidden layers of 256 with learned delays up to 250 ms (25 steps), positions at 100×
    # the weights' rate, dropout 0.4, Adam at 1e-3 (weight decay 1e-5), batch 256, 150 epochs; their
    # LIF (SpikingJelly, τ = 10.05 steps: a decay of 1 − 1/τ per step) as our exp(−dt/τ_m) = 0.90.
    # Not reproduced: their batch normalization, the delays of their readout layer, their one-cycle
    # schedule (here cosine for all), their σ schedule (here D/2 → 0.5 over 70% of the epochs).
    "shd-delays": Recipe(hidden=(256, 256), tau_m=95.5, tau_out=95.5, epochs=150, batch_size=256, lr=1e-3,
                         weight_decay=1e-5, dropout=0.4, delays="learned", max_delay=25, delay_lr_scale=100.0,
                         task_options=(("steps", 100), ("dt", 10.0), ("channels", 140))),
    # τ_m = 5 steps against channel offsets up to 40: only delays bridge them; the readout integrates
    # without leak, so spike counts alone (the same in every class) decide nothing
    # few-shot episodes of the double-digits meta-dataset (neuroplastic meta): the network meta-learned
    "double-digits": Recipe(hidden=(128,), scale=2.0, task_options=(("steps", 10),)),
    "timing": Recipe(hidden=(64,), tau_m=5.0, tau_out=1e4, epochs=15, batch_size=32, lr=3e-3, scale=2.0,
                     delays="learned", max_delay=45),
}


def recipe_for(task_name: str, recipe: str | None = None, **changes) -> Recipe:
    """The recipe named ``recipe`` (default: ``task_name``'s own) with some fields changed (``None``
    values are ignored)."""
    base = RECIPES.get(task_name, Recipe()) if recipe is None else lookup("recipe", recipe, RECIPES)
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def build_network(task: Task, recipe: Recipe, *, seed: int = 0) -> SpikingNetwork:
    """The recipe's network for ``task``, its weights drawn from ``seed``; built on the CPU whatever
    torch's default device (a seed gives the same network everywhere; ``.to(device)`` moves it)."""
    generator = torch.Generator().manual_seed(seed)
    neuron: NeuronModel = NEURONS[recipe.neuron](recipe)
    sizes = (task.n_inputs, *recipe.hidden)
    with torch.device("cpu"):
        layers = [
            SpikingLayer(n_in, n_out, neuron, dt=task.dt, recurrent=recipe.recurrent, scale=recipe.scale,
                         generator=generator, synapses=_synapses(n_in, n_out, recipe, generator),
                         payload=payload_for(recipe.graded, n_out))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        readout = LeakyReadout(sizes[-1], task.n_outputs, tau_out=recipe.tau_out, dt=task.dt, generator=generator)
        return SpikingNetwork(layers, readout, dropout=recipe.dropout).to(task.dtype)


def _synapses(n_in: int, n_out: int, recipe: Recipe, generator):
    """Dense input synapses, behind delays where the recipe asks for them."""
    return DELAYS[recipe.delays](Dense(n_in, n_out, scale=recipe.scale, generator=generator), recipe, generator)
