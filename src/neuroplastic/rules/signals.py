"""Learning signals: where the third factor ``L_t`` of a three-factor rule comes from.

A source maps the readout error ``err_t = ∂E/∂y_t`` ``(…, C)`` (and, for local losses, the errors
of extra fixed readouts) to one learning signal ``L^l_t`` ``(…, n_l)`` per spiking layer ``l``. All
maps are matrix products on the last dimension, so the same code serves one step ``(B, ·)`` and a
whole sequence ``(T, B, ·)``. With layer 1 at the bottom and ``L`` at the top:

- :class:`Symmetric` — backpropagation through the layers at the same step (spatial BP):
  ``L^L = err W_out``, ``L^l = (L^{l+1} ⊙ ψ^{l+1}) W^{l+1}``. On one layer: symmetric e-prop.
- :class:`RandomFeedback` — feedback alignment (Lillicrap et al. 2016, Nat. Commun. 7:13276): the
  same with fixed random matrices ``B`` in place of the transposed forward weights. On one layer:
  random e-prop; ``adaptive=True`` moves the top matrix with the readout's own changes
  (``B = B₀ + W_out − W_out⁰``: adaptive e-prop, Bellec et al. 2020).
- :class:`DirectFeedback` — direct feedback alignment (Nøkland 2016, NeurIPS): ``L^l = err B^l``.
- :class:`Reinforce` — reinforcement instead of supervision (REINFORCE, Williams 1992; e-prop's
  reward-based form, Bellec et al. 2020): the readout is a policy, an action is sampled, and the error
  handed to ``inner`` is ``−(r − b)(onehot(a) − π)`` with reward ``r`` and a running baseline ``b``.
- :class:`LocalReadouts` — DECOLLE (Kaiser, Mostafa & Neftci 2020, Front. Neurosci. 14:424): each
  hidden layer has a fixed random leaky readout of its own and learns from the error of that
  readout, ``L^l = err^l G^l``; the top layer learns from the network's readout.

Feedback matrices ``B`` stand for forward weights and are drawn at their scale,
``U(−1/√n, 1/√n)`` with ``n`` the size of the layer the signal goes to (the fan-in of the forward
matrix it replaces), from the generator given to ``init``: the task's error then enters at the same
size as with symmetric feedback, next to other signals such as the rate regularizer's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neuroplastic.devices import generator_on
from neuroplastic.networks import LeakyReadout, SpikingNetwork
from neuroplastic.validation import require_finite

__all__ = ["LearningSignal", "Symmetric", "RandomFeedback", "DirectFeedback", "LocalReadouts", "Quantized",
           "Reinforce", "SIGNALS"]


def _random(rows: int, cols: int, generator, like: torch.Tensor) -> torch.Tensor:
    """A ``(rows, cols)`` feedback matrix, drawn like forward weights of fan-in ``cols`` (on the CPU,
    so a seed gives the same matrix everywhere), then put in ``like``'s dtype and device."""
    bound = 1.0 / math.sqrt(cols)
    return ((2.0 * torch.rand(rows, cols, generator=generator, device="cpu") - 1.0) * bound).to(like)


def _forward_weights(network: SpikingNetwork):
    """``W^{l+1}`` restricted to the input columns, for every layer but the first."""
    return [layer.synapses.weight for layer in network.layers[1:]]


class LearningSignal:
    """A source of learning signals. ``init`` draws what is fixed (feedback matrices, readouts)."""

    def init(self, network: SpikingNetwork, generator: torch.Generator | None = None):
        return None

    def heads(self, fixed) -> list[LeakyReadout]:
        """Extra readouts, one per hidden layer below the top, whose errors ``signals`` receives."""
        return []

    def error(self, fixed, supervised, y, targets, weight):
        """The error of a readout ``y`` that the signals start from: the supervised ``∂E/∂y``
        (``weight``: each step's weight in a classification loss, ``None`` for regression)."""
        return supervised

    def signals(self, fixed, network, err, head_errors, psis):
        raise NotImplementedError

    def finish(self, fixed, signals, psis):
        """The last say on each layer's total signal, after the learner added its own terms (the rate
        regularizer's): error-triggered learning quantizes here."""
        return signals


