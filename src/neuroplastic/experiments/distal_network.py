"""The network of Izhikevich (2007), "Solving the distal reward problem through linkage of STDP and
dopamine signaling", Cereb. Cortex 17:2443 — as in the paper's published MATLAB code (``dastdp.m``):

- ``n_exc`` RS and ``n_inh`` FS Izhikevich neurons, each with ``m`` synapses onto random targets
  (excitatory onto any neuron, inhibitory onto excitatory neurons only), conduction delay 1 ms;
  a spike adds the weight to the target's current in the next step. Excitatory weights ``s ∈ [0, 4]``
  start at 1, inhibitory ones are fixed at −1. Thalamic input ``I = 13 (U − ½)`` per neuron and ms.
- Integration as in the code: ``dt = 1`` ms, two 0.5 ms ``v`` steps, then ``u`` with the new ``v``.
- Nearest-spike STDP on excitatory synapses, traces ×0.95 per ms, ``+0.1·0.95^{Δ−1}`` for a post spike
  ``Δ ≥ 1`` ms after the pre spike and ``−0.15·0.95^{−Δ}`` for ``Δ ≤ 0``, accumulated into an
  eligibility ``c`` (the code's ``sd``). Every 10 ms ``s ← clip(s + (0.002 + DA) c, 0, 4)``, then
  ``c ← 0.99 c``. Dopamine ``DA ← 0.995 DA`` per ms, ``+0.5`` per reward.

The same model two ways, tested equal:

- :func:`simulate_steps` — the library's pieces: :class:`~neuroplastic.neurons.Izhikevich` (RS, FS)
  with :class:`HalfStepV`; ``every(10, PairSTDP(nearest))`` on the 1-ms clock, its sum handed to
  ``chain(ThreeFactor(Reward(−0.002), τ_c: 0.99 per 10 ms), bound(0, 4))`` on the 10-ms clock;
  :class:`~neuroplastic.rules.Dopamine` (0.995 per ms) gives ``DA``. ``PairSTDP`` sees the spikes that
  *arrive* (sent one step before) as ``pre``, and ``a− = 0.15/0.95``: that is exactly the window above.
- :func:`simulate_fast` — numpy, event-driven where spikes are sparse: only the synapses of neurons
  that spiked are touched per ms; the dense work (``s``, ``c``) runs once per 10 ms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from neuroplastic.integrators import Integrator
from neuroplastic.neurons.izhikevich import Izhikevich
from neuroplastic.rules import (
    Dopamine,
    StepInfo,
    ThreeFactor,
    apply_changes,
    bound,
    chain,
    every,
)
from neuroplastic.rules.base import Rule
from neuroplastic.rules.modulated import Reward
from neuroplastic.rules.stdp import Nearest, PairSTDP, decay
from neuroplastic.validation import require_count, require_positive

__all__ = ["DistalNetwork", "HalfStepV", "RewardClock", "simulate_fast", "simulate_steps"]

WINDOW = 10  # ms between weight updates (the code's ``mod(t, 10) == 0``)


@dataclass(frozen=True)
class HalfStepV(Integrator):
    """The published scheme: ``v ← v + dt/2 · v̇`` twice, then ``u ← u + dt · u̇(v_new)``."""

    def __call__(self, system, y, current, dt):
        v, u = y
        v = v + dt / 2 * system.derivatives((v, u), current)[0]
        v = v + dt / 2 * system.derivatives((v, u), current)[0]
        return v, u + dt * system.derivatives((v, u), current)[1]


@dataclass(frozen=True)
class Given(Rule):
    """The changes handed in as the signal ``stdp`` (ThreeFactor's source on the 10-ms clock)."""

    def init(self, params):
        return None

    def update(self, info, state, params, *, stdp=None, **signals):
        return stdp, state


@dataclass(frozen=True)
class DistalNetwork:
    """Parameters of the network and its learning (defaults: the paper's code)."""

    n_exc: int = 800
    n_inh: int = 200
    m: int = 100  # synapses per neuron
    s_max: float = 4.0
    s_init: float = 1.0
    noise: float = 13.0  # I = noise · (U − ½)
    a_plus: float = 0.1
    a_minus: float = 0.15
    trace_decay: float = 0.95  # per ms
    eligibility_decay: float = 0.99  # per 10 ms
    da_decay: float = 0.995  # per ms
    da_baseline: float = 0.002
    da_release: float = 0.5
    reward_interval: int = 20  # ms: post within 1 … interval − 1 ms after pre
    reward_delay: tuple = (1001, 3000)  # ms, inclusive

    def __post_init__(self):
        require_count("n_exc", self.n_exc, 2)
        require_count("n_inh", self.n_inh, 0)
        require_count("m", self.m)
        if self.m >= self.n_exc + self.n_inh or (self.n_inh and self.m > self.n_exc):
            raise ValueError(f"m = {self.m} synapses per neuron need more distinct targets")
        for name in ("s_max", "noise", "a_plus", "a_minus", "da_release"):
            require_positive(name, getattr(self, name))
        for name in ("trace_decay", "eligibility_decay", "da_decay"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in (0, 1), got {getattr(self, name)!r}")
        if not 0 <= self.s_init <= self.s_max:
            raise ValueError(f"s_init must lie in [0, s_max], got {self.s_init!r}")
        require_count("reward_interval", self.reward_interval, 2)
        lo, hi = self.reward_delay
        if require_count("reward_delay low", lo) > require_count("reward_delay high", hi):
            raise ValueError(f"reward_delay needs low <= high, got {self.reward_delay!r}")

    def clock(self, post: np.ndarray, target, generator) -> RewardClock:
        return RewardClock(target[0], int(post[target]), generator, interval=self.reward_interval,
                           delay=self.reward_delay, amount=self.da_release)

    @property
    def n(self) -> int:
        return self.n_exc + self.n_inh

    def neurons(self):
        return Izhikevich.preset("RS", integrator=HalfStepV()), Izhikevich.preset("FS", integrator=HalfStepV())

    def stdp(self) -> PairSTDP:
        tau = -1.0 / math.log(self.trace_decay)
        return PairSTDP(tau, tau, self.a_plus, self.a_minus / self.trace_decay, pairing=Nearest())

    def dopamine(self) -> Dopamine:
        return Dopamine(tau=-1.0 / math.log(self.da_decay))

    def modulated(self):
        """On the 10-ms clock (``dt = 10``): ``c ← 0.99 c + ΣΔ``, ``ΔW = (DA + 0.002) c``, bounded."""
        tau_c = -WINDOW / math.log(self.eligibility_decay)
        return chain(ThreeFactor(Given(), Reward(baseline=-self.da_baseline), tau_c=tau_c, eta=1.0 / WINDOW),
                     bound(0.0, self.s_max))

    def targets(self, generator) -> np.ndarray:
        """``(n, m)`` distinct targets per neuron, no autapses; inhibitory rows target excitatory ones."""
        keys = torch.rand(self.n, self.n, generator=generator, dtype=torch.float64, device="cpu")
        keys.fill_diagonal_(2.0)  # never oneself
        keys[self.n_exc:, self.n_exc:] = 3.0  # inhibitory → excitatory only
        return torch.argsort(keys, dim=1)[:, :self.m].numpy()


class RewardClock:
    """The code's reward: when the target's post neuron spikes 1–19 ms after its pre neuron's latest
    spike, a release of ``amount`` is due ``D`` ms later, ``D`` uniform on ``{1001, …, 3000}``
    (``1000 + ceil(2000·rand)``). Several due at once release once (``any(rew == t)``)."""

    def __init__(self, pre: int, post: int, generator, *, interval: int = 20, delay=(1001, 3000),
                 amount: float = 0.5):
        self.pre, self.post, self.generator = pre, post, generator
        self.interval, self.delay, self.amount = interval, delay, amount
        self.last_pre, self.due, self.pairings = -10 ** 9, set(), []

    def observe(self, t: int, fired) -> None:
        """After step ``t``'s spikes (indices ``fired``)."""
        if self.pre in fired:
            self.last_pre = t
        if self.post in fired and 0 < t - self.last_pre < self.interval:
            lo, hi = self.delay
            self.due.add(t + int(torch.randint(lo, hi + 1, (1,), generator=self.generator, device="cpu")))
            self.pairings.append(t)

    def release(self, t: int) -> float:
        if t in self.due:
            self.due.discard(t)
            return self.amount
        return 0.0


def thalamic(net: DistalNetwork, generator, rows: int = 1000) -> torch.Tensor:
    """``rows`` ms of the code's thalamic input ``13 (U − ½)``, shape ``(rows, n)``, on the CPU."""
    return net.noise * (torch.rand(rows, net.n, generator=generator, dtype=torch.float64, device="cpu") - 0.5)


def simulate_steps(net: DistalNetwork, post: np.ndarray, steps: int, seed: int, target=(0, 0)):
    """The reference from the library's pieces. Returns ``(s (n_exc, m), spikes [(t, i)], rewards)``."""
    n, ne, dt = net.n, net.n_exc, 1.0
    gen, reward_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    rows, cols = torch.as_tensor(post), torch.arange(n)[:, None].expand(n, net.m)
    w_e = torch.zeros(n, ne, dtype=torch.float64)
    w_e[rows[:ne], cols[:ne]] = net.s_init
    mask = (w_e > 0).to(torch.float64)
    w_i = torch.zeros(n, n - ne, dtype=torch.float64)
    w_i[rows[ne:], cols[ne:] - ne] = 1.0
    j, k = target
    w_e[post[j, k], j] = 0.0  # the code starts the chosen synapse at 0
    clock = net.clock(post, target, reward_gen)
    rs, fs = net.neurons()
    st_e = rs.init_state((1, ne), dtype=torch.float64)
    st_i = fs.init_state((1, n - ne), dtype=torch.float64)
    stdp, dopamine, modulated = every(WINDOW, net.stdp()), net.dopamine(), net.modulated()
    s_state, m_state, level = stdp.init((w_e,)), modulated.init((w_e,)), dopamine.init()
    prev = torch.zeros(1, n, dtype=torch.float64)
    spikes, releases = [], []
    with torch.no_grad():
        for t in range(steps):
            if t % 1000 == 0:
                noise = thalamic(net, gen)
            current = noise[t % 1000][None] + prev[:, :ne] @ w_e.T - prev[:, ne:] @ w_i.T
            z_e, st_e = rs.step(st_e, current[:, :ne], dt)
            z_i, st_i = fs.step(st_i, current[:, ne:], dt)
            z = torch.cat([z_e, z_i], 1)
            summed, s_state = stdp.update(StepInfo(t, steps, dt, prev[:, :ne], z), s_state, (w_e,))
            r = clock.release(t)
            da, level = dopamine.step(level, torch.tensor(r, dtype=torch.float64), dt)
            if r:
                releases.append(t)
            if summed is not None:
                info = StepInfo(t // WINDOW, steps // WINDOW, WINDOW * dt, prev[:, :ne], z)
                changes, m_state = modulated.update(info, m_state, (w_e,), reward=da, stdp=summed)
                apply_changes((w_e,), (changes[0] * mask,))
            fired = torch.nonzero(z[0]).flatten().tolist()
            spikes += [(t, i) for i in fired]
            clock.observe(t, fired)
            prev = z
    return w_e[rows[:ne], cols[:ne]].numpy(), spikes, releases


def simulate_fast(net: DistalNetwork, post: np.ndarray, steps: int, seed: int, target=(0, 0), *,
                  record_every: int = 1000, progress=None, keep_spikes: bool = False):
    """The fast path (numpy, same results as :func:`simulate_steps`). Returns a dict: ``s``, ``spikes``
    (``[(t, i)]`` when ``keep_spikes``), ``releases``, ``pairings``, ``crossing_step`` (the first update
    with ``s_target ≥ 0.9 s_max``, or None), and per ``record_every`` steps ``record_t``, the target's
    weight, the others' mean and 10/50/90th percentiles and the network's rate (Hz)."""
    n, ne, m = net.n, net.n_exc, net.m
    gen, reward_gen = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    rs, fs = net.neurons()
    a = np.r_[np.full(ne, rs.a), np.full(n - ne, fs.a)]
    b = np.r_[np.full(ne, rs.b), np.full(n - ne, fs.b)]
    c_reset = np.r_[np.full(ne, rs.c), np.full(n - ne, fs.c)]
    d = np.r_[np.full(ne, rs.d), np.full(n - ne, fs.d)]
    v = np.full(n, rs.v_init)
    u = b * v
    post_e, post_i = np.ascontiguousarray(post[:ne]), np.ascontiguousarray(post[ne:])
    s = np.full((ne, m), net.s_init)
    j, k = target
    s[j, k] = 0.0
    s_flat, elig = s.reshape(-1), np.zeros((ne, m))
    e_flat = elig.reshape(-1)
    incoming = np.argsort(post_e.reshape(-1), kind="stable")  # excitatory synapses by target
    bounds = np.searchsorted(post_e.reshape(-1)[incoming], np.arange(n + 1))
    clock = net.clock(post, target, reward_gen)
    stdp, dopamine = net.stdp(), net.dopamine()
    q_da, q_c = decay(dopamine.tau, 1.0), decay(net.modulated().source.tau_c, WINDOW)
    a_plus, a_minus = stdp.a_plus, stdp.a_minus
    table = 20000  # q^k by repeated products, as the traces of the step path decay; q^k ≈ 0 beyond
    q_pow = np.empty(table)
    q_pow[0] = 1.0
    for i in range(1, table):
        q_pow[i] = q_pow[i - 1] * decay(stdp.tau_plus, 1.0)
    q_pow[-1] = 0.0
    last_pre, last_post = np.full(ne, -table), np.full(n, -table)  # arrival steps, spike steps
    fired_e, fired_i = np.empty(0, np.int64), np.empty(0, np.int64)
    da, crossing, count = 0.0, None, 0
    rec = {key: [] for key in ("record_t", "target", "others_mean", "p10", "p50", "p90", "rate_hz")}
    releases, spikes, since = [], [], 0
    for t in range(steps):
        if t % 1000 == 0:
            noise = thalamic(net, gen).numpy()
        current = noise[t % 1000].copy()
        if fired_e.size:
            current += np.bincount(post_e[fired_e].reshape(-1), s[fired_e].reshape(-1), n)
        if fired_i.size:
            current -= np.bincount(post_i[fired_i - ne].reshape(-1), minlength=n)
        v = v + 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + current)
        v = v + 0.5 * (0.04 * v * v + 5.0 * v + 140.0 - u + current)
        u = u + 1.0 * (a * (b * v - u))
        fired = np.flatnonzero(v >= rs.v_peak)
        if fired.size:
            v[fired] = v[fired] - (v[fired] - c_reset[fired])
            u[fired] = u[fired] + d[fired]
            count += fired.size
        # STDP: arrivals (spikes of step t − 1) are ``pre``, this step's spikes ``post``
        if fired_e.size:
            last_pre[fired_e] = t
        if fired.size:
            syn = np.concatenate([incoming[bounds[i]:bounds[i + 1]] for i in fired])
            e_flat[syn] += a_plus * q_pow[np.minimum(t - last_pre[syn // m], table - 1)]
        if fired_e.size:
            elig[fired_e] -= a_minus * q_pow[np.minimum(t - last_post[post_e[fired_e]], table - 1)]
        last_post[fired] = t
        r = clock.release(t)
        da = da * q_da + r
        if r:
            releases.append(t)
        if (t + 1) % WINDOW == 0 or t == steps - 1:  # s ← clip(s + (0.002 + DA) c), c ← 0.99 c
            s_flat += (da + net.da_baseline) * e_flat
            np.clip(s_flat, 0.0, net.s_max, out=s_flat)
            e_flat *= q_c
            if crossing is None and s[j, k] >= 0.9 * net.s_max:
                crossing = t
        fired_list = fired.tolist()
        clock.observe(t, fired_list)
        if keep_spikes:
            spikes += [(t, i) for i in fired_list]
        fired_e, fired_i = fired[fired < ne], fired[fired >= ne]
        if (t + 1) % record_every == 0 or t == steps - 1:
            others = np.delete(s_flat, j * m + k)
            rec["record_t"].append(t + 1)
            rec["target"].append(float(s[j, k]))
            rec["others_mean"].append(float(others.mean()))
            for p, value in zip((10, 50, 90), np.percentile(others, (10, 50, 90))):
                rec[f"p{p}"].append(float(value))
            rec["rate_hz"].append(1000.0 * count / n / (t + 1 - since))
            count, since = 0, t + 1
            if progress is not None:
                progress(t + 1)
    return {"s": s, "spikes": spikes, "releases": releases, "pairings": clock.pairings, "crossing_step": crossing, **rec}
