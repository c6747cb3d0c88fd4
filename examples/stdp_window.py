"""The STDP window of pair-based STDP, measured through the rule interface, and the frequency
dependence that only triplet STDP reproduces.

**Window** (Bi & Poo 1998; Song, Miller & Abbott 2000). Synapse ``i ← i`` of a 41 × 41 weight matrix
sees one presynaptic spike ``Δt_i`` before a postsynaptic one (Δt from −100 to +100 ms). The rule
runs step by step, as the time loop would call it: ``changes, state = rule.update(StepInfo(...),
state, (W,))``, then ``apply_changes``. Its traces decay exactly, so the measured change equals the
closed-form window ``A+ e^{−Δt/τ+}`` (Δt ≥ 0), ``−A− e^{Δt/τ−}`` (Δt < 0) to rounding.

**Frequency** (Sjöström, Turrigiano & Nelson 2001; Pfister & Gerstner 2006). 60 pre–post pairs
(Δt = +10 ms, or −10 ms) repeated at 1–50 Hz. In the recordings pre-before-post potentiates only at
high frequencies and post-before-pre turns from depression into potentiation at 40–50 Hz: triplet
STDP (visual-cortex parameters) does both, pair STDP neither. Writes stdp_window.png to the working directory.
"""
import matplotlib.pyplot as plt
import torch

from neuroplastic.rules import PairSTDP, StepInfo, TripletSTDP, apply_changes

DT = 0.5  # ms


# The window: one pairing per synapse i <- i, the post spikes at 150 ms, pre spike i Δt_i before them.
stdp = PairSTDP(tau_plus=16.8, tau_minus=33.7, a_plus=0.01, a_minus=0.0105)
delta_t = torch.arange(-100.0, 100.1, 5.0, dtype=torch.float64)
k, steps, post_at = len(delta_t), round(300.0 / DT), round(150.0 / DT)
pre_at = torch.tensor([post_at - round(float(d) / DT) for d in delta_t])
weight, state = torch.zeros(k, k, dtype=torch.float64), None  # W is (n_post, n_pre)
for t in range(steps):
    pre = (pre_at == t).double()[None]  # (B = 1, n_pre)
    post = torch.full((1, k), float(t == post_at), dtype=torch.float64)  # (B = 1, n_post)
    changes, state = stdp.update(StepInfo(t, steps, DT, pre, post), state, (weight,))
    apply_changes((weight,), changes)
change, closed = weight.diagonal(), stdp.window(delta_t)
print(f"window: {len(delta_t)} pairings, largest difference from the closed form "
      f"{(change - closed).abs().max():.1e}")
for d in (-40.0, -10.0, 10.0, 40.0):
    i = int((delta_t == d).nonzero())
    print(f"  Δt = {d:+5.0f} ms: Δw = {change[i]:+.5f} (closed form {closed[i]:+.5f})")

# Frequency dependence: 60 pairings of one synapse at each frequency. Nothing happens between spikes
# but the traces' exact decay, so the rule is driven event by event: one update per spike time, its
# dt the time since the previous one.
def pairings(rule, frequency, lag, count=60):
    pre = [20.0 + n * 1000.0 / frequency for n in range(count)]
    post = [t + lag for t in pre]
    weight, state, last = torch.zeros(1, 1, dtype=torch.float64), None, 0.0
    for n, t in enumerate(sorted(set(pre) | set(post))):
        spikes = [torch.tensor([[float(t in times)]], dtype=torch.float64) for times in (pre, post)]
        changes, state = rule.update(StepInfo(n, 2 * count, t - last, *spikes), state, (weight,))
        apply_changes((weight,), changes)
        last = t
    return float(weight)


frequencies = [1.0, 10.0, 20.0, 40.0, 50.0]
rules = {"pair": PairSTDP(a_plus=0.005, a_minus=0.00525), "triplet": TripletSTDP()}  # triplet: visual cortex
results = {(name, lag): [pairings(rule, f, lag) for f in frequencies]
           for name, rule in rules.items() for lag in (10.0, -10.0)}
print("60 pairings, Δw at " + ", ".join(f"{f:g}" for f in frequencies) + " Hz:")
for (name, lag), row in results.items():
    print(f"  {name:7s} Δt = {lag:+3.0f} ms: " + "  ".join(f"{w:+.4f}" for w in row))
assert (change - closed).abs().max() < 1e-12
assert results["triplet", 10.0][-1] > results["triplet", 10.0][0] and results["triplet", -10.0][-1] > 0

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
left.plot(delta_t, closed, color="0.6", lw=3, label="closed form")
left.plot(delta_t, change, "k.", label="measured")
left.axhline(0, color="0.8", lw=0.8)
left.set(xlabel="Δt = t_post − t_pre (ms)", ylabel="Δw per pairing", title="pair STDP window")
left.legend(frameon=False)
for (name, lag), row in results.items():
    right.plot(frequencies, row, "o-" if name == "triplet" else "s--", label=f"{name}, Δt = {lag:+.0f} ms")
right.axhline(0, color="0.8", lw=0.8)
right.set(xlabel="pairing frequency (Hz)", ylabel="Δw after 60 pairings", title="frequency dependence")
right.legend(frameon=False, fontsize=8)
fig.tight_layout()
fig.savefig("stdp_window.png", dpi=80)
print("wrote stdp_window.png")
