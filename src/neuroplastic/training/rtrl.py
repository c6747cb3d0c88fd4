"""Exact real-time recurrent learning (Williams & Zipser 1989, "A learning algorithm for continually
running fully recurrent neural networks", Neural Comput. 1:270) for small :class:`SpikingNetwork` s.

With ``h_t`` the whole state of the network after step ``t`` — every tensor of its
:class:`NetworkState` that carries over (each layer's neuron state and last spikes, the readout
``y_t``), flattened — and ``θ`` all its trainable parameters, one step is ``h_t = f(h_{t−1}, x_t; θ)``
(``SpikingNetwork.step``, the one step function). RTRL carries the sensitivity ``M_t = dh_t/dθ``
forward in time::

    M_t = (∂h_t/∂h_{t−1}) M_{t−1} + ∂h_t/∂θ,        M_{−1} = 0
    dE/dθ = Σ_t (∂E_t/∂h_t) M_t = Σ_t (∂E/∂y_t) M^y_t

``∂E/∂y_t`` is the objective's error (``objective.error``), ``M^y_t`` the rows of ``M_t`` that belong
to the readout. Both Jacobians of a step come from ``torch.func``: ``jacrev`` of the step
(``functional_call`` on the network with a flat parameter vector), ``vmap``-ed over the batch, whose
samples evolve independently. Nothing is dropped, so the sum equals autograd BPTT through the same
steps (surrogate spikes included) to rounding error — tested in float64.

**Cost.** ``M`` holds ``B × S × P`` numbers (batch × state size × parameters) and each step costs
``S`` vector-Jacobian products and a ``(S × S)·(S × P)`` product per sample: O(n³)–O(n⁴) for ``n``
recurrent neurons. The learner refuses (``ValueError`` naming the sizes) when ``B·S·P`` exceeds
``max_sensitivity``. It is an exact reference for small networks, not a training method for large ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.utils._pytree import tree_flatten, tree_unflatten

from neuroplastic.networks import SpikingNetwork
from neuroplastic.rules.base import apply_updates
from neuroplastic.spikes import count_events
from neuroplastic.training.problem import Problem
from neuroplastic.validation import require_count

__all__ = ["RTRLMethod", "RTRLLearner"]


@dataclass(frozen=True)
class RTRLMethod:
    """Exact real-time recurrent learning (:class:`RTRLLearner`); small networks only."""

    name: str = "rtrl"
    apply_every: int | None = None
    max_sensitivity: int = 2**24

    def learner(self, problem: Problem) -> "RTRLLearner":
        if problem.rate_weight:
            raise ValueError("rtrl learns the task loss only; set the recipe's rate_weight to 0")
        return RTRLLearner(problem, max_sensitivity=self.max_sensitivity, apply_every=self.apply_every)


class _Step(nn.Module):
    """``network.step`` as a module's forward, for ``functional_call``."""

    def __init__(self, network: SpikingNetwork):
        super().__init__()
        self.network = network

    def forward(self, state, x):
        return self.network.step(state, x)[1]


