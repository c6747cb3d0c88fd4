"""Event-driven conductance synapses with Dale's law, for the plasticity experiments.

A presynaptic spike of neuron ``j`` makes the conductance of every postsynaptic neuron ``i`` jump by
``W_ij`` (relative to the leak conductance), in the excitatory channel when ``j`` is excitatory and in
the inhibitory channel otherwise (Dale's principle: a neuron's synapses share one transmitter; see
:mod:`neuroplastic.synapses.dale`). ``W`` holds non-negative magnitudes ``(n_post, n_pre)``; the first
``n_excitatory`` presynaptic neurons are excitatory. The jumps feed
:class:`~neuroplastic.neurons.ConductanceLIF` through :meth:`ConductanceSynapses.drive`, which decays
its conductances ``g_e``, ``g_i`` with τ_e, τ_i — the synapses themselves are stateless.

Event-driven: only the columns of presynaptic neurons that spiked in the step are read
(``W[:, active] · s[active]``), so a step costs O(n_post × active) instead of O(n_post × n_pre); with
many active inputs one dense product is used instead. Both give the same sums.

They follow the synapse protocol (:class:`~neuroplastic.synapses.protocol.Stateless`): called on
spikes ``(…, n_pre)`` of any leading shape (one step, or a whole sequence) they return the
ConductanceLIF input ``(…, n_post, 3)``, so a ``SpikingLayer`` of ``ConductanceLIF`` neurons can use
them as its synapses.

Plasticity rules change ``weight`` in place (``apply_changes((syn.weight,), changes)``); keep them
inside ``[0, w_max]`` with ``bound`` so that no magnitude turns negative (:meth:`check` verifies).
"""
from __future__ import annotations

import torch

from neuroplastic.neurons.conductance_lif import conductance_input
from neuroplastic.synapses.dale import excitatory_count
from neuroplastic.synapses.protocol import Stateless
from neuroplastic.validation import require_finite_tensor

__all__ = ["ConductanceSynapses"]


class ConductanceSynapses(Stateless):
    """Conductance jumps ``(g_e, g_i)`` onto ``n_post`` neurons from spikes of ``n_pre`` neurons."""

    def __init__(self, weight: torch.Tensor, *, n_excitatory: int | None = None,
                 excitatory_fraction: float | None = None, dense_fraction: float = 0.1):
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError("ConductanceSynapses weight must be a matrix (n_post, n_pre)")
        if n_excitatory is None and excitatory_fraction is None:
            n_excitatory = weight.shape[1]  # all excitatory unless told otherwise
        self.weight = weight
        self.n_excitatory = excitatory_count(weight.shape[1], excitatory_fraction, n_excitatory)
        self.dense_fraction = dense_fraction
        self.check()

    @property
    def n_pre(self) -> int:
        return self.weight.shape[1]

    @property
    def n_post(self) -> int:
        return self.weight.shape[0]

    def check(self) -> None:
        """A clear error if a magnitude is negative or not finite."""
        require_finite_tensor("ConductanceSynapses weight", self.weight)
        if (self.weight < 0).any():
            raise ValueError("ConductanceSynapses weight holds magnitudes and must be >= 0 (Dale's law: "
                             "the sign comes from the presynaptic neuron's type)")

    def jumps(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Δg_e, Δg_i)`` of shape ``(B, n_post)`` for presynaptic spikes ``(B, n_pre)``."""
        if spikes.dim() != 2 or spikes.shape[1] != self.n_pre:
            raise ValueError(f"presynaptic spikes must be (B, {self.n_pre}), got {tuple(spikes.shape)}")
        spikes = spikes.to(self.weight.dtype)
        active = torch.nonzero(spikes.any(0)).flatten()
        if active.numel() > self.dense_fraction * self.n_pre:
            total_e = spikes[:, :self.n_excitatory] @ self.weight[:, :self.n_excitatory].T
            total_i = spikes[:, self.n_excitatory:] @ self.weight[:, self.n_excitatory:].T
            return total_e, total_i
        excitatory = active < self.n_excitatory
        columns_e, columns_i = active[excitatory], active[~excitatory]
        g_e = spikes[:, columns_e] @ self.weight[:, columns_e].T
        g_i = spikes[:, columns_i] @ self.weight[:, columns_i].T
        return g_e, g_i

    def __call__(self, spikes: torch.Tensor) -> torch.Tensor:
        """:meth:`drive` of spikes ``(…, n_pre)`` of any leading shape: ``(…, n_post, 3)``."""
        flat = self.drive(spikes.reshape(-1, spikes.shape[-1]))
        return flat.reshape(*spikes.shape[:-1], *flat.shape[1:])

    def drive(self, spikes: torch.Tensor, current=0.0) -> torch.Tensor:
        """The :class:`~neuroplastic.neurons.ConductanceLIF` input ``(B, n_post, 3)`` for these spikes."""
        g_e, g_i = self.jumps(spikes)
        current = torch.as_tensor(current, dtype=g_e.dtype, device=g_e.device).expand_as(g_e)
        return conductance_input(current, g_e, g_i)
