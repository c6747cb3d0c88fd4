"""Synaptic delays: a spike arrives exactly d steps later on every path; the one time loop equals the
whole-sequence convolution (values and gradients); learned positions' gradients equal finite
differences; the rounded learned kernel is the fixed-delay model bit for bit."""
import pytest
import torch
from finite_differences import central_differences

from neuroplastic import ALIF, FastSigmoid, run
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork, use_path
from neuroplastic.synapses import DaleDense, DaleRecurrent, Dense, FixedDelays, LearnedDelays, Recurrent

LIF = ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(5.0))


def dense(n_in=5, n_out=4, seed=0, bias=False):
    return Dense(n_in, n_out, bias=bias, generator=torch.Generator().manual_seed(seed)).double()


def stepped(synapses, x, state=None):
    state = synapses.init_state(x.shape[1], dtype=x.dtype) if state is None else state
    currents = []
    for x_t in x:
        current, state = synapses.step(state, x_t)
        currents.append(current)
    return torch.stack(currents), state


@pytest.mark.parametrize("path", ["step", "sequence"])
def test_a_spike_arrives_exactly_its_delay_later_at_every_synapse(path):
    delays = torch.randint(0, 7, (4, 5), generator=torch.Generator().manual_seed(1))
    synapses = FixedDelays(dense(), delays, max_delay=8)
    for i in range(5):
        x = torch.zeros(20, 1, 5, dtype=torch.float64)
        x[3, 0, i] = 1.0  # one spike of input i at t0 = 3
        if path == "step":
            currents, _ = stepped(synapses, x)
        else:
            currents, _ = synapses.sequence(synapses.init_state(1, dtype=torch.float64), x)
        for j in range(4):
            arrival = torch.nonzero(currents[:, 0, j]).flatten().tolist()
            assert arrival == [3 + int(delays[j, i])]
            assert currents[arrival[0], 0, j] == synapses.synapses.weight[j, i]


