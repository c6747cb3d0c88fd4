"""The simulated chip and physics-aware training: the DPI neuron against its closed-form response, the
chip's mismatch against its log-normal law, its interface without gradients, quantization's grid, and
PAT against backpropagation through a twin that equals the chip (Wright et al. 2022: exact then)."""
import json
import math

import pytest
import torch
from scipy import stats

from neuroplastic import ALIF, LIF, Record, run
from neuroplastic.cli.main import main
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import DPI
from neuroplastic.spikes import QuantizedPayload
from neuroplastic.synapses import Dense, FixedDelays, LearnedDelays
from neuroplastic.physical import ChipSpec, PhysicalNetwork, calibrate, physics_aware, quantize
from neuroplastic.physical.chip import GAIN, nominal
from neuroplastic.training.methods import make_method


def dpi_network(sizes=(12, 16, 10, 8), *, spec=ChipSpec(), seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    layers = [SpikingLayer(n_in, n_out, DPI(), scale=15.0, generator=generator)
              for n_in, n_out in zip(sizes[:-2], sizes[1:-1])]
    twin = SpikingNetwork(layers, LeakyReadout(sizes[-2], sizes[-1], generator=generator)).to(dtype)
    return PhysicalNetwork(twin, spec).to(dtype)


def spikes_in(steps=25, batch=6, n=12, seed=1, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=generator) < 0.3).to(dtype)


def test_the_dpi_neuron_low_pass_filters_its_synapse_in_closed_form():
    """Below threshold I_mem(t) = g w τ_s/(τ_s − τ_m) (e^{−t/τ_s} − e^{−t/τ_m}) after a pulse w at t = 0:
    the linear regime of the circuit equations (Chicca et al. 2014)."""
    model, dt, w = DPI(tau_m=20.0, tau_s=5.0, resistance=1.7, v_th=1e6), 0.5, 0.8
    pulses = torch.zeros(200, 1, dtype=torch.float64)
    pulses[0] = w
    i_mem = run(model, pulses, dt, probes=[Record("v")])["v"][:, 0]
    times = torch.arange(1, 201, dtype=torch.float64) * dt
    closed = 1.7 * w * 5.0 / (5.0 - 20.0) * (torch.exp(-times / 5.0) - torch.exp(-times / 20.0))
    torch.testing.assert_close(i_mem, closed, rtol=1e-10, atol=1e-14)


def test_a_current_stays_above_the_dark_current_and_noise_adds_to_it():
    model = DPI(sigma=0.3)
    inhibition = -torch.ones(30, 4, dtype=torch.float64)
    assert run(model, inhibition, 1.0, probes=[Record("v")])["v"].min() == 0.0  # a CurrentLIF would go negative
    noise = torch.tensor([[1.0, -1.0, 2.0, 0.5]], dtype=torch.float64)
    state = model.step(model.init_state((4,), dtype=torch.float64), torch.zeros(4, dtype=torch.float64), 1.0,
                       noise=noise[0])[1]
    torch.testing.assert_close(state.v, torch.tensor([0.3, 0.0, 0.6, 0.15], dtype=torch.float64))
    with pytest.raises(ValueError, match="sigma"):
        DPI(sigma=-0.1)


