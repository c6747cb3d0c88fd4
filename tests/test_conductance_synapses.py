"""Event-driven conductance synapses: the same sums as dense products, Dale's channels, bad input."""
import pytest
import torch

from neuroplastic.neurons import ConductanceLIF
from neuroplastic.synapses import ConductanceSynapses


def test_event_driven_jumps_equal_dense_products_split_by_presynaptic_type():
    gen = torch.Generator().manual_seed(0)
    w = torch.rand(7, 40, generator=gen, dtype=torch.float64)
    syn = ConductanceSynapses(w, n_excitatory=30)
    for density in (0.02, 0.5):  # the sparse (event) path and the dense path
        spikes = (torch.rand(3, 40, generator=gen) < density).double()
        g_e, g_i = syn.jumps(spikes)
        torch.testing.assert_close(g_e, spikes[:, :30] @ w[:, :30].T, rtol=1e-14, atol=0)
        torch.testing.assert_close(g_i, spikes[:, 30:] @ w[:, 30:].T, rtol=1e-14, atol=0)
        assert (g_e >= 0).all() and (g_i >= 0).all()


def test_an_inhibitory_spike_lowers_and_an_excitatory_one_raises_the_voltage():
    syn = ConductanceSynapses(torch.full((1, 2), 0.5, dtype=torch.float64), n_excitatory=1)
    neuron = ConductanceLIF(v_th=100.0)
    v = {}
    for name, spikes in {"e": [[1.0, 0.0]], "i": [[0.0, 1.0]]}.items():
        state = neuron.init_state((1, 1), dtype=torch.float64)._replace(v=torch.full((1, 1), -65.0, dtype=torch.float64))
        _, state = neuron.step(state, syn.drive(torch.tensor(spikes, dtype=torch.float64)), 0.1)
        v[name] = state.v.item()
    rest = -65.0 + (-60.0 + 65.0) * (1 - torch.exp(torch.tensor(-0.1 / 20.0)).item())
    assert v["e"] > rest > v["i"]


def test_negative_or_nan_magnitudes_and_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="Dale"):
        ConductanceSynapses(torch.tensor([[0.1, -0.2]]))
    with pytest.raises(ValueError, match="NaN"):
        ConductanceSynapses(torch.tensor([[0.1, float("nan")]]))
    with pytest.raises(ValueError, match="n_excitatory"):
        ConductanceSynapses(torch.ones(2, 3), n_excitatory=5)
    with pytest.raises(ValueError, match="presynaptic spikes"):
        ConductanceSynapses(torch.ones(2, 3)).jumps(torch.ones(1, 4))
