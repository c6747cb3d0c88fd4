"""Training a network that runs on a chip (:mod:`neuroplastic.physical`) as methods of the trainer
protocol (:mod:`~neuroplastic.training.problem`). Every one is evaluated where it is deployed: on the
chip, through the :class:`~neuroplastic.physical.PhysicalNetwork` that ``fit`` builds for it (the task's
recipe with DPI neurons).

- ``pat``: physics-aware training (Wright et al. 2022, Nature 601:549): each batch runs on the chip, and
  the gradient comes from the twin's Jacobians at the chip's states
  (:func:`~neuroplastic.physical.physics_aware`). ``calibrate=True`` fits the twin's gains to the chip
  first (:func:`~neuroplastic.physical.calibrate`) and again every ``recalibrate`` batches.
- ``twin``: training on the twin alone, by backpropagation through time, then deploying on the chip
  ("in silico" training and transfer). ``aware=True``: each batch runs through a freshly drawn device of
  the chip's mismatch strength, noise and weight bits, its quantization passed straight through — noise-,
  quantization- and mismatch-aware training, still without the chip.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from neuroplastic.devices import generator_on
from neuroplastic.physical import ChipSpec, PhysicalNetwork, calibrate, physics_aware
from neuroplastic.physical.chip import device_network, draw_mismatch, nominal, on_device
from neuroplastic.rules import apply_updates
from neuroplastic.training.checkpoint import portable, restored
from neuroplastic.training.problem import synaptic_operations
from neuroplastic.training.recipes import build_network
from neuroplastic.validation import lookup, require_count

__all__ = ["ChipMethod", "PATLearner", "TwinLearner", "SUBSTRATES"]

SUBSTRATES = {"dpi": "dpi"}  # substrate name -> the recipe's neuron model it computes


@dataclass(frozen=True)
class ChipMethod:
    """``name``: ``pat`` or ``twin``; the chip: ``substrate``, ``mismatch``, ``noise``, ``bits``, ``chip``
    (its seed); ``calibrate`` and ``recalibrate`` (``pat``), ``aware`` (``twin``)."""

    name: str = "pat"
    substrate: str = "dpi"
    mismatch: float = 0.0
    noise: float = 0.0
    bits: int | None = None
    chip: int = 0
    calibrate: bool = False
    recalibrate: int = 50
    aware: bool = False

    def __post_init__(self):
        lookup("substrate", self.substrate, SUBSTRATES)
        self.spec  # validates mismatch, noise, bits and the chip's seed
        require_count("recalibrate", self.recalibrate)
        for flag in ("calibrate", "aware"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{self.name} {flag} must be true or false, got {getattr(self, flag)!r}")
        if self.calibrate and self.name != "pat" or self.aware and self.name != "twin":
            raise ValueError("calibrate is an option of pat, aware one of twin")

    @property
    def spec(self) -> ChipSpec:
        return ChipSpec(self.mismatch, self.noise, self.bits, self.chip)

    def build_network(self, task, recipe, *, seed: int = 0) -> PhysicalNetwork:
        """The recipe's network with the substrate's neurons, deployed on this chip."""
        twin = build_network(task, replace(recipe, neuron=SUBSTRATES[self.substrate]), seed=seed)
        return PhysicalNetwork(twin, self.spec).to(task.dtype)

    def learner(self, problem):
        if not isinstance(problem.network, PhysicalNetwork):
            raise ValueError(f"{self.name} trains a network on a chip (fit builds one for rule {self.name!r}), "
                             f"got {type(problem.network).__name__}")
        return (PATLearner if self.name == "pat" else TwinLearner)(problem, self)


class _ChipLearner:
    def __init__(self, problem, method: ChipMethod):
        self.problem, self.method = problem, method
        self.network: PhysicalNetwork = problem.network
        self.params = tuple(self.network.twin.parameters())
        self.updates_applied = 0
        self.synops = 0
        self.batches = 0

    def _learn(self, output, targets, optimizer, inputs, spikes) -> float:
        loss = self.problem.loss(output, targets)
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        grads = tuple(torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads))
        self.updates_applied += apply_updates(optimizer, self.params, grads)
        self.synops += synaptic_operations(self.network.twin, inputs, spikes)
        self.batches += 1
        return loss.item()

    def state_dict(self) -> dict:
        """Batches trained (PAT recalibrates every ``recalibrate`` of them), for a checkpoint."""
        return {"batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state["batches"])


class PATLearner(_ChipLearner):
    def train_batch(self, inputs, targets, optimizer) -> float:
        if self.method.calibrate and self.batches % self.method.recalibrate == 0:
            calibrate(self.network, inputs)
        measured = self.network.chip.measure(self.network.twin, inputs)
        output = physics_aware(self.network, inputs, measured)
        return self._learn(output, targets, optimizer, inputs, measured.spikes)


class TwinLearner(_ChipLearner):
    def __init__(self, problem, method: ChipMethod):
        super().__init__(problem, method)
        self.generator = None
        if method.aware:
            self.device = device_network(self.network.twin, method.noise)
            self.nominal = nominal(self.network.twin)

    def _generator(self, device) -> torch.Generator:
        """The learner's own generator on ``device`` (seeded from the problem's): devices and noise are
        drawn where training runs."""
        if self.generator is None or self.generator.device != torch.device(device):
            self.generator = generator_on(device, self.problem.generator)
        return self.generator

    def state_dict(self) -> dict:
        """Also the generator of drawn devices and noise (``None`` until the first batch)."""
        return {**super().state_dict(), "generator": None if self.generator is None else portable(self.generator)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if state["generator"] is not None:  # made where training runs; a state from elsewhere is not used
            restored(self._generator(self.params[0].device), state["generator"], self.params[0].device)

    def train_batch(self, inputs, targets, optimizer) -> float:
        twin = self.network.twin
        if self.method.aware:
            generator = self._generator(inputs.device)
            drawn = draw_mismatch(self.nominal, self.method.mismatch, generator)
            output = on_device(self.device.to(inputs.device), twin, drawn, inputs, bits=self.method.bits,
                               noise=self.method.noise, generator=generator, straight_through=True)
        else:
            output = twin(inputs)
        return self._learn(output, targets, optimizer, inputs, output.spikes)