def _propagate(top, backward, psis):
    """``L^L = top``; ``L^l = (L^{l+1} ⊙ ψ^{l+1}) B^l`` for ``backward[l]`` of shape ``(n_{l+1}, n_l)``."""
    signals = [top]
    for matrix, psi in zip(reversed(backward), reversed(psis[1:])):
        signals.append((signals[-1] * psi) @ matrix)
    return signals[::-1]


@dataclass(frozen=True)
class Symmetric(LearningSignal):
    def signals(self, fixed, network, err, head_errors, psis):
        return _propagate(err @ network.readout.synapses.weight, _forward_weights(network), psis)


@dataclass(frozen=True)
class RandomFeedback(LearningSignal):
    adaptive: bool = False

    def init(self, network, generator=None):
        like = network.readout.synapses.weight
        sizes = [layer.size for layer in network.layers]
        top = _random(network.readout.size, sizes[-1], generator, like)
        below = [_random(n_above, n, generator, like) for n, n_above in zip(sizes[:-1], sizes[1:])]
        return {"top": top, "below": below, "readout0": network.readout.synapses.weight.detach().clone()}

    def signals(self, fixed, network, err, head_errors, psis):
        top = fixed["top"]
        if self.adaptive:
            top = top + network.readout.synapses.weight.detach() - fixed["readout0"]
        return _propagate(err @ top, fixed["below"], psis)


@dataclass(frozen=True)
class DirectFeedback(LearningSignal):
    def init(self, network, generator=None):
        like = network.readout.synapses.weight
        return [_random(network.readout.size, layer.size, generator, like) for layer in network.layers]

    def signals(self, fixed, network, err, head_errors, psis):
        return [err @ matrix for matrix in fixed]


@dataclass(frozen=True)
class LocalReadouts(LearningSignal):
    def init(self, network, generator=None):
        readout = network.readout
        heads = []
        for layer in network.layers[:-1]:
            head = LeakyReadout(layer.size, readout.size, dt=1.0, generator=generator)
            head.decay = readout.decay  # the same leak as the network's readout
            head.requires_grad_(False)
            heads.append(head.to(readout.synapses.weight))  # its dtype and device
        return heads

    def heads(self, fixed):
        return fixed

    def signals(self, fixed, network, err, head_errors, psis):
        local = [e @ head.synapses.weight for e, head in zip(head_errors, fixed)]
        return local + [err @ network.readout.synapses.weight]


@dataclass(frozen=True)
class Reinforce(LearningSignal):
    """Learning from a reward instead of a label. At each step of the loss window the readout is a
    policy ``π = softmax(y)``; an action ``a ~ π`` is drawn, the reward is ``r = 1`` if ``a`` is the
    label and 0 otherwise, and the error becomes ``δ = −(r − b)(onehot(a) − π)``, weighted like the
    supervised loss: its mean over actions is ``−∂E[r]/∂y`` for ``b = 0``, and the baseline ``b``
    (a running mean of the reward, ``b ← d·b + (1 − d)·r̄``, updated after each use) only lowers its
    variance. ``inner`` carries the error to the layers (default: direct random feedback). The
    baseline moves once per step online and once per sequence in the whole-sequence mode, so the two
    modes differ here (the one source where they do); local readouts of ``inner`` draw their own
    actions and share the baseline."""

    inner: LearningSignal = DirectFeedback()
    baseline_decay: float = 0.99

    def __post_init__(self):
        if not 0.0 <= require_finite("baseline_decay", self.baseline_decay) < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {self.baseline_decay}")

    def init(self, network, generator=None):
        device = network.readout.synapses.weight.device  # actions are drawn at every step: there
        return {"inner": self.inner.init(network, generator), "baseline": 0.0,
                "generator": generator_on(device, generator)}

    def heads(self, fixed):
        return self.inner.heads(fixed["inner"])

    def error(self, fixed, supervised, y, targets, weight):
        if weight is None:
            raise ValueError("reward learning needs a classification task (a label to reward)")
        policy = torch.softmax(y, -1)
        flat = policy.reshape(-1, policy.shape[-1])
        action = torch.multinomial(flat, 1, generator=fixed["generator"]).reshape(policy.shape[:-1])
        reward = (action == targets).to(y.dtype)
        onehot = torch.nn.functional.one_hot(action, policy.shape[-1]).to(y.dtype)
        delta = -(reward - fixed["baseline"]).unsqueeze(-1) * (onehot - policy) * weight  # the old baseline
        inside = (weight > 0).reshape(weight.shape[:-1]).expand_as(reward).to(y.dtype)  # the loss window
        seen = inside.sum()  # the baseline moves where the window holds steps: kept on the device
        mean = (reward * inside).sum() / seen.clamp(min=1.0)
        moved = self.baseline_decay * fixed["baseline"] + (1.0 - self.baseline_decay) * mean
        fixed["baseline"] = torch.where(seen > 0, moved, fixed["baseline"])
        return delta

    def signals(self, fixed, network, err, head_errors, psis):
        return self.inner.signals(fixed["inner"], network, err, head_errors, psis)

    def finish(self, fixed, signals, psis):
        return self.inner.finish(fixed["inner"], signals, psis)


