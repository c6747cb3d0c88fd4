"""The network of Song, Miller & Abbott (2000) in Brian2's form: ``N`` Poisson inputs onto one
conductance-based LIF neuron through plastic excitatory synapses (pair STDP, all-to-all, additive,
hard bounds ``[0, g_max]``), simulated two ways that give the same spikes and weights:

- :func:`simulate_steps` — the readable reference: per step the library's pieces in order,
  :class:`~neuroplastic.synapses.ConductanceSynapses` → :class:`~neuroplastic.neurons.ConductanceLIF`
  → ``chain(PairSTDP, bound(0, g_max))``.
- :func:`simulate_events` — the fast path: between two output spikes the neuron is a linear
  time-varying system driven by known input events, so a whole stretch of up to ``chunk`` steps is a
  handful of tensor operations (conductance and voltage by cumulative sums, depression of every input
  event at once); the stretch is cut at the first threshold crossing, which is then handled as one
  step of the reference. No Python work per step or per synapse.

Inputs are Poisson events drawn once (:func:`poisson_events`, geometric inter-spike intervals: the
same process as a Bernoulli draw per step) so both paths see the same spikes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neuroplastic.neurons import ConductanceLIF, ResetTo
from neuroplastic.rules import StepInfo, apply_changes, bound, chain
from neuroplastic.rules.stdp import PairSTDP
from neuroplastic.synapses.conductance import ConductanceSynapses
from neuroplastic.validation import require_count, require_positive

__all__ = ["SongNetwork", "poisson_events", "simulate_steps", "simulate_events"]


@dataclass(frozen=True)
class SongNetwork:
    """Brian2's ``synapses/spike_timing_dependent_plasticity`` example (Song et al. 2000, Fig. 1)."""

    n_inputs: int = 1000
    rate_hz: float = 15.0
    tau_m: float = 10.0
    e_l: float = -74.0
    v_th: float = -54.0
    v_reset: float = -60.0
    e_e: float = 0.0
    tau_e: float = 5.0
    tau_pre: float = 20.0
    tau_post: float = 20.0
    g_max: float = 0.01
    a_plus: float = 0.01  # × g_max
    ratio: float = 1.05  # A− τ− / (A+ τ+)

    def __post_init__(self):
        require_count("n_inputs", self.n_inputs)
        for name in ("rate_hz", "tau_m", "tau_e", "tau_pre", "tau_post", "g_max", "a_plus", "ratio"):
            require_positive(name, getattr(self, name))

    def neuron(self) -> ConductanceLIF:
        return ConductanceLIF(tau_m=self.tau_m, e_l=self.e_l, v_th=self.v_th, reset=ResetTo(self.v_reset),
                              t_ref=0.0, e_e=self.e_e, tau_e=self.tau_e)

    def stdp(self) -> PairSTDP:
        a_plus = self.a_plus * self.g_max
        return PairSTDP(self.tau_pre, self.tau_post, a_plus, a_plus * self.ratio * self.tau_pre / self.tau_post)

    def initial_weights(self, generator) -> torch.Tensor:
        return torch.rand(self.n_inputs, generator=generator, dtype=torch.float64, device=generator.device) * self.g_max


