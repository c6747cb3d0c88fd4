"""SuperSpike against autograd (float64): the identity of REFERENCE.md, its conditions, the kernels and
the per-synapse learning rate."""
import pytest
import torch

from neuroplastic.neurons import CurrentLIF, ResetBySubtraction
from neuroplastic.rules import StepInfo, chain
from neuroplastic.rules.superspike import (
    DoubleExponential,
    RMSScale,
    SuperSpike,
    van_rossum_error,
    van_rossum_loss,
)
from neuroplastic.spikes import FastSigmoid
from neuroplastic.training.losses import van_rossum_distance

T, B, N_IN, N = 120, 3, 12, 4
DT = 1.0


def layer_neuron(detach=True, tau_s=5.0, tau_m=10.0):
    """SuperSpike's current-based LIF: its PSP is DoubleExponential(tau_s, tau_m)."""
    return CurrentLIF(tau_m=tau_m, tau_s=tau_s, e_l=0.0, v_th=1.0, resistance=1.0, t_ref=0.0,
                      reset=ResetBySubtraction(detach=detach), surrogate=FastSigmoid(1.0))


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(T, B, N_IN, generator=g, dtype=torch.float64) < 0.1).double()
    target = (torch.rand(T, B, N, generator=g, dtype=torch.float64) < 0.03).double()
    weight = torch.randn(N, N_IN, generator=g, dtype=torch.float64) + 0.2
    return inputs, target, weight


def run_layer(neuron, weight, inputs):
    """Spikes ``S`` and the membrane potential before the reset ``U`` (what the spike sees)."""
    state = neuron.init_state((inputs.shape[1], weight.shape[0]), dtype=torch.float64)
    spikes, voltages = [], []
    for x in inputs.unbind(0):
        z, state = neuron.step(state, x @ weight.T, DT)
        spikes.append(z)
        voltages.append(state.v + z.detach() * (neuron.v_th - neuron.e_l))
    return torch.stack(spikes), torch.stack(voltages)


def autograd_and_rule(mode, *, detach=True, rule=None, loss=None, tau_s=5.0):
    rule = SuperSpike() if rule is None else rule
    inputs, target, w0 = data()
    neuron = layer_neuron(detach, tau_s=tau_s)
    weight = w0.clone().requires_grad_()
    spikes, voltage = run_layer(neuron, weight, inputs)
    assert 0.02 < spikes.mean() < 0.3, "the test layer must spike, sparsely"
    value = van_rossum_loss(spikes, target, rule.alpha, DT) if loss is None else loss(spikes, target)
    (reference,) = torch.autograd.grad(value, weight)
    spikes, voltage = spikes.detach(), voltage.detach()
    psi = neuron.surrogate.derivative(voltage - neuron.v_th)
    error = van_rossum_error(spikes, target, rule.alpha, DT)
    params = (w0,)
    if mode == "sequence":
        info = StepInfo(0, T, DT, inputs, spikes, voltage, psi, neuron)
        (grad,), _ = rule.sequence_update(info, None, params, learning_signal=error)
        return grad, reference
    state, grad = None, torch.zeros_like(w0)
    for t in range(T):
        info = StepInfo(t, T, DT, inputs[t], spikes[t], voltage[t], psi[t], neuron)
        (step,), state = rule.update(info, state, params, learning_signal=error[t])
        grad = grad + step
    return grad, reference


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("mode", ["online", "sequence"])
def test_time_integrated_superspike_is_the_gradient_of_the_van_rossum_loss(mode):
    grad, reference = autograd_and_rule(mode)
    assert reference.abs().max() > 0
    assert relative_error(grad, reference) < 1e-12


def test_the_identity_needs_the_detached_reset():
    grad, reference = autograd_and_rule("sequence", detach=False)
    assert relative_error(grad, reference) > 0.1


def test_the_identity_needs_epsilon_to_be_the_neurons_psp():
    grad, reference = autograd_and_rule("sequence", tau_s=4.0)  # neuron τ_s = 4, rule ε rise = 5
    assert relative_error(grad, reference) > 1e-3


def test_the_loss_must_filter_with_alpha_not_the_single_exponential():
    def single_exponential(spikes, target):
        return van_rossum_distance(spikes, target, tau=10.0, dt=DT)

    grad, reference = autograd_and_rule("sequence", loss=single_exponential)
    best = float((grad * reference).sum() / (grad * grad).sum())  # no rescaling makes them equal
    assert relative_error(best * grad, reference) > 0.01


def test_online_and_sequence_modes_agree():
    online, _ = autograd_and_rule("online")
    sequence, _ = autograd_and_rule("sequence")
    torch.testing.assert_close(online, sequence, rtol=1e-10, atol=1e-14)