@pytest.mark.parametrize("kind", ["fixed", "learned"])
def test_steps_equal_the_sequence_across_chunks_values_and_gradients(kind):
    g = torch.Generator().manual_seed(2)
    synapses = dense(bias=True)
    synapses = FixedDelays(synapses, max_delay=6, generator=g) if kind == "fixed" else \
        LearnedDelays(synapses, 6, sigma=1.5, generator=g)
    x = torch.rand(30, 3, 5, generator=g, dtype=torch.float64)
    weights = torch.randn(30, 3, 4, generator=g, dtype=torch.float64)
    params = list(synapses.parameters())

    def losses():
        state = synapses.init_state(3, dtype=torch.float64)
        first, state = synapses.sequence(state, x[:11])
        second, _ = synapses.sequence(state, x[11:])
        by_sequence = torch.cat([first, second])
        by_steps, _ = stepped(synapses, x)
        return by_sequence, by_steps

    by_sequence, by_steps = losses()
    torch.testing.assert_close(by_sequence, by_steps, rtol=1e-12, atol=1e-12)
    grads = [torch.autograd.grad((c * weights).sum(), params) for c in losses()]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_learned_positions_and_weights_get_the_gradients_of_finite_differences():
    synapses = LearnedDelays(dense(seed=3), 8, sigma=1.2, generator=torch.Generator().manual_seed(4))
    x = torch.rand(25, 2, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    weights = torch.randn(25, 2, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)

    def loss():
        return (synapses.sequence(synapses.init_state(2, dtype=torch.float64), x)[0] * weights).sum()

    for parameter in (synapses.positions, synapses.synapses.weight):
        (analytic,) = torch.autograd.grad(loss(), parameter)
        numeric = central_differences(loss, parameter)
        assert numeric.abs().max() > 0
        torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_rounded_learned_delays_are_the_fixed_delay_model_bit_for_bit():
    learned = LearnedDelays(dense(seed=7), 10, generator=torch.Generator().manual_seed(8))
    x = (torch.rand(40, 3, 5, generator=torch.Generator().manual_seed(9)) < 0.3).double()
    learned.eval()
    fixed = learned.fixed()
    assert torch.equal(fixed.delays, learned.positions.detach().round().long())
    state = learned.init_state(3, dtype=torch.float64)
    assert torch.equal(learned.sequence(state, x)[0], fixed.sequence(state, x)[0])
    assert torch.equal(stepped(learned, x)[0], stepped(fixed, x)[0])
    learned.train()
    with torch.no_grad():
        learned.positions.copy_(fixed.delays)  # at whole steps, a vanishing width is the one-hot kernel
    learned.sigma = 1e-3  # (up to the normalisation's 1e-7)
    torch.testing.assert_close(learned.kernel(), fixed.kernel(), rtol=1e-6, atol=0)


def delayed_network(synapses_kind, recurrent_kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    if synapses_kind == "dale":
        weights = DaleDense(6, 8, scale=3.0, generator=g)
    else:
        weights = Dense(6, 8, scale=3.0, generator=g)
    synapses = FixedDelays(weights, max_delay=5, generator=g)
    recurrent = None
    if recurrent_kind is not None:
        inner = DaleRecurrent(8, scale=2.0, generator=g) if recurrent_kind == "dale" else Recurrent(8, scale=2.0, generator=g)
        recurrent = LearnedDelays(inner, 3, sigma=1.0, generator=g)
    neuron = ALIF(tau_m=10.0, tau_a=40.0, beta=0.1, v_th=1.0, t_ref=0.0) if recurrent else LIF
    layer = SpikingLayer(6, 8, neuron, synapses=synapses, recurrent=recurrent or False)
    return SpikingNetwork([layer], LeakyReadout(8, 2, generator=g)).double()


@pytest.mark.parametrize("synapses_kind, recurrent_kind", [("dense", None), ("dale", None), ("dense", "dense"),
                                                           ("dale", "dale")])
def test_delayed_layers_on_every_path_equal_the_time_loop(synapses_kind, recurrent_kind):
    net = delayed_network(synapses_kind, recurrent_kind)
    x = (torch.rand(50, 3, 6, generator=torch.Generator().manual_seed(10)) < 0.3).double()
    expected = run(net, x, 1.0).readout
    params = list(net.parameters())
    reference = torch.autograd.grad(expected.pow(2).sum(), params)
    assert sum(z.sum() for z in net(x).spikes) > 0
    for path in ("auto", "step"):
        with use_path(path):
            out = net(x)
        torch.testing.assert_close(out.readout, expected, rtol=1e-12, atol=1e-12)
        for a, b in zip(torch.autograd.grad(out.readout.pow(2).sum(), params), reference):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if synapses_kind == "dale":  # the signs of Dale's law hold on the delayed weights
        signs = net.layers[0].synapses.synapses.sign
        assert ((net.layers[0].synapses.kernel() * signs) >= 0).all()
    if recurrent_kind is None:
        assert net.layers[0].fused  # delayed synapses feed the fused recurrence


def test_bad_delays_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        FixedDelays(dense(), torch.full((4, 5), -1))
    with pytest.raises(ValueError, match="integer tensor"):
        FixedDelays(dense(), torch.full((4, 5), 1.5))
    with pytest.raises(ValueError, match="shape"):
        FixedDelays(dense(), torch.zeros(5, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_delay"):
        FixedDelays(dense(), torch.full((4, 5), 3), max_delay=2)
    with pytest.raises(ValueError, match="max_delay must be an integer >= 0"):
        LearnedDelays(dense(), -1)
    with pytest.raises(ValueError, match="sigma must be finite and positive"):
        LearnedDelays(dense(), 4, sigma=0.0)
    learned = LearnedDelays(dense(), 4)
    with torch.no_grad():
        learned.positions[0, 0] = float("nan")
    with pytest.raises(ValueError, match="delay positions contains NaN"):
        learned.sequence(learned.init_state(1, dtype=torch.float64), torch.zeros(3, 1, 5, dtype=torch.float64))


def test_the_width_anneals_and_the_positions_train_faster():
    learned = LearnedDelays(dense(), 20, sigma_end=0.5, anneal_until=0.5, lr_scale=30.0)
    assert learned.sigma == learned.sigma_start == 10.0
    learned.anneal(0.25)
    assert learned.sigma == pytest.approx(5.25)
    learned.anneal(0.5)
    assert learned.sigma == 0.5
    learned.anneal(1.0)
    assert learned.sigma == 0.5
    assert learned.positions.lr_scale == 30.0
    with pytest.raises(ValueError, match="anneal_until"):
        LearnedDelays(dense(), 4, anneal_until=0.0)


def test_the_timing_task_tells_classes_apart_by_order_only():
    from neuroplastic.tasks import load_task

    task = load_task("timing", seed=0, samples_per_class=40, noise=0.0, reliability=1.0, jitter=0)
    inputs, labels = next(task.batches("train", len(task.train), shuffle=False))
    channels = inputs.reshape(*inputs.shape[:2], 3, 8)
    assert torch.equal(channels.sum(0), torch.ones(inputs.shape[1], 3, 8))  # each input fires once
    first = channels[..., 0].argmax(0)  # (samples, channels): the step each channel fires
    onsets = first.min(1).values
    assert onsets.unique().numel() > 10  # the onset says nothing
    offsets = first - onsets[:, None]
    for label in range(task.n_outputs):
        patterns = offsets[labels == label].unique(dim=0)
        assert patterns.shape[0] == 1 and sorted(patterns[0].tolist()) == [0, 20, 40]  # one order per class
    assert len({tuple(offsets[labels == k][0].tolist()) for k in range(task.n_outputs)}) == task.n_outputs


def test_reproduce_delays_quick_passes_its_criteria(tmp_path):
    """No delays stay at chance, fixed and learned delays learn the task, rounding costs < 1 point."""
    from neuroplastic.experiments.delays import run

    outcome = run(quick=True, seed=0, progress=False)
    assert outcome.passed, outcome.measured
    outcome.draw(tmp_path / "delays.png")
    assert (tmp_path / "delays.png").exists()


def test_train_with_delays_from_the_command_line(tmp_path, capsys):
    import json

    from neuroplastic.cli.main import main

    assert main(["train", "--task", "timing", "--delays", "fixed", "--max-delay", "45", "--epochs", "5",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["test_accuracy"] > 0.6  # chance: 0.25
    for argv in (["--delays", "sideways"], ["--task", "digits", "--delays", "fixed"], ["--rule", "eprop"],
                 ["--max-delay", "-2"]):
        arguments = ["train", "--task", "timing", "--epochs", "1", "--out", str(tmp_path / "bad"), *argv]
        if argv[:2] == ["--task", "digits"]:
            arguments = ["train", *argv, "--epochs", "1", "--out", str(tmp_path / "bad")]
        assert main(arguments) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