SIGNALS = {"symmetric": Symmetric, "random": RandomFeedback, "adaptive": lambda: RandomFeedback(True),
           "direct": DirectFeedback, "local": LocalReadouts}


@dataclass(frozen=True)
class Quantized(LearningSignal):
    """Error-triggered learning (Payvand, Fouda, Kurdahi, Eltawil & Neftci 2020, "On-chip
    error-triggered learning of multi-layer memristive spiking neural networks", IEEE JETCAS;
    arXiv 2011.10852): the learning signal ``δ`` of ``inner`` is quantized to
    ``θ · sign(δ) · ⌊|δ|/θ⌋`` — zero, and so no update, unless the error exceeds ``θ``; with the
    threshold near the error's scale the signal is ternary, ``{−θ, 0, θ}``. After each step a
    proportional controller moves ``θ`` towards the ``target_rate`` of neurons triggering an update:
    ``log θ ← log θ + gain · (rate − target_rate)`` — after every step online, after every sequence in
    the whole-sequence mode (θ fixed within it). ``θ → 0`` gives back ``inner`` exactly. The whole
    signal is quantized, the rate regularizer's share included, so nothing bypasses the trigger."""

    inner: LearningSignal
    threshold: float = 1e-3
    target_rate: float = 0.05
    gain: float = 0.5

    def __post_init__(self):
        if not (math.isfinite(require_finite("error-triggered threshold", self.threshold)) and self.threshold > 0):
            raise ValueError(f"error-triggered threshold must be finite and positive, got {self.threshold}")
        if not (math.isfinite(require_finite("error-triggered gain", self.gain)) and self.gain >= 0):
            raise ValueError(f"error-triggered gain must be finite and non-negative, got {self.gain}")
        if not 0.0 < require_finite("target_rate", self.target_rate) < 1.0:
            raise ValueError(f"target_rate must lie in (0, 1), got {self.target_rate}")

    def init(self, network, generator=None):
        return {"inner": self.inner.init(network, generator), "threshold": self.threshold,
                "triggered": 0, "events": 0}

    def heads(self, fixed):
        return self.inner.heads(fixed["inner"])

    def error(self, fixed, supervised, y, targets, weight):
        return self.inner.error(fixed["inner"], supervised, y, targets, weight)

    def signals(self, fixed, network, err, head_errors, psis):
        return self.inner.signals(fixed["inner"], network, err, head_errors, psis)

    def finish(self, fixed, signals, psis):
        theta = fixed["threshold"]  # a number, then a tensor on the signals' device: never read back per step
        out, triggered, events = [], 0, 0
        for signal, psi in zip(self.inner.finish(fixed["inner"], signals, psis), psis):
            quantized = theta * torch.sign(signal) * torch.floor(signal.abs() / theta)
            out.append(quantized)
            triggered += torch.count_nonzero(quantized * psi)
            events += psi.numel()
        fixed["triggered"] += triggered
        fixed["events"] += events
        if self.gain:
            fixed["threshold"] = theta * torch.exp(self.gain * (triggered.float() / events - self.target_rate))
        return out