def test_mismatch_factors_follow_their_log_normal_law():
    net = dpi_network((12, 400, 8), spec=ChipSpec(mismatch=0.3, seed=4))
    ideal = nominal(net.twin)
    assert {name for name in ideal if name.startswith(GAIN)} == {GAIN + "layers.0.synapses.weight"}
    logs = {name: torch.log(value / ideal[name]) for name, value in net.chip.parameters_by_name.items()}
    for name, log_factor in logs.items():  # the gain is I_th/I_τ: two factors, variance 2σ²
        spread = 0.3 * math.sqrt(2) if name.endswith("resistance") else 0.3
        assert stats.kstest((log_factor / spread).flatten().numpy(), "norm").pvalue > 0.01, name
    prefix = "layers.0.neuron_parameters."  # τ_mem ∝ 1/I_τ and the gain ∝ I_th/I_τ share 1/I_τ: correlation 1/√2
    names = [prefix + name for name in ("tau_m", "resistance", "tau_s", "v_th")]
    measured = torch.corrcoef(torch.stack([logs[name] for name in names]))
    expected = torch.eye(4, dtype=measured.dtype)
    expected[0, 1] = expected[1, 0] = 1 / math.sqrt(2)  # and no other pair shares a current
    assert (measured - expected).abs().max() < 0.15
    same, other = (dpi_network((12, 400, 8), spec=ChipSpec(mismatch=0.3, seed=s)).chip.parameters_by_name
                   for s in (4, 5))
    for name, value in net.chip.parameters_by_name.items():
        assert torch.equal(same[name], value) and not torch.equal(other[name], value)
    perfect = dpi_network(spec=ChipSpec(mismatch=0.0))
    assert all(torch.equal(value, nominal(perfect.twin)[name]) for name, value in perfect.chip.parameters_by_name.items())


def test_the_chip_gives_outputs_without_gradients_and_noise_from_run_to_run():
    net = dpi_network(spec=ChipSpec(mismatch=0.2, noise=0.1))
    assert all(p.requires_grad for p in net.twin.parameters())
    with torch.enable_grad():
        measured = net(spikes_in())
    leaves = [measured.readout, *measured.spikes, *measured.events]
    assert all(t.grad_fn is None and not t.requires_grad for t in leaves)
    again = net(spikes_in())
    assert not torch.equal(measured.readout, again.readout)  # fresh noise
    quiet = dpi_network(spec=ChipSpec(mismatch=0.2))
    assert torch.equal(quiet(spikes_in()).readout, quiet(spikes_in()).readout)
    with pytest.raises(ValueError, match="state and noise"):
        net(spikes_in(), noise=torch.Generator())


@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_quantized_weights_lie_on_a_grid_of_two_to_the_bits_minus_one_levels(bits):
    weight = torch.randn(40, 30, generator=torch.Generator().manual_seed(bits), dtype=torch.float64)
    weight[0, :5] = 0.0
    stored = quantize(weight, bits)
    levels = torch.unique(stored)
    assert len(levels) <= (2 if bits == 1 else 2 ** bits - 1)
    if bits > 1:
        step = weight.abs().max() / (2 ** (bits - 1) - 1)
        assert (stored - weight).abs().max() <= step / 2 + 1e-12
        torch.testing.assert_close(levels / step, torch.round(levels / step))
    assert quantize(weight, None) is weight


def pat_gradients(net, inputs, targets, gains=None):
    measured = net.chip.measure(net.twin, inputs)
    output = physics_aware(net, inputs, measured, gains=gains)
    loss = torch.nn.functional.cross_entropy(output.readout.mean(0), targets)
    return torch.autograd.grad(loss, tuple(net.twin.parameters())), output


def twin_gradients(net, inputs, targets, bits=None, gains=None):
    weights = {n: (w + (quantize(w, bits) - w).detach()) * (gains or {}).get(n, 1.0)
               for n, w in net.twin.named_parameters() if n.startswith("layers.")}
    output = torch.func.functional_call(net.twin, weights, (inputs,), strict=False)
    loss = torch.nn.functional.cross_entropy(output.readout.mean(0), targets)
    return torch.autograd.grad(loss, tuple(net.twin.parameters())), output


def test_pat_is_backpropagation_through_the_twin_when_the_chip_equals_it():
    net, inputs, targets = dpi_network(), spikes_in(), torch.tensor([0, 3, 7, 1, 5, 2])
    pat, pat_output = pat_gradients(net, inputs, targets)
    exact, twin_output = twin_gradients(net, inputs, targets)
    assert min(float(z.detach().sum()) for z in pat_output.spikes) > 20  # layers fire: surrogate gradients reach the input weights
    for a, b in zip(pat, exact):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bits", [None, 4])
