"""Synapses and LIF as one operation equal autograd through ``linear`` and the step path (values and
every gradient), reuse their buffer safely, and step aside where they do not apply."""
import threading
import weakref

import pytest
import torch

from neuroplastic.fused import backend, event_linear, lif_sequence, linear_lif_sequence, spike_linear, workspace
from neuroplastic.fused import lif as fused_lif
from neuroplastic.fused.lif import LeakyState
from neuroplastic.spikes import FastSigmoid, Triangle, spike

pytestmark = pytest.mark.skipif(backend() != "cpp", reason="the fused operation is C++ only")
THRESHOLD = 1.0


class Halved(FastSigmoid):  # a surrogate the kernel does not know: the two operations run instead
    def derivative(self, x):
        return 0.5 * super().derivative(x)


@pytest.fixture(autouse=True)
def short_segments(monkeypatch):
    monkeypatch.setattr(fused_lif, "_INTERVAL", 3)  # every third voltage kept, the last segment short
    workspace.empty_cache()


def inputs(shape=(40, 3, 12), n_out=9, density=0.3, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(shape, dtype=dtype).bernoulli_(density, generator=generator)
    weight = (0.8 * torch.randn(n_out, shape[-1], dtype=dtype, generator=generator) + 0.15).requires_grad_()
    bias = (0.1 * torch.randn(n_out, dtype=dtype, generator=generator)).requires_grad_()
    return x, weight, bias


def reference(x, weight, bias, beta, surrogate, detach_reset=False, state=None):
    """Autograd through ``linear`` and one ``spike`` per step."""
    currents = torch.nn.functional.linear(x, weight, bias)
    v, z = (torch.zeros_like(currents[0]),) * 2 if state is None else state
    spikes = []
    for current in currents:
        v = beta * v + current - THRESHOLD * (z.detach() if detach_reset else z)
        z = spike(v - THRESHOLD, surrogate)
        spikes.append(z)
    return torch.stack(spikes), LeakyState(v, z)


def fused(x, weight, bias, beta, surrogate, detach_reset=False, state=None):
    return linear_lif_sequence(x, weight, bias, beta=beta, threshold=THRESHOLD, surrogate=surrogate,
                               detach_reset=detach_reset, state=state)


def loss(spikes, final):
    weights = torch.linspace(-1.0, 2.0, spikes.numel(), dtype=spikes.dtype).reshape(spikes.shape)
    return (spikes * weights).sum() + (spikes.sum(0) ** 2).mean() + (final.v ** 2).sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("passes", ["sparse", "dense forward", "dense gradient"])
def test_values_and_every_gradient_equal_autograd(dtype, detach_reset, passes, monkeypatch):
    if passes == "dense forward":
        monkeypatch.setattr(event_linear, "FORWARD_DENSITY", 0.0)
    elif passes == "dense gradient":
        monkeypatch.setattr(event_linear, "GRADIENT_DENSITY", 0.0)
    x, weight, bias = inputs(dtype=dtype)
    x.requires_grad_()
    beta = torch.linspace(0.5, 0.95, 9, dtype=dtype).requires_grad_()
    generator = torch.Generator().manual_seed(3)
    state = LeakyState(torch.rand(3, 9, dtype=dtype, generator=generator).requires_grad_(),
                       torch.empty(3, 9, dtype=dtype).bernoulli_(0.3, generator=generator).requires_grad_())
    leaves = (x, weight, bias, beta, *state)
    results = []
    for run in (reference, fused):
        spikes, final = run(x, weight, bias, beta, Triangle(gamma=0.3), detach_reset, state)
        results.append((spikes.detach(), torch.autograd.grad(loss(spikes, final), leaves, allow_unused=True)))
    (want_spikes, want), (got_spikes, got) = results
    assert torch.equal(got_spikes, want_spikes) and 0.05 < got_spikes.mean() < 0.5
    tolerance = {torch.float32: 1e-5, torch.float64: 1e-10}[dtype]
    for name, a, b in zip(("x", "weight", "bias", "beta", "v0", "z0"), got, want, strict=True):
        if b is None:  # z0 with the reset detached
            assert a is None or not a.any(), name
            continue
        error = (a - b).abs().max() / b.abs().max()
        assert error <= tolerance, f"{name}: relative error {error:.3g}"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("passes", ["sparse", "dense forward", "dense gradient"])
def test_it_is_one_graph_node_and_equals_the_two_operations_bit_for_bit(dtype, passes, monkeypatch):
    if passes == "dense forward":
        monkeypatch.setattr(event_linear, "FORWARD_DENSITY", 0.0)
    elif passes == "dense gradient":
        monkeypatch.setattr(event_linear, "GRADIENT_DENSITY", 0.0)
    x, weight, bias = inputs(seed=4, dtype=dtype)
    x.requires_grad_()
    beta = torch.linspace(0.5, 0.95, 9, dtype=dtype).requires_grad_()
    state = LeakyState(torch.full((3, 9), 0.5, dtype=dtype).requires_grad_(),
                       torch.ones(3, 9, dtype=dtype).requires_grad_())
    leaves = (x, weight, bias, beta, *state)
    options = dict(beta=beta, threshold=THRESHOLD, surrogate=Triangle(gamma=0.3), state=state)
    results = []
    for spikes, final in (linear_lif_sequence(x, weight, bias, **options),
                          lif_sequence(spike_linear(x, weight, bias), **options)):
        results.append((spikes.grad_fn, spikes.detach(), final.v.detach(),
                        *torch.autograd.grad(loss(spikes, final), leaves)))
    (node, *fused_results), (_, *separate_results) = results
    assert type(node).__name__ == "_LinearLeakySequenceBackward"
    for a, b in zip(fused_results, separate_results, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("passes", ["sparse", "dense forward", "dense gradient"])
def test_second_derivatives_equal_autograd(detach_reset, passes, monkeypatch):
    """With create_graph the backward runs linear and the recurrence again with autograd: grad-of-grad
    with respect to every input equals the reference's (before: silently dropped)."""
    if passes == "dense forward":
        monkeypatch.setattr(event_linear, "FORWARD_DENSITY", 0.0)
    elif passes == "dense gradient":
        monkeypatch.setattr(event_linear, "GRADIENT_DENSITY", 0.0)
    x, weight, bias = inputs(seed=9)
    beta = torch.linspace(0.5, 0.95, 9, dtype=torch.float64)
    state = LeakyState(torch.full((3, 9), 0.5, dtype=torch.float64), torch.ones(3, 9, dtype=torch.float64))
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias, beta, *state)]

    def squared_gradient(path):
        x, weight, bias, beta, v0, z0 = leaves
        spikes, final = path(x, weight, bias, beta, FastSigmoid(5.0), detach_reset, LeakyState(v0, z0))
        first = torch.autograd.grad(loss(spikes, final), leaves, create_graph=True, materialize_grads=True)
        second = torch.autograd.grad(sum((g ** 2).sum() for g in first), leaves, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(leaves, second)]

    expected = squared_gradient(reference)
    assert all(g.abs().max() > 0 for g in expected[:4])
    for a, b in zip(squared_gradient(fused), expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item())


