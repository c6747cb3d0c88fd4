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


def test_each_layer_fires_at_the_rate_rho_of_its_state():
    """Integrate-and-fire: over K steps at (nearly) settled states a neuron fires ⌊K ρ(s)⌋ or ⌈K ρ(s)⌉
    spikes (up to the states' residual motion)."""
    x, _ = batch()
    net = spiking(free_steps=400)
    settled = net.relax(x)
    later = trajectory(net, x, state=settled, steps=200)
    for layer in range(2):
        fired = later[-1].spikes[layer] - settled.spikes[layer]
        expected = (200 * torch.stack([s.s[layer] for s in later]).mean(0)).sum(-1)  # ρ = s inside [0, 1]
        assert (fired - expected).abs().max() <= net.sizes[layer + 1] * 0.05 + 1


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


@pytest.mark.parametrize("kind", [EnergyNetwork, SpikingEnergyNetwork])
def test_the_per_step_updates_sum_to_the_phases_contrast(kind):
    """Local in time: the per-step changes of the synapses' products over the nudged phase add up to the
    difference between its end and the free state (no synapse needs to keep the free product)."""
    x, y = batch()
    net = kind((12, 20, 5), nudged_steps=15, generator=torch.Generator().manual_seed(1)).double()
    free = net.relax(x)
    steps = step_updates(net, x, y, beta=0.5, free=free, steps=15)
    nudged = trajectory(net, x, state=free, steps=15, target=y, beta=0.5)[-1]
    for whole, *parts in zip(contrast(net, x, nudged, free, 0.5), *steps):
        torch.testing.assert_close(sum(parts), whole, rtol=1e-10, atol=1e-12)


def test_spiking_relaxations_refuse_a_graph_and_a_closed_form():
    x, _ = batch()
    with pytest.raises(ValueError, match="no gradient"):
        spiking().relax(x, differentiable=True)
    with pytest.raises(ValueError, match="closed-form"):
        spiking().fixed_point(x)
    with pytest.raises(ValueError, match="hard sigmoid"):
        SpikingEnergyNetwork((3, 2), activation="linear")
    with pytest.raises(ValueError, match="trace_steps"):
        SpikingEnergyNetwork((3, 2), trace_steps=0.0)


def test_spiking_eqprop_trains_digits_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "digits", "--rule", "eqprop", "--rule-option", "spiking=true", "--hidden", "64",
                 "--batch-size", "128", "--epochs", "1", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] > 0.5 and summary["synops"] > 0
    assert main(["train", "--task", "digits", "--rule", "eqprop", "--rule-option", "spiking=maybe", "--epochs", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "spiking" in capsys.readouterr().err and not (tmp_path / "bad").exists()