def test_double_exponential_is_the_current_lif_psp():
    kernel = DoubleExponential(5.0, 10.0)
    neuron = CurrentLIF(tau_m=10.0, tau_s=5.0, e_l=0.0, v_th=1e9, resistance=1.0, t_ref=0.0)
    state = neuron.init_state((1,), dtype=torch.float64)
    psp = []
    for t in range(60):
        _, state = neuron.step(state, torch.tensor([1.0 if t == 0 else 0.0], dtype=torch.float64), 0.5)
        psp.append(state.v)
    torch.testing.assert_close(torch.cat(psp), kernel.weights(60, 0.5), rtol=1e-12, atol=1e-15)


def test_kernel_filter_step_and_reverse_agree():
    kernel = DoubleExponential(2.0, 7.0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, 3, generator=g, dtype=torch.float64)
    k = kernel.weights(50, 1.0)
    direct = torch.stack([sum(k[t - s] * x[s] for s in range(t + 1)) for t in range(50)])
    filtered = kernel.filter(x, 1.0)
    torch.testing.assert_close(filtered, direct)
    traces, online = None, []
    for step in x:
        out, traces = kernel.step(traces, step, 1.0)
        online.append(out)
    torch.testing.assert_close(torch.stack(online), filtered)
    torch.testing.assert_close((filtered * y).sum(), (x * kernel.reverse(y, 1.0)).sum())


@pytest.mark.parametrize("rise, decay", [(-1.0, 10.0), (0.0, 10.0), (5.0, -10.0), (10.0, 5.0), (5.0, 5.0),
                                         (float("nan"), 10.0)])
def test_bad_kernels_are_refused(rise, decay):
    with pytest.raises(ValueError, match="tau"):
        DoubleExponential(rise, decay)


def test_bad_input_is_refused():
    pre, psi = torch.zeros(2, N_IN), torch.zeros(2, N)
    params = (torch.zeros(N, N_IN),)
    rule = SuperSpike()
    with pytest.raises(ValueError, match="learning_signal"):
        rule.update(StepInfo(0, 1, DT, pre, psi, None, psi), None, params, learning_signal=torch.zeros(2, N + 1))
    with pytest.raises(ValueError, match="psi"):
        rule.update(StepInfo(0, 1, DT, pre, psi), None, params, learning_signal=psi)
    with pytest.raises(ValueError, match="leading"):
        rule.update(StepInfo(0, 1, DT, pre[:1], psi, None, psi), None, params, learning_signal=psi)
    with pytest.raises(ValueError, match="columns"):
        rule.update(StepInfo(0, 1, DT, pre, psi, None, psi), None, (torch.zeros(N, 3),), learning_signal=psi)
    with pytest.raises(ValueError, match="dt"):
        rule.update(StepInfo(0, 1, -1.0, pre, psi, None, psi), None, params, learning_signal=psi)
    with pytest.raises(ValueError, match="shape"):
        van_rossum_error(torch.zeros(5, 1, 2), torch.zeros(5, 1, 3), DoubleExponential(), DT)


def test_rms_scale_by_hand():
    scale = RMSScale(r0=0.1, decay=0.5, eps=1e-6)
    params = (torch.zeros(2),)
    u1, u2 = torch.tensor([2.0, -1.0]), torch.tensor([0.0, 3.0])
    (out1,), state = scale.update(None, None, params, updates=(u1,))
    v1 = 0.5 * u1**2
    torch.testing.assert_close(out1, 0.1 * u1 / torch.sqrt(v1 + 1e-6))
    (out2,), state = scale.update(None, state, params, updates=(u2,))
    v2 = 0.5 * v1 + 0.5 * u2**2
    torch.testing.assert_close(out2, 0.1 * u2 / torch.sqrt(v2 + 1e-6))
    torch.testing.assert_close(state[0], v2)
    assert scale.update(None, state, params, updates=None) == (None, state)


def test_rms_scale_chains_after_superspike():
    rule = chain(SuperSpike(), RMSScale(r0=1e-2))
    pre, psi = torch.ones(2, 3), torch.full((2, 4), 0.5)
    state = rule.init((torch.zeros(4, 3),))
    for t in range(3):
        (update,), state = rule.update(StepInfo(t, 3, DT, pre, psi, None, psi), state, (torch.zeros(4, 3),),
                                       learning_signal=torch.ones(2, 4))
    assert update.shape == (4, 3) and torch.all(update < 0)  # positive error → grow: a negative gradient
    assert torch.all(update.abs() <= 1e-2 / (1 - 0.99) ** 0.5)


@pytest.mark.parametrize("options", [{"r0": 0.0}, {"decay": 1.0}, {"decay": -0.1}, {"eps": 0.0}])
def test_bad_rms_scale_is_refused(options):
    with pytest.raises(ValueError, match="RMSScale"):
        RMSScale(**options)