def test_a_retained_graph_backpropagates_twice_with_the_currents_recomputed():
    x, weight, bias = inputs(seed=5)
    spikes, final = fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
    total = loss(spikes, final)
    first = torch.autograd.grad(total, (weight, bias), retain_graph=True)
    second = torch.autograd.grad(total, (weight, bias))
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_graphs_alive_at_once_do_not_share_a_buffer():
    runs = [inputs(seed=seed) for seed in (6, 7, 8)]
    alone = []
    for x, weight, bias in runs:
        spikes, final = fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
        alone.append(torch.autograd.grad(loss(spikes, final), weight)[0])
    for order in ([0, 1, 2], [2, 0, 1]):  # three forward passes, then their backward passes
        losses = [loss(*fused(x, weight, bias, 0.9, Triangle(gamma=0.3))) for x, weight, bias in runs]
        for i in order:
            assert torch.equal(torch.autograd.grad(losses[i], runs[i][1])[0], alone[i])


def test_the_buffer_is_reused_after_a_backward_pass_or_a_dropped_graph():
    x, weight, bias = inputs(seed=9)
    taken = []
    original = workspace.take
    def workspace_take(shape, like):  # weak references: holding the output spikes would hold their graph
        buffer = original(shape, like)
        taken.append(weakref.ref(buffer))
        return buffer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workspace, "take", workspace_take)
        fused(x, weight, bias, 0.9, Triangle(gamma=0.3))  # a graph dropped without a backward pass
        for _ in range(2):
            spikes, final = fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
            loss(spikes, final).backward()
        with torch.no_grad():
            fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
    currents = [buffer() for buffer in taken[0::2]]  # each pass takes the currents' buffer, then the output's
    assert len(taken) == 8 and currents[0] is not None and all(buffer is currents[0] for buffer in currents)