def test_pat_on_a_mismatched_chip_is_exact_for_a_twin_that_knows_the_mismatch(bits):
    """The twin's Jacobians are taken at the chip's states: give the twin the chip's parameters, synapse
    gains and weight grid, and PAT's gradient is the chip's exact (surrogate) gradient; with the nominal
    twin it is not."""
    net = dpi_network(spec=ChipSpec(mismatch=0.3, bits=bits, seed=2))
    inputs, targets = spikes_in(), torch.tensor([0, 3, 7, 1, 5, 2])
    assumed_nominal, _ = pat_gradients(net, inputs, targets)
    chip = net.chip.parameters_by_name
    gains = {name[len(GAIN):]: value for name, value in chip.items() if name.startswith(GAIN)}
    with torch.no_grad():
        for name, value in chip.items():
            if not name.startswith(GAIN):
                dict(net.twin.named_buffers())[name].copy_(value)
    pat, _ = pat_gradients(net, inputs, targets, gains)
    exact, _ = twin_gradients(net, inputs, targets, bits, gains)
    for a, b in zip(pat, exact):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert max(float((a - b).abs().max()) for a, b in zip(assumed_nominal, exact)) > 1e-3


def test_calibration_recovers_the_chips_gains():
    """A chip whose neurons differ only in gain: the calibrated twin's gains are the chip's."""
    net = dpi_network((12, 60, 8), spec=ChipSpec(mismatch=0.3, seed=3))
    ideal = nominal(net.twin)
    with torch.no_grad():
        for name, value in net.chip.parameters_by_name.items():
            if not name.endswith("resistance"):
                value.copy_(ideal[name])
    inputs = spikes_in(steps=200, batch=40)
    calibrate(net, inputs)
    chip_gain = net.chip.parameters_by_name["layers.0.neuron_parameters.resistance"]
    fitted = net.twin.layers[0].neuron_parameters.resistance
    firing = net(inputs).spikes[0].mean((0, 1)) > 0.02
    assert firing.sum() > 30
    error = (fitted / chip_gain - 1).abs()[firing]
    assert error.median() < 0.01 and error.max() < 0.03  # measured: median 0.09%, max 0.5%
    again = net.deployed(net.chip.spec)  # the same chip, drawn around the nominal twin, not the calibrated one
    for name, value in net.chip.parameters_by_name.items():
        if name.endswith("resistance"):  # (the rest of this chip was set to nominal above)
            assert torch.equal(again.chip.parameters_by_name[name], value), name


def test_the_chip_options_are_checked():
    for options, message in [(dict(mismatch=-0.1), "mismatch"), (dict(bits=0), "bits"),
                             (dict(noise=math.nan), "noise"), (dict(substrate="memristor"), "substrate"),
                             (dict(chip=-1), "chip"), (dict(calibrate="yes"), "calibrate")]:
        with pytest.raises(ValueError, match=message):
            make_method("pat", **options)
    with pytest.raises(ValueError, match="aware"):
        make_method("pat", aware=True)


