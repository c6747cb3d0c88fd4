"""f-I curve of a leaky integrate-and-fire neuron: the simulation against the closed form.

A LIF neuron (τ_m = 20 ms, rest 0 mV, threshold 20 mV, reset to 10 mV, 2 ms refractory) under
constant currents: every current is one neuron of the same batched run. Its rate in closed form
(Gerstner et al., *Neuronal Dynamics*, 2014, ch. 1) is

    ν = [t_ref + τ_m ln((RI − V_r) / (RI − ϑ))]⁻¹   for RI > ϑ, else 0.

In discrete time a neuron can only fire on whole steps, so each simulated interspike interval is
within one step of the closed form's. Writes fi_curve.png to the working directory.
"""
import math

import matplotlib.pyplot as plt
import torch

from neuroplastic import LIF, ResetTo, run, spike_times, step_current

TAU, THETA, RESET, T_REF, DT = 20.0, 20.0, 10.0, 2.0, 0.1


def closed_form(current: float) -> float:
    if current <= THETA:
        return 0.0
    return 1000.0 / (T_REF + TAU * math.log((current - RESET) / (current - THETA)))


lif = LIF(tau_m=TAU, e_l=0.0, v_th=THETA, reset=ResetTo(RESET), t_ref=T_REF)  # R = 1: RI in mV
currents = torch.linspace(10.0, 60.0, 51, dtype=torch.float64)
result = run(lif, step_current(currents, 1000.0, DT), DT)  # one neuron per current, all at once
isi = [times[1:] - times[:-1] for times in spike_times(result.spikes, DT)]  # ms, per neuron
simulated = torch.tensor([1000.0 / gaps.mean() if len(gaps) else 0.0 for gaps in isi])  # Hz
expected = torch.tensor([closed_form(float(i)) for i in currents], dtype=torch.float64)

print(" I (mV)  simulated (Hz)  closed form (Hz)")
for i in range(0, len(currents), 10):
    print(f"{currents[i]:7.1f}  {simulated[i]:14.2f}  {expected[i]:16.2f}")
firing = expected > 0
isi_error = (1000.0 / simulated[firing] - 1000.0 / expected[firing]).abs().max()
print(f"largest interspike-interval error: {isi_error:.3f} ms (one step is {DT} ms)")
assert isi_error <= DT + 1e-9

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(currents, expected, color="0.6", lw=3, label="closed form")
ax.plot(currents, simulated, "k.", label=f"simulated, dt = {DT} ms")
ax.set(xlabel="R·I (mV)", ylabel="rate (Hz)", title="LIF f-I curve")
ax.legend(frameon=False)
fig.tight_layout()
fig.savefig("fi_curve.png", dpi=80)
print("wrote fi_curve.png")
