"""e-prop and OSTL against autograd BPTT: the exact identities of REFERENCE.md (float64)."""
import pytest
import torch

from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF, ResetBySubtraction
from neuroplastic.rules.eprop import EProp, TracedSum
from neuroplastic.rules.signals import Symmetric
from neuroplastic.spikes import Triangle
from neuroplastic.tasks.base import Split, Task
from neuroplastic.training.losses import readout_cross_entropy
from neuroplastic.training.objectives import objective_for
from neuroplastic.training.online import OnlineLearner, OnlineMethod
from neuroplastic.training.problem import Problem


def small_task(steps=40, n_in=6, classes=3, samples=4, loss_steps=15, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = (torch.rand(samples, steps, n_in, generator=g) < 0.3).float()
    labels = torch.randint(0, classes, (samples,), generator=g)
    split = Split(inputs, labels)
    return Task("toy", split, split, n_in, classes, 1.0, "classification", loss_steps)


def small_network(task, *, beta=0.0, detach=True, recurrent=False, hidden=(5,), t_ref=0.0, seed=1):
    g = torch.Generator().manual_seed(seed)
    neuron = ALIF(tau_m=20.0, tau_a=50.0, beta=beta, v_th=0.6, t_ref=t_ref,
                  reset=ResetBySubtraction(detach=detach), surrogate=Triangle(0.3))
    sizes = (task.n_inputs, *hidden)
    layers = [SpikingLayer(a, b, neuron, recurrent=recurrent, scale=3.0, generator=g)
              for a, b in zip(sizes[:-1], sizes[1:])]
    readout = LeakyReadout(sizes[-1], task.n_outputs, tau_out=20.0, generator=g)
    return SpikingNetwork(layers, readout).double()


class Capture(torch.optim.Optimizer):
    """Keeps the gradients it is given, changes nothing."""

    def __init__(self, params):
        super().__init__(params, {})
        self.grads = None

    def step(self, closure=None):
        self.grads = [p.grad.clone() for group in self.param_groups for p in group["params"]]


def batch(task):
    return task.train.inputs.transpose(0, 1).double(), task.train.targets


def bptt_gradients(network, task, params):
    inputs, labels = batch(task)
    out = network(inputs)
    loss = readout_cross_entropy(out.readout, labels, task.loss_steps)
    assert sum(z.sum() for z in out.spikes) > 0, "the test network must spike"
    return torch.autograd.grad(loss, params)


def learner_gradients(network, task, method, mode):
    learner = OnlineLearner(Problem(network, objective_for(task), generator=torch.Generator().manual_seed(3)), method)
    capture = Capture(learner.params)
    inputs, labels = batch(task)
    if mode == "online":
        learner.online(inputs, labels, capture)
    else:
        learner.sequence(inputs, labels, capture)
    return learner.params, capture.grads


def assert_equal(actual, expected, rtol=1e-6):
    for a, e in zip(actual, expected):
        assert e.abs().max() > 0
        torch.testing.assert_close(a, e, rtol=rtol, atol=1e-12 * float(e.abs().max()) + 1e-14)


EPROP = OnlineMethod("eprop", lambda k: EProp(k), Symmetric())
OSTL = OnlineMethod("ostl", lambda k: EProp(k, reset_path=True), Symmetric())


@pytest.mark.parametrize("mode", ["online", "sequence"])
def test_single_layer_eprop_is_bptt_with_the_reset_detached(mode):
    task = small_task()
    net = small_network(task, detach=True)
    params, grads = learner_gradients(net, task, EPROP, mode)
    assert_equal(grads, bptt_gradients(net, task, params))


def test_single_layer_eprop_differs_from_bptt_when_the_reset_carries_gradient():
    task = small_task()
    net = small_network(task, detach=False)
    params, grads = learner_gradients(net, task, EPROP, "sequence")
    reference = bptt_gradients(net, task, params)
    assert (grads[0] - reference[0]).norm() > 0.05 * reference[0].norm()


@pytest.mark.parametrize("mode", ["online", "sequence"])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_single_layer_ostl_is_bptt_including_the_reset(mode, beta):
    task = small_task()
    net = small_network(task, detach=False, beta=beta)
    params, grads = learner_gradients(net, task, OSTL, mode)
    assert_equal(grads, bptt_gradients(net, task, params))


@pytest.mark.parametrize("recurrent", [False, True])
def test_online_and_sequence_modes_agree(recurrent):
    task = small_task()
    net = small_network(task, detach=False, beta=0.3, recurrent=True if recurrent else False, t_ref=2.0)
    for method in (EPROP, OSTL):
        _, online = learner_gradients(net, task, method, "online")
        _, sequence = learner_gradients(net, task, method, "sequence")
        assert_equal(online, sequence, rtol=1e-9)


def test_the_factorized_traces_online_equal_the_sequence():
    """LIF without the reset path and without the readout filter: the trace factorizes, and online the
    steps' outer products are summed in chunks (:class:`TracedSum`); the same gradient as the
    sequence mode, and as :meth:`EProp.update` step by step."""
    task = small_task()
    net = small_network(task, detach=True)
    method = OnlineMethod("eprop", lambda k: EProp(k), Symmetric(), filter_readout=False)
    _, online = learner_gradients(net, task, method, "online")
    _, sequence = learner_gradients(net, task, method, "sequence")
    assert_equal(online, sequence, rtol=1e-9)


@pytest.mark.parametrize("apply_every", [None, 7])
def test_online_factored_chunks_equal_the_step_by_step_sum(monkeypatch, apply_every):
    """The online learner summing factorized steps in chunks (8 rows: two steps of four samples per
    product, many chunks per window) equals the same rule without ``factors`` (a sum per step), with
    updates applied every ``apply_every`` steps; two layers, the second recurrent."""
    from neuroplastic.rules import eprop

    task = small_task()
    monkeypatch.setattr(eprop.TracedSum.__init__, "__kwdefaults__", {"bias": False, "rows": 8})
    totals = []
    for factored in (True, False):
        net = small_network(task, detach=True, hidden=(5, 4), recurrent=True)
        rule = EProp if factored else type("PerStep", (EProp,), {"factors": lambda self, *a, **k: None})
        method = OnlineMethod("eprop", lambda k, rule=rule: rule(k), Symmetric(), filter_readout=False)
        learner = OnlineLearner(Problem(net, objective_for(task), generator=torch.Generator().manual_seed(3)), method)
        optimizer = torch.optim.SGD(learner.params, lr=0.1)
        learner.online(*batch(task), optimizer, apply_every=apply_every)
        totals.append([p.detach().clone() for p in learner.params])
    assert_equal(totals[0], totals[1], rtol=1e-12)


def test_a_factored_sum_in_chunks_is_the_sum_of_the_steps():
    """No trace (leak 0): ``Σ leftᵀ right`` of dense factors, in chunks (two steps of three samples per
    product: five products, the last one short), starting again after a take."""
    g = torch.Generator().manual_seed(0)
    lefts, rights = torch.randn(10, 3, 4, generator=g, dtype=torch.float64), torch.randn(10, 3, 5, generator=g,
                                                                                       dtype=torch.float64)
    chunks = TracedSum(rows=7)
    for left, right in zip(lefts[:9], rights[:9]):
        chunks.add(left, right)
    torch.testing.assert_close(chunks.take(), sum(l.T @ r for l, r in zip(lefts[:9], rights[:9])), rtol=1e-12, atol=0)
    chunks.add(lefts[9], rights[9])
    torch.testing.assert_close(chunks.take(), lefts[9].T @ rights[9], rtol=1e-12, atol=0)


@pytest.mark.parametrize("bias", [False, True])
def test_a_traced_sum_in_chunks_is_the_sum_over_the_steps_of_the_trace(bias):
    """``Σ_t leftᵀ_t ε_t`` with ``ε_t = α ε_{t−1} + pre_t`` (and a column of ones, traced too, for a bias):
    reordered chunk by chunk (two steps of three samples per chunk, the last one short, a take in the
    middle) against the trace stepped and summed."""
    g = torch.Generator().manual_seed(0)
    lefts = torch.randn(11, 3, 4, generator=g, dtype=torch.float64)
    pres = (torch.rand(11, 3, 5, generator=g) < 0.3).double()
    chunks, trace, want = TracedSum(0.8, bias=bias, rows=7), torch.zeros(3, 5 + bias, dtype=torch.float64), []
    for _ in range(2):  # the trace carries on across a take
        for left, pre in zip(lefts, pres):
            chunks.add(left, pre)
            trace = 0.8 * trace + (torch.cat([pre, torch.ones(3, 1, dtype=torch.float64)], -1) if bias else pre)
            want.append(left.T @ trace)
        torch.testing.assert_close(chunks.take(), sum(want[-11:]), rtol=1e-12, atol=1e-12)


def _recurrent_alif_forward(neuron, w_in, w_rec, w_out, b_out, inputs, probes, kappa):
    """The e-prop ALIF network written out: spikes seen by other neurons, the reset and the readout
    are ``z + δ`` (``δ`` = ``probes``, zero), the neuron's own adaptation sees ``z``."""
    steps, batch, _ = inputs.shape
    n = w_rec.shape[0]
    alpha, rho = torch.exp(torch.tensor(-1.0 / neuron.tau_m)), torch.exp(torch.tensor(-1.0 / neuron.tau_a))
    v = a = z = z_obs = torch.zeros(batch, n, dtype=torch.float64)
    y = torch.zeros(batch, w_out.shape[0], dtype=torch.float64)
    record = {"v": [], "a": [], "z": [], "y": []}
    for t in range(steps):
        v = alpha * v + inputs[t] @ w_in.T + z_obs @ w_rec.T - neuron.v_th * z_obs
        a = rho * a + z
        z = spike_of(neuron, v, a)
        z_obs = z + probes[t]
        y = kappa * y + z_obs @ w_out.T + b_out
        for key, value in zip("vazy", (v, a, z, y)):
            record[key].append(value)
    return {k: torch.stack(v) for k, v in record.items()}


def spike_of(neuron, v, a):
    from neuroplastic.spikes import spike
    return spike((v - neuron.threshold(a)) / neuron.v_th, neuron.surrogate)


@pytest.mark.parametrize("mode", ["online", "sequence"])
def test_eprop_with_the_total_derivative_as_learning_signal_is_bptt_with_recurrence(mode):
    """Bellec et al. 2020, eq. (1): dE/dW = Σ_t (dE/dz_t) e_t, exact for a recurrent ALIF network when
    dE/dz_t is the total derivative through everything but the neuron's own hidden state."""
    from neuroplastic.neurons.alif import ALIFState
    from neuroplastic.rules.base import StepInfo

    task = small_task(steps=30, n_in=4)
    g = torch.Generator().manual_seed(5)
    n = 6
    neuron = ALIF(tau_m=20.0, tau_a=40.0, beta=0.4, v_th=0.6, t_ref=0.0, surrogate=Triangle(0.3))
    w_in = (torch.randn(n, 4, generator=g, dtype=torch.float64) * 0.9).requires_grad_()
    w_rec = (torch.randn(n, n, generator=g, dtype=torch.float64) * 0.4).requires_grad_()
    w_out = torch.randn(3, n, generator=g, dtype=torch.float64)
    b_out = torch.zeros(3, dtype=torch.float64)
    inputs, labels = batch(task)
    probes = torch.zeros(inputs.shape[0], inputs.shape[1], n, dtype=torch.float64, requires_grad=True)
    run = _recurrent_alif_forward(neuron, w_in, w_rec, w_out, b_out, inputs, probes, kappa=0.9)
    loss = readout_cross_entropy(run["y"], labels, task.loss_steps)
    assert run["z"].sum() > 5
    bptt = torch.autograd.grad(loss, (w_in, w_rec), retain_graph=True)
    (signal,) = torch.autograd.grad(loss, probes)  # dE/dz_t, t = 0 … T−1

    v, a, z = (run[k].detach() for k in "vaz")
    rest = torch.zeros_like(v[0])
    previous_z = torch.cat([rest[None], z[:-1]])
    previous = [ALIFState(rest, rest, rest, rest)] + [ALIFState(v[t], a[t], z[t], rest) for t in range(len(v) - 1)]
    psi = torch.stack([neuron.pseudo_derivative(previous[t], ALIFState(v[t], a[t], z[t], rest), 1.0)
                       for t in range(len(v))])
    pre = torch.cat([inputs, previous_z], -1)
    rule, params = EProp(0.0), (w_in.detach(), w_rec.detach())
    if mode == "sequence":
        info = StepInfo(0, len(v), 1.0, pre, z, v, psi, neuron)
        grads, _ = rule.sequence_update(info, None, params, learning_signal=signal)
    else:
        state, grads = None, None
        for t in range(len(v)):
            info = StepInfo(t, len(v), 1.0, pre[t], z[t], v[t], psi[t], neuron)
            step, state = rule.update(info, state, params, learning_signal=signal[t])
            grads = step if grads is None else tuple(x + s for x, s in zip(grads, step))
    assert_equal(grads, bptt)


def test_eprop_with_the_rate_regularizer_is_bptt_of_the_regularized_loss():
    from neuroplastic.training.losses import rate_regularization

    task = small_task()
    net = small_network(task, detach=True)
    learner = OnlineLearner(Problem(net, objective_for(task), rate_weight=0.3, rate_target_hz=40.0), EPROP)
    capture = Capture(learner.params)
    inputs, labels = batch(task)
    learner.sequence(inputs, labels, capture)
    out = net(inputs)
    loss = readout_cross_entropy(out.readout, labels, task.loss_steps) + 0.3 * rate_regularization(
        out.spikes, target_hz=40.0, dt=1.0)
    reference = torch.autograd.grad(loss, learner.params)
    assert_equal(capture.grads, reference)
    unregularized = bptt_gradients(net, task, learner.params)
    assert (unregularized[0] - reference[0]).norm() > 0.01 * reference[0].norm()


def estimates_fused_and_by_steps(monkeypatch, network, task):
    """``(estimate, loss, synaptic events)`` of e-prop's whole-sequence mode, the sequence recorded by
    the fused operations, then by the network's steps."""
    from neuroplastic.training import online

    inputs, labels = batch(task)
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(online, "fused_recording", lambda network, inputs: None)
        learner = OnlineLearner(Problem(network, objective_for(task), generator=torch.Generator().manual_seed(3)),
                                EPROP)
        with torch.no_grad():
            grads, loss = learner.estimate(inputs, labels)
        results.append((grads, float(loss), int(learner.synops)))
    return results


@pytest.mark.parametrize("recurrent, beta, t_ref", [(False, 0.0, 0.0), (True, 0.0, 0.0), (True, 0.3, 2.0)])
def test_the_fused_recording_gives_the_steps_estimate(monkeypatch, recurrent, beta, t_ref):
    """The whole-sequence mode records a sequence by the layers' fused operations (one pass per layer):
    the estimate, the loss and the counted synaptic events are those of the recording by steps."""
    task = small_task()
    network = small_network(task, beta=beta, recurrent=recurrent, hidden=(7, 5), t_ref=t_ref)
    (fast, fast_loss, fast_synops), (slow, slow_loss, slow_synops) = estimates_fused_and_by_steps(
        monkeypatch, network, task)
    assert_equal(fast, slow, rtol=1e-12)
    assert fast_loss == pytest.approx(slow_loss, rel=1e-12)
    assert fast_synops == slow_synops > 0
    assert all(layer.fused for layer in network.layers)


def test_the_fused_recording_with_a_leak_per_neuron(monkeypatch):
    """A feed-forward LIF with one τ_m per neuron: recorded by the LIF kernel's voltages (ψ from them)."""
    task = small_task()
    g = torch.Generator().manual_seed(1)
    neuron = ALIF(tau_m=torch.linspace(10.0, 30.0, 7), beta=0.0, v_th=0.6, t_ref=0.0,
                  reset=ResetBySubtraction(detach=True), surrogate=Triangle(0.3))
    network = SpikingNetwork([SpikingLayer(task.n_inputs, 7, neuron, scale=3.0, generator=g)],
                             LeakyReadout(7, task.n_outputs, generator=g)).double()
    (fast, _, _), (slow, _, _) = estimates_fused_and_by_steps(monkeypatch, network, task)
    assert network.layers[0].fused
    assert_equal(fast, slow, rtol=1e-12)


def test_without_the_cpp_backend_the_sequence_is_recorded_by_steps(monkeypatch):
    """``NEUROPLASTIC_FUSED=torch`` (or no compiler): no fused recording, the steps' estimate."""
    from neuroplastic.training.recorded import fused_recording

    task = small_task()
    network = small_network(task, beta=0.3, recurrent=True, t_ref=2.0)
    inputs, labels = batch(task)
    monkeypatch.setenv("NEUROPLASTIC_FUSED", "torch")
    with torch.no_grad():
        assert fused_recording(network, inputs) is None
        learner = OnlineLearner(Problem(network, objective_for(task), generator=torch.Generator().manual_seed(3)),
                                EPROP)
        grads, _ = learner.estimate(inputs, labels)
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_a_dense_subclass_is_recorded_by_steps(monkeypatch):
    """Synapses of a Dense subclass may compute their own sequence: the recording takes the steps."""
    from neuroplastic.synapses import Dense
    from neuroplastic.training.recorded import fused_recording

    class Doubled(Dense):
        def forward(self, activity):
            return 2 * super().forward(activity)

    task = small_task()
    network = small_network(task, recurrent=True)
    layer = network.layers[0]
    doubled = Doubled(layer.synapses.n_in, layer.synapses.n_out).double()
    doubled.load_state_dict(layer.synapses.state_dict())
    layer.synapses = doubled
    with torch.no_grad():
        assert fused_recording(network, batch(task)[0]) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kappa", [0.0, 0.8])
def test_the_factorized_adjoint_kernel_is_the_two_filters_and_their_product(dtype, kappa, monkeypatch):
    """``fused/leaky_filter.cpp``'s one pass is, bit for bit, ``reverse_filter(reverse_filter(L, κ) ψ, α)``
    (a NaN in the signal stays where the filters put it; κ = 0 is no filter); the rule's gradient
    through it is the composition's, and its buffer goes back to the workspace."""
    from neuroplastic.fused import backend, workspace
    from neuroplastic.rules import eprop
    from neuroplastic.rules.eprop import reverse_filter

    if backend() != "cpp":
        pytest.skip("the C++ backend is not built here")
    g = torch.Generator().manual_seed(0)
    signal, psi = torch.randn(30, 4, 6, generator=g, dtype=dtype), torch.rand(30, 4, 6, generator=g, dtype=dtype)
    signal[12, 1, 2] = float("nan")
    out = torch.empty_like(signal)
    torch.ops.neuroplastic_fused.factorized_adjoint(signal, psi, kappa, 0.9, out)
    want = reverse_filter(reverse_filter(signal, kappa) * psi, 0.9)
    assert torch.equal(out.isnan(), want.isnan()) and out.isnan().any()
    assert torch.equal(out.nan_to_num(), want.nan_to_num())
    signal[12, 1, 2] = 0.5
    pre = (torch.rand(30, 4, 5, generator=g) < 0.3).to(dtype)
    given, original = [], workspace.give
    monkeypatch.setattr(workspace, "give", lambda buffer: given.append(buffer.shape) or original(buffer))
    with torch.no_grad():
        fast = eprop._factorized_gradient(signal, psi, pre, kappa, 0.9)
    slow = torch.einsum("tbi,tbj->ij", reverse_filter(reverse_filter(signal, kappa) * psi, 0.9), pre)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(fast, slow, rtol=tolerance, atol=tolerance * float(slow.abs().max()))
    assert given == [signal.shape]
