"""Online and local learning of a :class:`SpikingNetwork`: every method as a three-factor rule.

An :class:`OnlineMethod` names the two things that differ between methods: the rule that keeps each
layer's eligibility traces (:class:`EProp`, with or without the reset path; SuperSpike's) and the
source of the learning signal (:mod:`neuroplastic.rules.signals`: feedback of several kinds, local
readouts, error-triggered quantization, reward). The readout always learns from its
exact gradient (:class:`ReadoutGradient`). :class:`OnlineLearner` runs a batch through the network
step by step — the network's own step, :meth:`~neuroplastic.networks.SpikingNetwork.transition` — and
hands each layer's :class:`StepInfo` to its rule:

- ``mode="online"``: the rules update at every step and their gradients are applied every
  ``apply_every`` steps (at the end of the sequence when ``None``); memory does not grow with T;
- ``mode="sequence"``: the same steps are recorded — in one pass per layer by its fused operation
  where every layer runs one (:func:`~neuroplastic.training.recorded.fused_recording`: the same
  spikes and ``ψ``) — and each rule's ``sequence_update`` turns the whole sequence into matrix
  products. The weights stay fixed within the sequence, so the result equals the online mode with
  ``apply_every=None`` (tested).

The error ``err_t = ∂E/∂y_t`` is that of the problem's objective (``objective.error``), so the learning
signals estimate the gradient of the very loss BPTT minimizes. With ``rate_weight > 0`` the firing-rate
regularizer ``w Σ_l mean_i (ν_i − ν*)²`` adds its own learning signal to every layer (e-prop's rate
regularization): ``∂/∂z_{t,b,i} = w · 2(ν_i − ν*)/n · (1000/dt)/(T·B)`` — exact in the sequence mode;
online, ``ν_i`` is the running rate of the steps so far. This signal acts on ``z_t`` directly, not
through the readout, so it is handed to the rules inverse-filtered, ``s_t − κ s_{t+1}``
(``(1 − κ) s_t`` before the last step, the signal being constant in time), which their readout
filter ``F_κ`` turns back into ``s_t``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from neuroplastic.rules.base import Rule, Segment, StepInfo, apply_updates
from neuroplastic.rules.eprop import ReadoutGradient
from neuroplastic.rules.signals import LearningSignal
from neuroplastic.spikes import count_events
from neuroplastic.synapses import Dense, Recurrent
from neuroplastic.training.checkpoint import portable, restored
from neuroplastic.training.problem import Problem
from neuroplastic.training.recorded import Recording, fused_recording
from neuroplastic.validation import require_count

__all__ = ["OnlineMethod", "OnlineLearner"]

SETTLE_ROWS = 512  # sample-steps whose loss and events the online mode takes at once


@dataclass(frozen=True)
class OnlineMethod:
    """``layer_rule(readout_decay)`` makes the rule of each spiking layer, ``signal`` is the source of
    its learning signal; ``mode`` and ``apply_every`` say how the trainer runs it by default, and
    ``momentum`` whether its optimizer may keep moving weights whose update is zero."""

    name: str
    layer_rule: Callable[[float], Rule]
    signal: LearningSignal
    mode: str = "sequence"
    apply_every: int | None = None
    filter_readout: bool = True  # filter eligibility traces with the readout's leak κ
    momentum: bool = True  # False: the optimizer writes only the weights the rule changes (event-driven)

    def learner(self, problem: Problem) -> "OnlineLearner":
        return OnlineLearner(problem, self)

    def __post_init__(self):
        if self.mode not in ("online", "sequence"):
            raise ValueError(f"mode must be 'online' or 'sequence', got {self.mode!r}")
        if self.apply_every is not None:
            require_count("apply_every", self.apply_every)
            if self.mode == "sequence":
                raise ValueError("apply_every needs mode='online' (a sequence is applied as a whole)")


class OnlineLearner:
    """Gradients of a network's parameters from an :class:`OnlineMethod`, batch by batch."""

    def __init__(self, problem: Problem, method: OnlineMethod):
        network = problem.network
        if network.dropout.p > 0:
            raise ValueError(f"{method.name} runs the network's own step, without dropout; the network has "
                             f"dropout {network.dropout.p}")
        for layer in network.layers:
            if not hasattr(layer.neuron, "hidden_jacobian"):
                raise ValueError(f"{method.name} needs neurons with eligibility traces (LIF/ALIF), got "
                                 f"{type(layer.neuron).__name__}")
            if not isinstance(layer.synapses, Dense) or not isinstance(layer.recurrent, (Recurrent, type(None))):
                kinds = " and ".join(type(m).__name__ for m in (layer.synapses, layer.recurrent) if m is not None)
                raise ValueError(f"{method.name} learns the weights of Dense and Recurrent synapses only; a layer has "
                                 f"{kinds} (delays and Dale's signs: train with bptt, tbptt or rtrl)")
            if layer.payload is not None:
                raise ValueError(f"{method.name}'s eligibility traces are derived for binary spikes; a layer's spikes "
                                 f"carry a payload ({type(layer.payload).__name__}): train with bptt, tbptt or rtrl")
        self.problem, self.network, self.method = problem, network, method
        self.objective = problem.objective
        self.decay = network.readout.decay if method.filter_readout else 0.0
        self.layer_rules: list[Rule] = [method.layer_rule(self.decay) for _ in network.layers]
        self.readout_rule = ReadoutGradient(network.readout.decay)
        self.fixed = method.signal.init(network, problem.generator)
        self.heads = method.signal.heads(self.fixed)
        self.groups = [_layer_params(layer) for layer in network.layers] + [
            (network.readout.synapses.weight, network.readout.synapses.bias)]
        recurrent = {id(layer.recurrent.parametrizations.weight.original)
                     for layer in network.layers if layer.recurrent is not None}
        self.recurrent = [i for i, p in enumerate(self.params) if id(p) in recurrent]
        self.updates_applied = 0
        self.synops = 0

    @property
    def params(self) -> tuple:
        return tuple(p for group in self.groups for p in group)

    def state_dict(self) -> dict:
        """The learning signal's running state (baseline, threshold, counts, generator, feedback), for
        a checkpoint."""
        return {"signal": portable(self.fixed)}

    def load_state_dict(self, state: dict) -> None:
        self.fixed = restored(self.fixed, state["signal"], self.params[0].device)

    def train_batch(self, inputs, targets, optimizer) -> float:
        """One batch in the method's mode."""
        if self.method.mode == "online":
            return self.online(inputs, targets, optimizer, apply_every=self.method.apply_every)
        return self.sequence(inputs, targets, optimizer)

    def _step(self, state, heads, x, t, steps, count=True):
        y, state, layer_steps = self.network.transition(state, x)
        infos = []
        for layer, step in zip(self.network.layers, layer_steps):
            pre = layer.presynaptic(step.before, step.x)
            psi = layer.neuron.pseudo_derivative(step.before.neuron, step.after.neuron, layer.dt)
            infos.append(StepInfo(t, steps, layer.dt, pre, step.after.z, step.after.neuron.v, psi, layer.neuron))
            if count:
                self.synops += count_events(pre) * layer.size  # on the device: read once per batch
        readout_input = layer_steps[-1].after.z
        if count:
            self.synops += count_events(readout_input) * self.network.readout.size
        heads = [head.step(h, info.post) for head, h, info in zip(self.heads, heads, infos)]
        return Recording(infos, readout_input, y, heads), state

    def _signals(self, recording, targets, steps, t, spike_counts=None):
        """The readout error and each layer's learning signal; ``spike_counts`` (per layer, summed
        over batch and the steps so far) feed the rate regularizer."""
        err, *head_errors = [self._error(y, targets, steps, t) for y in (recording.readout, *recording.head_outputs)]
        psis = [info.psi for info in recording.infos]
        source = self.method.signal
        signals = source.signals(self.fixed, self.network, err, head_errors, psis)
        if self.problem.rate_weight and spike_counts is not None:
            seen = (t + 1 if t is not None else steps) * err.shape[-2]  # steps so far × batch
            unfilter = self._unfilter(steps, t, err)
            signals = [signal + unfilter * self._rate_signal(count / seen, info, steps * err.shape[-2])
                       for signal, count, info in zip(signals, spike_counts, recording.infos)]
        return err, source.finish(self.fixed, signals, psis)

    def _error(self, y, targets, steps, t):
        """The error a readout ``y`` hands the learning signals: the objective's ``∂E/∂y``, or what the
        source makes of it (a reward)."""
        supervised = self.objective.error(y, targets, steps, t)
        if type(self.method.signal).error is LearningSignal.error:  # the supervised error as it is
            return supervised
        weight = self.objective.step_weights(steps, y.shape[-2], t, y.dtype, device=y.device)
        return self.method.signal.error(self.fixed, supervised, y, targets, weight)

    def _unfilter(self, steps, t, like):
        """``1 − κ`` before the last step and 1 on it: what undoes the rules' readout filter for a
        signal constant in time (step ``t``: a number; every step when ``t`` is ``None``: ``(T, 1, 1)``
        of ``like``'s dtype and device)."""
        if t is not None:
            return 1.0 - self.decay + self.decay * float(t == steps - 1)
        last = torch.arange(steps, device=like.device) == steps - 1
        return (1.0 - self.decay + self.decay * last.to(like.dtype))[:, None, None]

    def _rate_signal(self, spikes_per_step, info, samples):
        """``∂(w Σ mean_i (ν_i − ν*)²)/∂z_{t,b,i}`` for the layer of ``info``, ``samples`` = T·B."""
        rate_hz = spikes_per_step * (1000.0 / info.dt)
        weight, target = self.problem.rate_weight, self.problem.rate_target_hz
        return weight * 2.0 * (rate_hz - target) / rate_hz.numel() * (1000.0 / info.dt) / samples

    @torch.no_grad()
    def online(self, inputs, targets, optimizer, *, apply_every: int | None = None) -> float:
        """One batch, step by step; gradients applied every ``apply_every`` steps (or at the end).
        Returns the batch's loss. What no step reads back — the loss, the synaptic events, the sums of
        factorized rules (:class:`~neuroplastic.rules.eprop.TracedSum`) — is taken every
        :data:`SETTLE_ROWS` sample-steps at once, so that nothing grows with the sequence and a step
        costs few operations besides the network's own."""
        steps, batch = inputs.shape[:2]
        state = self.network.init_state((batch,), dtype=inputs.dtype, device=inputs.device)
        heads = [head.init_state(batch, dtype=inputs.dtype, device=inputs.device) for head in self.heads]
        rule_states = [None] * len(self.groups)
        rules, loss = [*self.layer_rules, self.readout_rule], 0.0
        factored, summed = [None] * len(rules), [None] * len(rules)  # per rule: one or the other
        counts = [inputs.new_zeros(layer.size) for layer in self.network.layers]
        pending = []  # the latest steps' recordings, whose loss and events are taken together (_settle)
        for t in range(steps):  # one step's view at a time: nothing here grows with T
            recording, state = self._step(state, heads, inputs[t], t, steps, count=False)
            heads = recording.head_outputs
            pending.append(recording)
            if len(pending) * batch >= SETTLE_ROWS or t == steps - 1:
                loss += self._settle(pending, targets, t + 1, steps)
                pending = []
            if self.problem.rate_weight:  # the rate regularizer's running counts
                counts = [count + info.post.sum(0) for count, info in zip(counts, recording.infos)]
            err, signals = self._signals(recording, targets, steps, t, counts)
            readout_info = StepInfo(t, steps, self.network.layers[-1].dt, recording.readout_input,
                                    recording.readout)
            for i, (rule, info, signal) in enumerate(zip(rules, [*recording.infos, readout_info], [*signals, err])):
                factors = getattr(rule, "factors", None)
                step = None if factors is None else factors(info, rule_states[i], self.groups[i], learning_signal=signal)
                if step is None:
                    update, rule_states[i] = rule.update(info, rule_states[i], self.groups[i], learning_signal=signal)
                    summed[i] = update if summed[i] is None else [a + b for a, b in zip(summed[i], update)]
                else:
                    left, right, rule_states[i] = step
                    if factored[i] is None:
                        factored[i] = rule.factor_sum(info)
                    factored[i].add(left, right)
            if (apply_every is not None and (t + 1) % apply_every == 0) or t == steps - 1:
                grads = [g for i, rule in enumerate(rules) for g in
                         (summed[i] if summed[i] is not None else rule.split(factored[i].take(), self.groups[i]))]
                self.apply(optimizer, self._without_self_connections(grads))
                summed = [None] * len(rules)
        return float(loss)

    def _settle(self, recordings, targets, stop, steps):
        """The loss of the steps ``recordings`` (up to step ``stop``), and their synaptic events counted:
        for many steps at once, as the same sums over a segment."""
        for i, layer in enumerate(self.network.layers):  # on the device: read once per batch
            self.synops += count_events(torch.stack([r.infos[i].pre for r in recordings])) * layer.size
        readout_inputs = torch.stack([r.readout_input for r in recordings])
        self.synops += count_events(readout_inputs) * self.network.readout.size
        segment = Segment(stop - len(recordings), stop, steps)
        return self.objective.loss(torch.stack([r.readout for r in recordings]), targets, segment).detach()

    @torch.no_grad()
    def sequence(self, inputs, targets, optimizer) -> float:
        """One batch, recorded over the whole sequence, the gradients as matrix products over time.
        Returns the batch's loss."""
        grads, loss = self.estimate(inputs, targets)
        self.apply(optimizer, grads)
        return loss.item()

    def estimate(self, inputs, targets, *, count: bool = True) -> tuple[tuple, torch.Tensor]:
        """The method's gradient estimate of one batch's whole sequence (in the order of ``params``; no
        self-connections) and the batch's loss, without applying it: under autograd it is a
        differentiable function of the network's parameters, what a meta-learning loop differentiates
        (:mod:`neuroplastic.outer`). ``count=False`` leaves the counters alone (under ``vmap``)."""
        steps = inputs.shape[0]
        whole = None if self.heads else fused_recording(self.network, inputs)  # in one pass per layer
        if whole is not None and count:
            for layer, info in zip(self.network.layers, whole.infos):
                self.synops += count_events(info.pre) * layer.size
            self.synops += count_events(whole.readout_input) * self.network.readout.size
        if whole is None:
            whole = self._recorded_by_steps(inputs, count)
        counts = [info.post.sum((0, 1)) for info in whole.infos] if self.problem.rate_weight else None
        err, signals = self._signals(whole, targets, steps, None, counts)
        readout_info = StepInfo(0, steps, self.network.layers[-1].dt, whole.readout_input, whole.readout)
        grads = []
        for rule, info, signal, group in zip([*self.layer_rules, self.readout_rule],
                                             [*whole.infos, readout_info], [*signals, err], self.groups):
            grads.extend(rule.sequence_update(info, None, group, learning_signal=signal)[0])
        return self._without_self_connections(grads), self.objective.loss(whole.readout, targets,
                                                                          Segment(0, steps, steps))

    def _recorded_by_steps(self, inputs, count: bool) -> Recording:
        """The whole sequence through the network's one-step ``transition``, stacked."""
        steps, batch = inputs.shape[:2]
        state = self.network.init_state((batch,), dtype=inputs.dtype, device=inputs.device)
        heads = [head.init_state(batch, dtype=inputs.dtype, device=inputs.device) for head in self.heads]
        recordings = []
        for t, x in enumerate(inputs.unbind(0)):
            recording, state = self._step(state, heads, x, t, steps, count)
            heads = recording.head_outputs
            recordings.append(recording)
        return _stack(recordings)

    def _without_self_connections(self, grads) -> tuple:
        """``grads`` with the diagonal of each recurrent weight's zeroed: it is no synapse."""
        return tuple(g.masked_fill(torch.eye(*g.shape, dtype=torch.bool, device=g.device), 0.0)
                     if i in self.recurrent else g for i, g in enumerate(grads))

    def apply(self, optimizer, grads) -> None:
        self.updates_applied += apply_updates(optimizer, self.params, list(grads))


def _layer_params(layer):
    if layer.recurrent is None:
        return (layer.synapses.weight,)
    return (layer.synapses.weight, layer.recurrent.parametrizations.weight.original)


def _stack(recordings: list[Recording]) -> Recording:
    first = recordings[0]
    infos = []
    for i, info in enumerate(first.infos):
        per_step = [r.infos[i] for r in recordings]
        infos.append(info._replace(
            t=0, pre=torch.stack([s.pre for s in per_step]), post=torch.stack([s.post for s in per_step]),
            voltage=torch.stack([s.voltage for s in per_step]), psi=torch.stack([s.psi for s in per_step])))
    return Recording(infos, torch.stack([r.readout_input for r in recordings]),
                     torch.stack([r.readout for r in recordings]),
                     [torch.stack(h) for h in zip(*[r.head_outputs for r in recordings])])