class RTRLLearner:
    """Exact gradients of ``network``'s trainable parameters by forward sensitivities, batch by batch.

    A learner (:mod:`~neuroplastic.training.problem`): ``params``, ``train_batch`` (:meth:`online` with
    the method's ``apply_every``), ``updates_applied`` (weights changed) and ``synops`` (presynaptic
    spikes × fan-out, per layer and readout, summed over the steps run).
    """

    def __init__(self, problem: Problem, *, max_sensitivity: int = 2**24, apply_every: int | None = None):
        network = problem.network
        if network.dropout.p > 0:
            raise ValueError(f"RTRL needs a deterministic step; the network has dropout {network.dropout.p}")
        self.network, self.objective, self.apply_every = network, problem.objective, apply_every
        self.max_sensitivity = require_count("max_sensitivity", max_sensitivity)
        named = [(name, p) for name, p in network.named_parameters() if p.requires_grad]
        self._names = [f"network.{name}" for name, _ in named]
        self.params = tuple(p for _, p in named)
        self._module = _Step(network)
        self._leaves, self._structure = tree_flatten(network.init_state((1,)))
        self._state_sizes = [leaf.numel() for leaf in self._leaves]
        self.state_size = sum(self._state_sizes)
        self.param_count = sum(p.numel() for p in self.params)
        self._check(1)
        self._jacobians = vmap(jacrev(self._flat_step, argnums=(0, 1), has_aux=True), in_dims=(None, 0, 0))
        self.updates_applied = 0
        self.synops = 0

    def _check(self, batch: int) -> None:
        entries = batch * self.state_size * self.param_count
        if entries > self.max_sensitivity:
            raise ValueError(
                f"RTRL sensitivity too large: batch {batch} × state {self.state_size} × parameters "
                f"{self.param_count} = {entries} entries > max_sensitivity = {self.max_sensitivity} "
                "(memory grows as state × parameters: use a smaller network or batch)")

    def _flatten(self, state) -> torch.Tensor:
        return torch.cat([leaf.reshape(leaf.shape[0], -1) for leaf in tree_flatten(state)[0]], -1)

    def _unflatten(self, flat: torch.Tensor):
        pieces = flat.split(self._state_sizes, -1)
        shaped = [p.reshape(flat.shape[0], *t.shape[1:]) for p, t in zip(pieces, self._leaves)]
        return tree_unflatten(shaped, self._structure)

    def _flat_step(self, theta: torch.Tensor, h: torch.Tensor, x: torch.Tensor):
        """One sample's step ``h_t = f(h_{t−1}, x_t; θ)`` on flat vectors (``θ`` ``(P,)``, ``h`` ``(S,)``)."""
        pieces = theta.split([p.numel() for p in self.params])
        params = {name: piece.view_as(p) for name, piece, p in zip(self._names, pieces, self.params)}
        new = self._flatten(functional_call(self._module, params, (self._unflatten(h[None]), x[None])))[0]
        return new, new

    def _count_synops(self, old, new, x) -> None:
        for layer, before, after in zip(self.network.layers, old.layers, new.layers):
            pre = count_events(x) + (count_events(before.z) if layer.recurrent is not None else 0)
            self.synops += pre * layer.size  # on the device: read once per batch
            x = after.z
        self.synops += count_events(x) * self.network.readout.size

    def train_batch(self, inputs, targets, optimizer) -> float:
        return self.online(inputs, targets, optimizer, apply_every=self.apply_every)

    @torch.no_grad()
    def online(self, inputs, targets, optimizer, *, apply_every: int | None = None) -> float:
        """One batch ``inputs`` ``(T, B, n_in)``, step by step, carrying ``M_t``; the accumulated
        gradient is applied every ``apply_every`` steps (or at the end). Returns the batch's loss."""
        if inputs.dim() != 3 or inputs.shape[-1] != self.network.layers[0].synapses.n_in:
            raise ValueError(f"RTRL inputs must be (T, B, {self.network.layers[0].synapses.n_in}), got "
                             f"shape {tuple(inputs.shape)}")
        if apply_every is not None:
            require_count("apply_every", apply_every)
        steps, batch = inputs.shape[:2]
        self._check(batch)
        n_out = self.network.readout.size
        state = self.network.init_state((batch,), dtype=inputs.dtype, device=inputs.device)
        h = self._flatten(state)
        sensitivity = inputs.new_zeros(batch, self.state_size, self.param_count)
        total, loss = None, 0.0
        for t in range(steps):
            theta = torch.cat([p.detach().reshape(-1) for p in self.params]).to(inputs.dtype)
            (d_theta, d_h), h = self._jacobians(theta, h, inputs[t])
            sensitivity = torch.bmm(d_h, sensitivity) + d_theta
            new_state = self._unflatten(h)
            self._count_synops(state, new_state, inputs[t])
            state = new_state
            y = state.readout
            loss += self.objective.step_loss(y, targets, steps, t)
            err = self.objective.error(y, targets, steps, t)
            grad = torch.einsum("bc,bcp->p", err, sensitivity[:, -n_out:])
            total = grad if total is None else total + grad
            if (apply_every is not None and (t + 1) % apply_every == 0) or t == steps - 1:
                self.apply(optimizer, total)
                total = None
        return float(loss)

    def apply(self, optimizer, flat_grad: torch.Tensor) -> None:
        grads = [g.view_as(p).to(p.dtype).clone()
                 for g, p in zip(flat_grad.split([p.numel() for p in self.params]), self.params)]
        self.updates_applied += apply_updates(optimizer, self.params, grads)
