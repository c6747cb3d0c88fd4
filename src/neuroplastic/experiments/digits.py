"""``unsupervised-digits``: unsupervised learning of digits with STDP, lateral inhibition and adaptive
thresholds, in the style of Diehl & Cook (2015), "Unsupervised learning of digit recognition using
spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99 — on scikit-learn's 8×8 digits.

- 64 Poisson inputs, rate ∝ pixel intensity, shown for ``present_ms`` each (state reset between
  images, in place of Diehl & Cook's 150 ms of rest).
- ``n_exc`` conductance-based LIF neurons (τ_m = 100 ms, E_L = −65, ϑ = −52 mV + θ, 5 ms refractory,
  E_e = 0, E_i = −100 mV, τ_e = 1, τ_i = 2 ms) receive the inputs through plastic excitatory
  conductance synapses.
- Lateral inhibition: each excitatory neuron drives one inhibitory neuron that always fires one step
  later (Diehl & Cook's strong one-to-one connection, taken as a relay) and inhibits every *other*
  excitatory neuron (Dale's law: the inhibitory neurons are inhibitory at all their synapses).
- Learning: nearest-spike pair STDP (Diehl & Cook: η_post = 0.01, η_pre = 1e-4, τ = 20 ms; the
  ``Config`` fields ``a_plus``, ``a_minus``, ``tau_plus``, ``tau_minus``) bounded to ``[0, 1]``, each
  neuron's incoming weights normalized after every image, and adaptive thresholds θ (``θ+`` per
  spike, slow decay) — all through the rule interface.
- After one pass the weights and θ are frozen; each neuron is labelled with the class it responds to
  most on the training images, and a test image is classified by the class whose neurons fire most.

Criterion: test accuracy ≥ 80% with at most 400 excitatory neurons. Published: Diehl & Cook report
95.0% on MNIST with 6400 neurons and 87–91% with 100–400 (their Table 1); no published number exists
for the 8×8 set, so this experiment reports its own and the criterion of the issue.

Quick: 200 neurons, 300 test images, 60 ms per image.

:func:`learn_and_classify` is one run on given images; :func:`load_validation` splits the training
images into a part to learn from and a validation part (the test images untouched), for searches
over the ``Config`` (:mod:`neuroplastic.outer.evolution.plasticity`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from neuroplastic.devices import generator_for
from neuroplastic.experiments.base import Outcome, progress_bar
from neuroplastic.neurons import ConductanceLIF, ResetTo
from neuroplastic.neurons.base import fire_and_reset
from neuroplastic.neurons.conductance_lif import ConductanceLIFState
from neuroplastic.rules import StepInfo, apply_changes, bound, chain, partition
from neuroplastic.rules.homeostasis import AdaptiveThreshold, Normalize
from neuroplastic.rules.stdp import Nearest, PairSTDP
from neuroplastic.synapses.conductance import ConductanceSynapses

PUBLISHED = {"mnist_accuracy_6400_neurons": 0.95, "mnist_accuracy_400_neurons": 0.87,
             "source": "Diehl & Cook 2015, Table 1 (MNIST, 28x28); the criterion here: >= 0.80 on 8x8 digits"}


@dataclass(frozen=True)
class Config:
    n_exc: int = 400
    n_train: int | None = None  # all training images
    n_test: int | None = None
    present_ms: float = 100.0
    dt: float = 0.5
    max_rate_hz: float = 400.0
    weight_total: float = 12.0
    inhibition: float = 17.0
    theta_plus: float = 0.2
    tau_theta: float = 1e7
    batch: int = 10  # images shown at once during learning, their changes summed
    a_plus: float = 0.01  # η_post: potentiation at a postsynaptic spike, × the presynaptic trace
    a_minus: float = 1e-4  # η_pre: depression at a presynaptic spike, × the postsynaptic trace
    tau_plus: float = 20.0  # ms, the presynaptic trace
    tau_minus: float = 20.0  # ms, the postsynaptic trace


class ThresholdedLIF:
    """A ConductanceLIF whose threshold is ``v_th + θ`` per neuron: the model's own equations and the
    shared fire-and-reset event, with a threshold tensor in place of the model's number."""

    def __init__(self, model: ConductanceLIF, theta: torch.Tensor):
        self.model, self.theta = model, theta
        self.e_l, self.t_ref, self.reset, self.surrogate = model.e_l, model.t_ref, model.reset, model.surrogate

    @property
    def v_th(self):
        return self.model.v_th + self.theta

    def step(self, state, jump_e, jump_i, dt):
        y = (state.v, state.g_e + jump_e, state.g_i + jump_i)
        v, g_e, g_i = self.model.integrator(self.model, y, torch.zeros_like(state.v), dt)
        spikes, v, refractory = fire_and_reset(self, state.v, v, state.refractory, dt)
        return spikes, ConductanceLIFState(v, g_e, g_i, refractory)


