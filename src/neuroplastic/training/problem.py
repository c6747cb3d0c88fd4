"""What a learning method is handed, and what it hands back: the protocol between methods and the trainer.

A **method** is any object with a ``name`` and ``learner(problem) -> learner``; it may say
``momentum = False`` (the optimizer then writes only the weights its updates change). A **learner**
has ``params`` (the tensors the optimizer updates), ``train_batch(inputs, targets, optimizer) ->
float`` (one batch, time first; returns its loss), and the counters ``updates_applied`` (weights the
optimizer steps changed) and ``synops`` (synaptic events of its forward passes). A learner with a
running state of its own (a rule's accumulators, a baseline, a threshold, a generator) also has
``state_dict()`` and ``load_state_dict(state)``, so that a resumed run continues it exactly. The trainer knows
nothing else about a method: BPTT, the online rules, exact RTRL, and whatever comes next (evolution
strategies through :meth:`Problem.loss_fn`, equilibrium propagation running the network twice and
nudging it) plug in here.

:class:`Problem` is everything a method may need: the network, the :class:`Objective`, the firing-rate
regularizer, a generator for the method's own random draws (feedback matrices, rewards), and the
data-parallel run (:mod:`~neuroplastic.training.distributed`) whose shard of each batch it trains.
:class:`GradientMethod` makes any gradient :class:`~neuroplastic.rules.Rule` (BPTT, truncated BPTT, a
``chain`` of them with clipping) a method: each batch runs through the network one segment at a time
(the rule's ``segment_steps``; the whole sequence for BPTT), the segment's loss goes to the rule, the
rule's updates to the optimizer, and the state crosses into the next segment detached.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call

from neuroplastic.networks import NetworkOutput, SpikingNetwork
from neuroplastic.rules import Rule, apply_updates, segments
from neuroplastic.rules.base import Segment
from neuroplastic.sim.loop import detached
from neuroplastic.spikes import count_events
from neuroplastic.training.checkpoint import portable, restored
from neuroplastic.training.losses import rate_regularization
from neuroplastic.training.objectives import Objective

__all__ = ["Problem", "GradientMethod", "GradientLearner", "synaptic_operations", "traffic", "detached"]


@dataclass
class Problem:
    """A network to train towards an objective, with e-prop's firing-rate regularizer
    ``rate_weight · Σ_layers mean_i (ν_i − ν*)²`` (``ν*`` = ``rate_target_hz``; off at weight 0)."""

    network: SpikingNetwork
    objective: Objective
    dt: float = 1.0
    rate_target_hz: float = 10.0
    rate_weight: float = 0.0
    generator: torch.Generator | None = None
    parallel: object = None  # the DataParallel run this process trains a shard of (None: one process)

    def loss(self, output: NetworkOutput, targets, segment: Segment | None = None) -> torch.Tensor:
        """The objective's loss of ``segment`` (default: the whole sequence of ``output``) plus the rate
        regularizer of the spikes in ``output`` (the events: binary even where spikes carry a payload)."""
        if segment is None:
            steps = output.readout.shape[0]
            segment = Segment(0, steps, steps)
        loss = self.objective.loss(output.readout, targets, segment)
        if self.rate_weight:
            loss = loss + self.rate_weight * rate_regularization(output.events or output.spikes,
                                                                 target_hz=self.rate_target_hz,
                                                                 dt=self.dt)
        return loss

    def loss_fn(self, params: dict, inputs, targets) -> torch.Tensor:
        """The loss of whole sequences as a function of the network's parameters (a dict by name, as
        ``named_parameters`` gives them), through ``torch.func.functional_call``: what evolution
        strategies, meta-learning and ``torch.func`` transforms differentiate or sample."""
        return self.loss(functional_call(self.network, params, (inputs,)), targets)


def synaptic_operations(network: SpikingNetwork, inputs, spikes) -> torch.Tensor | int:
    """Events (nonzero entries: spikes, binary or graded) times fan-out, summed over layers: the
    synaptic events of a forward pass (inputs ``(T, B, n_in)``, one spike tensor ``(T, B, n)`` per
    layer), a tensor on their device. A network without spiking layers counts its own forward pass
    (``pass_operations``)."""
    if not spikes:
        counter = getattr(network, "pass_operations", None)
        return counter(inputs.shape[1]) if counter is not None else 0
    total, pre = 0, inputs
    for layer, z in zip(network.layers, spikes):
        total += count_events(pre) * layer.size
        if layer.recurrent is not None:
            total += count_events(z[:-1]) * layer.size
        pre = z
    return total + count_events(pre) * network.readout.size


def traffic(network: SpikingNetwork, spikes) -> tuple[int, int]:
    """``(events, bits)`` the hidden layers send: their events, and those times each layer's payload
    bits (1 for binary spikes), for one spike tensor ``(T, B, n)`` per layer (``NetworkOutput.events``:
    a payload of 0 is still an event sent). A network without spiking layers sends none."""
    counts = [int(count_events(z)) for z in spikes]
    if not counts:
        return 0, 0
    return sum(counts), sum(count * layer.payload_bits for count, layer in zip(counts, network.layers))


@dataclass(frozen=True)
class GradientMethod:
    """A gradient :class:`~neuroplastic.rules.Rule` as a method (``name`` for reports)."""

    rule: Rule
    name: str = "gradient"
    momentum: bool = True

    def learner(self, problem: Problem) -> "GradientLearner":
        return GradientLearner(problem, self.rule)


class GradientLearner:
    """Trains by ``rule``'s gradient updates of the segment losses (module docstring)."""

    def __init__(self, problem: Problem, rule: Rule):
        self.problem, self.rule = problem, rule
        self.params = tuple(p for p in problem.network.parameters() if p.requires_grad)
        self.rule_state = rule.init(self.params)
        self.updates_applied = 0
        self.synops = 0

    def train_batch(self, inputs, targets, optimizer) -> float:
        network = self.problem.network
        state = network.init_state(inputs.shape[1:2], dtype=inputs.dtype, device=inputs.device)
        total = 0.0  # summed on the device, read once per batch
        for segment in segments(inputs.shape[0], self.rule.segment_steps):
            piece = inputs[segment.start:segment.stop]
            output = network(piece, state)
            loss = self.problem.loss(output, targets, segment)
            updates, self.rule_state = self.rule.update(segment, self.rule_state, self.params, loss=loss)
            if self.problem.parallel is not None:  # a gate may skip this step on some shards only
                updates = self.problem.parallel.agree(updates, self.params)
            self.updates_applied += apply_updates(optimizer, self.params, updates)
            self.synops += synaptic_operations(network, piece, output.events)
            state = detached(output.state)
            total += loss.detach()
        return float(total)

    def state_dict(self) -> dict:
        """The rule's running state, for a checkpoint (``None`` for a rule of one's own whose state a
        checkpoint cannot hold: it then starts afresh on resume)."""
        try:
            return {"rule": portable(self.rule_state)}
        except TypeError:
            return {"rule": None}

    def load_state_dict(self, state: dict) -> None:
        if state["rule"] is not None:
            self.rule_state = restored(self.rule_state, state["rule"], self.params[0].device)
