"""Equilibrium propagation in spikes (after EqSpike, Martin et al. 2021): the layers' integrate-and-fire
spikes carry ρ(s); the relaxation tends to the rate network's fixed point as the traces lengthen; the
update is a product of pre- and postsynaptic traces, and the sum of its per-step changes over the
nudged phase."""
import json

import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.networks import EnergyNetwork, SpikingEnergyNetwork
from neuroplastic.training.eqprop import contrast, nudged_phases, step_updates, trajectory


def batch(seed=2):
    x = torch.rand(6, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    y = torch.nn.functional.one_hot(torch.tensor([0, 4, 1, 3, 2, 0]), 5).double()
    return x, y


def spiking(**options):
    return SpikingEnergyNetwork((12, 20, 5), generator=torch.Generator().manual_seed(1), **options).double()


def test_the_spiking_relaxation_tends_to_the_rate_fixed_point_as_the_traces_lengthen():
    x, _ = batch()
    rate = EnergyNetwork((12, 20, 5), free_steps=300, tolerance=1e-9,
                         generator=torch.Generator().manual_seed(1)).double().relax(x)
    errors = []
    for tau in (5.0, 20.0, 80.0):
        states = spiking(free_steps=int(30 * tau), trace_steps=tau).relax(x)
        errors.append(max(float((a - b).abs().max()) for a, b in zip(states.s, rate)))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 4e-3  # measured: 0.020, 0.011, 0.0024


def test_each_neuron_fires_at_the_rate_rho_of_its_state():
    """Integrate-and-fire: over K steps a neuron fires Σ_t ρ(s_t) spikes, give or take one (its
    accumulator lies in [0, 1) at both ends)."""
    x, _ = batch()
    net = spiking(free_steps=400)
    settled = net.relax(x)
    later = trajectory(net, x, state=settled, steps=200)
    for layer in range(2):
        fired = later[-1].spikes[layer] - settled.spikes[layer]
        expected = torch.stack([s.s[layer] for s in later]).sum(0)  # ρ(s) = s inside [0, 1]
        assert (fired - expected).abs().max() < 1
        assert fired.max() > 20  # the check is not about silent neurons


def test_the_update_is_a_product_of_spike_traces():
    x, y = batch()
    net = spiking()
    free = net.relax(x)
    high, low = nudged_phases(net, x, y, beta=0.5, symmetric=False, free=free)
    grads = contrast(net, x, high, low, 0.5)
    below_high, below_low = x, x
    for layer in range(2):
        hebb = (high.trace[layer].t() @ below_high - free.trace[layer].t() @ below_low) / (0.5 * 6)
        torch.testing.assert_close(grads[layer], -hebb, rtol=1e-10, atol=1e-12)
        below_high, below_low = high.trace[layer], free.trace[layer]


def test_each_steps_update_is_the_change_of_the_synapses_trace_product():
    """Local in time (EqSpike): the update of step t is −Δ(r_post r_preᵀ)/(β B) over that step, from the
    synapse's own traces; no synapse keeps the free phase's product."""
    x, y = batch()
    net = spiking(nudged_steps=15)
    free = net.relax(x)
    steps = step_updates(net, x, y, beta=0.5, free=free, steps=15)
    states = [free, *trajectory(net, x, state=free, steps=15, target=y, beta=0.5)]
    for t, update in enumerate(steps):
        before, after = states[t], states[t + 1]
        below_before, below_after = x, x
        for layer in range(2):
            change = after.trace[layer].t() @ below_after - before.trace[layer].t() @ below_before
            torch.testing.assert_close(update[layer], -change / (0.5 * 6), rtol=1e-10, atol=1e-12)
            below_before, below_after = before.trace[layer], after.trace[layer]
    assert any(float(update[1].abs().max()) > 0 for update in steps)


def test_spiking_relaxations_refuse_a_graph_and_a_closed_form():
    x, _ = batch()
    with pytest.raises(ValueError, match="no gradient"):
        spiking().relax(x, differentiable=True)
    with pytest.raises(ValueError, match="closed-form"):
        spiking().fixed_point(x)
    with pytest.raises(ValueError, match="hard sigmoid"):
        SpikingEnergyNetwork((3, 2), activation="linear")
    with pytest.raises(ValueError, match="trace_steps"):
        SpikingEnergyNetwork((3, 2), trace_steps=0.5)
    readout = spiking()(x.unsqueeze(0)).readout  # with gradients recorded: no graph requested
    assert readout.shape == (1, 6, 5) and not readout.requires_grad


def test_spiking_eqprop_trains_digits_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "digits", "--rule", "eqprop", "--rule-option", "spiking=true", "--hidden", "64",
                 "--batch-size", "128", "--epochs", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.5 and summary["synops"] > 0
    assert main(["train", "--task", "digits", "--rule", "eqprop", "--rule-option", "spiking=maybe", "--epochs", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "spiking" in capsys.readouterr().err and not (tmp_path / "bad").exists()