def _images(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    pixels, labels = digits.data / 16.0, digits.target
    train, test = train_test_split(np.arange(len(labels)), test_size=0.25, stratify=labels, random_state=seed)
    as_tensor = lambda idx: (torch.tensor(pixels[idx], dtype=torch.float64, device="cpu"),  # noqa: E731
                             torch.tensor(labels[idx], device="cpu"))
    return labels, train, test, as_tensor


def load(seed: int, n_train, n_test):
    """The first ``n_train`` training and ``n_test`` test images (None: all) of a stratified 75/25 split."""
    _, train, test, as_tensor = _images(seed)
    return as_tensor(train[:n_train]), as_tensor(test[:n_test])


def load_validation(seed: int, fraction: float, n_train=None, n_validation=None):
    """The training images of :func:`load` split (stratified, by ``seed``) into a part to learn from and
    a ``fraction`` held out for validation, each cut to its first ``n_…`` images; no test image."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction!r}")
    labels, train, _, as_tensor = _images(seed)
    learn, validation = train_test_split(train, test_size=fraction, stratify=labels[train], random_state=seed)
    return as_tensor(learn[:n_train]), as_tensor(validation[:n_validation])


def present(cfg, neuron, inputs, lateral, images, generator, learn=None):
    """Show ``images`` (B, 64) in parallel for one presentation; spike counts (B, n_exc), on the images'
    device, the input spikes drawn there from ``generator``. ``learn = (rule, state, params)`` applies
    plasticity at every step, the changes summed over B."""
    steps, b = round(cfg.present_ms / cfg.dt), images.shape[0]
    p = images * (cfg.max_rate_hz * cfg.dt / 1000.0)
    f64 = {"dtype": torch.float64, "device": images.device}
    state = neuron.model.init_state((b, cfg.n_exc), **f64)
    relay = torch.zeros(b, cfg.n_exc, **f64)
    counts = torch.zeros(b, cfg.n_exc, **f64)
    for t in range(steps):
        pre = (torch.rand(b, 64, generator=generator, **f64) < p).double()
        g_e, _ = inputs.jumps(pre)
        _, g_i = lateral.jumps(relay)
        spikes, state = neuron.step(state, g_e, g_i, cfg.dt)
        relay, counts = spikes, counts + spikes
        if learn is not None:
            rule, rule_state, params = learn
            changes, rule_state = rule.update(StepInfo(t, steps, cfg.dt, pre, spikes), rule_state, params)
            apply_changes(params, changes)
            learn = (rule, rule_state, params)
    return counts


def _votes(counts, assignment):
    """Each class's mean spike count over the neurons assigned to it ``(B, 10)`` (0 for a class without)."""
    return torch.stack([counts[:, assignment == c].mean(1) if (assignment == c).any()
                        else counts.new_zeros(len(counts)) for c in range(10)], 1)


def learn_and_classify(cfg: Config, train, held_out, generator: torch.Generator, progress: bool = False,
                       device="cpu") -> dict:
    """One pass of learning on ``train`` ``(images, labels)``, labelling of the neurons on it, and the
    accuracy on ``held_out`` (test or validation images), simulated on ``device``; also the learned
    ``weight`` and neuron ``assignment`` (on the CPU). ``generator`` (a CPU one) draws the initial
    weights and the order of the images, then the input spikes (on ``device``: a generator there
    seeded from it, :func:`~neuroplastic.devices.generator_for`)."""
    (x_train, y_train), (x_held, y_held) = ((x.to(device), y.to(device)) for x, y in (train, held_out))
    f64 = {"dtype": torch.float64, "device": device}
    model = ConductanceLIF(tau_m=100.0, e_l=-65.0, v_th=-52.0, reset=ResetTo(-65.0), t_ref=5.0, e_e=0.0,
                           e_i=-100.0, tau_e=1.0, tau_i=2.0)
    theta = torch.zeros(cfg.n_exc, **f64)
    neuron = ThresholdedLIF(model, theta)
    weight = torch.rand(cfg.n_exc, 64, generator=generator, dtype=torch.float64, device="cpu").to(device) * 0.3
    weight *= cfg.weight_total / weight.sum(1, keepdim=True)
    inputs = ConductanceSynapses(weight)
    lateral = ConductanceSynapses(cfg.inhibition * (1 - torch.eye(cfg.n_exc, **f64)), n_excitatory=0)
    stdp = chain(PairSTDP(cfg.tau_plus, cfg.tau_minus, a_plus=cfg.a_plus, a_minus=cfg.a_minus, pairing=Nearest()),
                 bound(0.0, 1.0))
    threshold, normalize = AdaptiveThreshold(cfg.theta_plus, cfg.tau_theta), Normalize(cfg.weight_total)

    learn_rule = partition({"stdp": stdp, "threshold": threshold}, ("stdp", "threshold"))
    bar = progress_bar(len(x_train), "unsupervised-digits", progress, unit="image")
    order = torch.randperm(len(x_train), generator=generator, device="cpu").to(device)
    generator = generator_for(device, generator)
    for first in range(0, len(order), cfg.batch):
        batch = order[first:first + cfg.batch]
        present(cfg, neuron, inputs, lateral, x_train[batch], generator,
                learn=(learn_rule, learn_rule.init((weight, theta)), (weight, theta)))
        apply_changes((weight,), normalize.update(None, None, (weight,))[0])
        bar.update(len(batch))
    bar.close()
    train_counts = present(cfg, neuron, inputs, lateral, x_train, generator)
    per_class = torch.stack([train_counts[y_train == c].mean(0) for c in range(10)])  # (10, n_exc)
    assignment = per_class.argmax(0)
    held_counts = present(cfg, neuron, inputs, lateral, x_held, generator)
    return {"accuracy": float((_votes(held_counts, assignment).argmax(1) == y_held).double().mean()),
            "train_accuracy": float((_votes(train_counts, assignment).argmax(1) == y_train).double().mean()),
            "classes_covered": int(assignment.unique().numel()),
            "mean_spikes_per_image": float(held_counts.sum(1).mean()),
            "silent_images": int((held_counts.sum(1) == 0).sum()), "theta_mean_mv": float(theta.mean()),
            "weight": weight.cpu(), "assignment": assignment.cpu()}


def run(*, quick: bool = False, seed: int = 0, progress: bool = True, config: Config | None = None,
        device="cpu") -> Outcome:
    torch.set_num_threads(1)
    cfg = config or (Config(n_exc=200, n_test=300, present_ms=60.0) if quick else Config())
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    train, test = load(seed, cfg.n_train, cfg.n_test)
    result = learn_and_classify(cfg, train, test, generator, progress, torch.device(device))
    accuracy = result["accuracy"]
    measured = {"test_accuracy": accuracy, "train_accuracy": result["train_accuracy"], "n_exc": cfg.n_exc,
                "n_train": len(train[0]), "n_test": len(test[0]), "classes_covered": result["classes_covered"],
                "mean_test_spikes_per_image": result["mean_spikes_per_image"],
                "silent_test_images": result["silent_images"], "theta_mean_mv": result["theta_mean_mv"],
                "wall_time_s": time.perf_counter() - start}
    passed = accuracy >= 0.80 and cfg.n_exc <= 400

    def draw(path):
        from neuroplastic.report.plasticity import draw_digits
        draw_digits(path, result["weight"].numpy(), result["assignment"].numpy(), accuracy)

    return Outcome("unsupervised-digits", passed, measured, PUBLISHED, draw)