def poisson_events(n: int, rate_hz: float, steps: int, dt: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Poisson spike trains as events ``(step, neuron)`` sorted by step: each step is a Bernoulli
    trial with ``p = rate·dt/1000``, drawn as geometric intervals (on the generator's device)."""
    device = generator.device
    p = rate_hz * dt / 1000.0
    if not 0 < p < 1:
        raise ValueError(f"rate·dt/1000 must lie in (0, 1), got {p}")
    log_q = math.log1p(-p)
    per_neuron = int(steps * p + 6 * math.sqrt(steps * p) + 20)
    times = torch.full((n, 0), -1, dtype=torch.int64, device=device)
    last = torch.full((n,), -1, dtype=torch.int64, device=device)
    while bool((last < steps).any()):
        u = torch.rand(n, per_neuron, generator=generator, dtype=torch.float64, device=device).clamp_min(1e-300)
        gaps = (torch.log(u) / log_q).floor().to(torch.int64) + 1
        block = last[:, None] + gaps.cumsum(1)
        times = torch.cat([times, block], 1)
        last = block[:, -1]
    neuron = torch.arange(n, device=device).repeat_interleave(times.shape[1]).reshape(n, -1)
    keep = times < steps
    step, neuron = times[keep], neuron[keep]
    order = torch.argsort(step, stable=True)
    return step[order], neuron[order]


def _bounds(step_of_event: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.searchsorted(step_of_event, torch.arange(steps + 1, device=step_of_event.device))


def simulate_steps(net: SongNetwork, weights, events, steps: int, dt: float):
    """The reference: one step of synapses, neuron and rule at a time. Returns the final weights and
    the output spike steps (on the CPU)."""
    weights = weights.clone()[None]
    f64 = {"dtype": torch.float64, "device": weights.device}
    synapses, neuron = ConductanceSynapses(weights), net.neuron()
    rule = chain(net.stdp(), bound(0.0, net.g_max))
    state, rule_state = neuron.init_state((1, 1), **f64), rule.init((weights,))
    step_of_event, index = events
    starts, out = _bounds(step_of_event, steps), []
    for t in range(steps):
        pre = torch.zeros(1, net.n_inputs, **f64)
        pre[0, index[starts[t]:starts[t + 1]]] = 1.0
        post, state = neuron.step(state, synapses.drive(pre), dt)
        changes, rule_state = rule.update(StepInfo(t, steps, dt, pre, post), rule_state, (weights,))
        apply_changes((weights,), changes)
        if post.any():
            out.append(t)
    return weights[0], torch.tensor(out, dtype=torch.int64, device="cpu")


def simulate_events(net: SongNetwork, weights, events, steps: int, dt: float, *, chunk: int = 1500,
                    progress=None, snapshot_every: int | None = None):
    """The fast path (see the module docstring); same results as :func:`simulate_steps`.

    Returns ``(weights, output spike steps, snapshots)``, the weights on their device and the steps on
    the CPU; ``snapshots`` holds the weights every ``snapshot_every`` steps (when given). ``progress``
    is called with the number of steps done.
    """
    w = weights.clone().to(torch.float64)
    f64 = {"dtype": torch.float64, "device": w.device}
    stdp, dt = net.stdp(), require_positive("dt", dt)
    q_e, q_m = math.exp(-dt / net.tau_e), dt / net.tau_m
    q_pre, q_post = math.exp(-dt / stdp.tau_plus), math.exp(-dt / stdp.tau_minus)
    v, g, x_post = torch.tensor(net.e_l, **f64), 0.0, 0.0
    x_pre = torch.zeros_like(w)  # the presynaptic traces just after step t0 − 1
    step_of_event, index = events
    starts = _bounds(step_of_event, steps)
    out, snapshots, t0 = [], [], 0
    next_snapshot = snapshot_every or steps + 1
    while t0 < steps:
        t1 = min(t0 + chunk, steps, next_snapshot)
        lo, hi = int(starts[t0]), int(starts[t1])
        e_t, e_j = step_of_event[lo:hi] - t0, index[lo:hi]
        k = t1 - t0
        ramp = torch.arange(1, k + 1, **f64)
        y = x_post * q_post ** ramp  # post trace at each step, before that step's spike
        depression = stdp.a_minus * y[e_t]
        # weight each event sees: w_j less the depressions of j's earlier events in this stretch
        order = torch.argsort(e_j, stable=True)
        j_sorted, d_sorted = e_j[order], depression[order]
        exclusive = d_sorted.cumsum(0) - d_sorted
        first = torch.ones_like(j_sorted, dtype=torch.bool)
        first[1:] = j_sorted[1:] != j_sorted[:-1]
        prior = torch.empty_like(depression)
        prior[order] = exclusive - exclusive[first][first.cumsum(0) - 1]
        seen = (w[e_j] - prior).clamp(min=0.0)
        jumps = torch.zeros(k, **f64).index_add_(0, e_t, seen)
        # conductance at the start of each step's update and the voltage after it
        scale = q_e ** -(ramp - 1)
        G = (g + (jumps * scale).cumsum(0)) / scale
        total = 1.0 + G
        log_p = -q_m * total.cumsum(0)
        target = (net.e_l + G * net.e_e) / total
        b = (1.0 - torch.exp(-q_m * total)) * target
        vs = torch.exp(log_p) * (v + (b * torch.exp(-log_p)).cumsum(0))
        crossed = torch.nonzero(vs >= net.v_th)
        stop = int(crossed[0]) if crossed.numel() else k  # steps [0, stop) pass without a spike
        before = e_t < stop
        w.index_add_(0, e_j[before], -depression[before]).clamp_(min=0.0)
        last = min(stop, k - 1)  # the last step of this stretch that is processed now
        upto = e_t <= last
        x_pre = x_pre * q_pre ** (last + 1)
        x_pre.index_add_(0, e_j[upto], q_pre ** (last - e_t[upto]).to(torch.float64))
        if stop < k:  # the spike step, as one step of the reference rule: depression + potentiation, clipped
            now = e_t == stop
            change = stdp.a_plus * x_pre
            change.index_add_(0, e_j[now], -depression[now])
            w = (w + change).clamp_(0.0, net.g_max)
            g, v, x_post = float(G[stop]) * q_e, torch.tensor(net.v_reset, **f64), float(y[stop]) + 1.0
            out.append(t0 + stop)
            t0 += stop + 1
        else:
            g, v, x_post = float(G[-1]) * q_e, vs[-1], float(y[-1])
            t0 = t1
        if t0 == next_snapshot:
            snapshots.append(w.clone())
            next_snapshot += snapshot_every
        if progress is not None:
            progress(t0)
    return w, torch.tensor(out, dtype=torch.int64, device="cpu"), snapshots