def test_a_pass_in_inference_mode_leaves_nothing_a_training_pass_cannot_write(monkeypatch):
    monkeypatch.setattr(event_linear, "FORWARD_DENSITY", 0.0)  # currents by torch.mm(out=buffer)
    x, weight, bias = inputs(seed=13)
    with torch.inference_mode():
        fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
    spikes, final = fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
    want, _ = reference(x, weight, bias, 0.9, Triangle(gamma=0.3))
    assert torch.equal(spikes, want)
    loss(spikes, final).backward()


def test_a_buffer_given_back_while_the_lock_is_held_does_not_deadlock():
    # the garbage collector may drop a lease at any allocation, also inside take's own locked loop
    like = torch.zeros(1)
    buffer = workspace.take((3, 4), like)
    with workspace._lock:
        giving = threading.Thread(target=workspace.give, args=(buffer,), daemon=True)
        giving.start()  # another thread would deadlock only if give waited for the lock; it must not
        giving.join(timeout=10)
        assert not giving.is_alive()
    assert workspace.take((3, 4), like) is buffer


def test_the_workspace_keeps_what_fits_and_frees_on_request(monkeypatch):
    like = torch.zeros(1)
    buffer = workspace.take((4, 5), like)
    workspace.give(buffer)
    assert workspace.take((4, 5), like) is buffer
    assert workspace.take((4, 5), like) is not buffer  # handed out once
    assert workspace.take((4, 5), like.double()).dtype == torch.float64
    monkeypatch.setattr(workspace, "MAX_BYTES", 100)
    older, newer = torch.empty(4, 5), torch.empty(2, 5)
    workspace.give(older)  # 80 bytes: kept
    workspace.give(newer)  # 120 in all: over the cap, the older one goes
    assert workspace.take((4, 5), like) is not older
    assert workspace.take((2, 5), like) is newer
    workspace.give(newer)
    workspace.empty_cache()
    assert workspace.take((2, 5), like) is not newer


@pytest.mark.parametrize("case", ["graded input", "custom surrogate"])
def test_graded_input_is_fused_and_other_surrogates_run_the_two_operations(case):
    x, weight, bias = inputs(seed=10)
    surrogate = Halved() if case == "custom surrogate" else Triangle(gamma=0.3)
    if case == "graded input":
        x = 2.5 * x
    spikes, _ = fused(x, weight, bias, 0.9, surrogate)
    expected = "_LinearLeakySequenceBackward" if case == "graded input" else "_LeakySequenceBackward"
    assert type(spikes.grad_fn).__name__ == expected
    want, _ = reference(x, weight, bias, 0.9, surrogate)
    assert torch.equal(spikes, want)


def test_without_a_graph_it_returns_the_same_spikes():
    x, weight, bias = inputs(seed=11)
    with torch.no_grad():
        spikes, final = fused(x, weight, bias, 0.9, Triangle(gamma=0.3))
    want, want_final = reference(x, weight, bias, 0.9, Triangle(gamma=0.3))
    assert torch.equal(spikes, want) and torch.allclose(final.v, want_final.v, rtol=1e-12, atol=1e-12)


def test_bad_arguments_are_refused_with_their_names():
    x, weight, bias = inputs(seed=12)
    with pytest.raises(ValueError, match=r"x must be a \(T, B, n_in\)"):
        fused(x[0], weight, bias, 0.9, Triangle())
    with pytest.raises(ValueError, match=r"x has 12 inputs per step but weight is \(9, 11\)"):
        fused(x, weight[:, :11], bias, 0.9, Triangle())
    with pytest.raises(ValueError, match=r"bias must be None or a tensor of shape \(9,\), got \(1, 9\)"):
        fused(x, weight, bias[None], 0.9, Triangle())
    with pytest.raises(ValueError, match="beta"):
        fused(x, weight, bias, 1.5, Triangle())
    with pytest.raises(ValueError, match="threshold"):
        linear_lif_sequence(x, weight, bias, beta=0.9, threshold=-1.0, surrogate=Triangle())
    with pytest.raises(ValueError, match="state"):
        fused(x, weight, bias, 0.9, Triangle(), state=LeakyState(torch.zeros(2, 9), torch.zeros(2, 9)))
    with pytest.raises(ValueError, match="NaN"):
        fused(x, weight, torch.full_like(bias, float("nan")), 0.9, Triangle())