def test_train_on_a_chip_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "pat"
    assert main(["train", "--task", "digits", "--rule", "pat", "--substrate", "dpi", "--mismatch", "0.3",
                 "--bits", "6", "--epochs", "1", "--hidden", "32", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rule"] == "pat" and summary["test_accuracy"] > 0.5 and summary["synops"] > 0
    for argv, message in [(["--rule", "pat", "--mismatch", "-0.2"], "mismatch"),
                          (["--rule", "pat", "--bits", "0"], "bits"),
                          (["--rule", "bptt", "--mismatch", "0.2"], "--mismatch applies"),
                          (["--rule", "pat", "--substrate", "memristor"], "substrate")]:
        bad = tmp_path / "bad"
        assert main(["train", "--task", "digits", *argv, "--epochs", "1", "--out", str(bad)]) == 2
        assert message in capsys.readouterr().err and not bad.exists()
    assert main(["train", "--task", "digits", "--rule", "pat", "--neuron", "discrete-lif", "--out", str(bad)]) == 2
    assert "DPI" in capsys.readouterr().err and not bad.exists()


def test_reproduce_pat_mismatch_quick(tmp_path, capsys):
    """σ = 0 and 0.3 on one chip (32 neurons, 2 epochs): PAT keeps what transfer from the twin loses."""
    assert main(["reproduce", "pat-mismatch", "--quick", "--no-progress", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["passed"] and (tmp_path / "pat-mismatch.png").stat().st_size > 10_000
    measured = summary["measured"]
    assert measured["pat_over_transfer_at_0.3"] > 0.1  # measured: 0.16


def test_compare_puts_transfer_and_pat_side_by_side_on_one_chip(tmp_path, capsys):
    assert main(["compare", "--task", "digits", "--rules", "twin,pat", "--epochs", "1", "--mismatch", "0.3",
                 "--bits", "6", "--out", str(tmp_path), "--json"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [r["rule"] for r in results] == ["twin", "pat"]
    assert all(r["test_accuracy"] > 0.5 and r["synops"] > 0 and r["wall_time_s"] > 0 for r in results)
    assert main(["compare", "--task", "digits", "--rules", "bptt", "--mismatch", "0.3",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--mismatch" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(["compare", "--task", "digits", "--rules", "bptt,pat", "--mismatch", "-0.2",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "mismatch" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_a_chip_refuses_what_it_cannot_compute_and_resumes_its_noise():
    generator = torch.Generator().manual_seed(0)
    learned = SpikingLayer(12, 10, DPI(), synapses=LearnedDelays(Dense(12, 10, generator=generator), 3))
    with pytest.raises(ValueError, match="synapses.positions"):
        PhysicalNetwork(SpikingNetwork([learned], LeakyReadout(10, 8)), ChipSpec())
    recurrent = SpikingLayer(12, 10, DPI(), recurrent=True, scale=5.0, generator=generator)
    chip = PhysicalNetwork(SpikingNetwork([recurrent], LeakyReadout(10, 8)), ChipSpec(mismatch=0.2, bits=4))
    assert chip(spikes_in(dtype=torch.float32)).spikes[0].sum() > 0  # recurrent weights are weights too
    fixed = SpikingLayer(12, 10, DPI(), synapses=FixedDelays(Dense(12, 10, generator=generator), max_delay=3,
                                                             generator=generator))
    PhysicalNetwork(SpikingNetwork([fixed], LeakyReadout(10, 8)), ChipSpec(mismatch=0.1))(spikes_in(dtype=torch.float32))
    graded = SpikingLayer(12, 10, ALIF(beta=0.0), payload=QuantizedPayload(4))  # a payload without parameters
    graded.neuron = DPI()
    with pytest.raises(ValueError, match="graded"):
        PhysicalNetwork(SpikingNetwork([graded], LeakyReadout(10, 8)), ChipSpec())
    with pytest.raises(ValueError, match="DPI"):
        PhysicalNetwork(SpikingNetwork([SpikingLayer(12, 10, LIF())], LeakyReadout(10, 8)), ChipSpec())
    net = dpi_network(spec=ChipSpec(mismatch=0.2, noise=0.1))
    net(spikes_in())
    saved = net.state_dict()
    expected = net(spikes_in()).readout
    again = dpi_network(spec=ChipSpec(mismatch=0.2, noise=0.1))
    again.load_state_dict(saved)
    assert torch.equal(again(spikes_in()).readout, expected)  # the noise continues where it was saved
    if not torch.cuda.is_available():  # a GPU run's checkpoint resumed here: the noise starts afresh
        state = net.chip.get_extra_state()
        again.chip.set_extra_state({**state, "device": "cuda:0"})
        assert again(spikes_in()).readout.shape == expected.shape
    with pytest.raises(ValueError, match="span"):
        calibrate(net, spikes_in(), span=1.0)
