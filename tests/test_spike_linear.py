"""Event-driven synapses equal the matrix product they replace, values and gradients (autograd of
``torch.nn.functional.linear`` is the reference), and step aside where they do not apply."""
import pytest
import torch
import torch.nn.utils.prune  # noqa: F401 (torch.nn.utils.prune is used below)

from neuroplastic import ALIF, FastSigmoid, run
from neuroplastic.fused import backend, event_linear as module, fallback, linear_lif_sequence, spike_linear
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork

pytestmark = pytest.mark.skipif(backend() != "cpp", reason="the event-driven kernel is C++ only")


def spikes(shape, density, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.empty(shape, dtype=dtype).bernoulli_(density, generator=generator)


def parameters(n_in, n_out, dtype=torch.float64, seed=1):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(n_out, n_in, dtype=dtype, generator=generator).requires_grad_()
    bias = torch.randn(n_out, dtype=dtype, generator=generator).requires_grad_()
    return weight, bias


def calls_of_the_kernel(monkeypatch):
    """Records (sparse forward, sparse gradient) of every input indexed as spikes."""
    calls = []
    original = module.index

    def index(*args):
        events = original(*args)
        if events is not None:
            calls.append((events.sparse_forward, events.sparse_gradient))
        return events
    monkeypatch.setattr(module, "index", index)
    return calls


# n_out 37 and 200: tiles and a remainder; 64 and 16: whole tiles of float64 and float32.
@pytest.mark.parametrize("n_in, n_out", [(12, 37), (50, 200), (33, 64), (8, 16)])
@pytest.mark.parametrize("density", [0.05, 0.2, 0.3])
@pytest.mark.parametrize("sparse_gradient", [True, False])
def test_values_and_all_gradients_equal_autograd_of_linear(n_in, n_out, density, sparse_gradient,
                                                           monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    if not sparse_gradient:
        monkeypatch.setattr(module, "GRADIENT_DENSITY", 0.0)  # BLAS's weight gradient from the spikes
    x = spikes((30, 4, n_in), density).requires_grad_()
    weight, bias = parameters(n_in, n_out)
    grad_out = torch.randn(30, 4, n_out, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ours = spike_linear(x, weight, bias)
    expected = torch.nn.functional.linear(x, weight, bias)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(ours, (x, weight, bias), grad_out)
    want = torch.autograd.grad(expected, (x, weight, bias), grad_out)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert calls == [(True, sparse_gradient)]  # the event-driven forward ran, and the chosen gradient


def kernels_run(monkeypatch):
    """Records the name of every event-driven sum that runs."""
    ran = []
    namespace = torch.ops.neuroplastic_fused
    for name in ("spike_sum", "spike_sum_packed"):
        original = getattr(namespace, name)
        monkeypatch.setattr(namespace, name, lambda *args, _name=name, _original=original:
                            ran.append(_name) or _original(*args))
    return ran


@pytest.mark.parametrize("passes", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("fused", [False, True], ids=["spike_linear", "linear_lif_sequence"])
def test_each_pass_runs_the_kernel_chosen_for_it(passes, fused, monkeypatch):
    sparse_forward, sparse_gradient = passes
    monkeypatch.setattr(module, "FORWARD_DENSITY", 1.0 if sparse_forward else 0.0)
    monkeypatch.setattr(module, "GRADIENT_DENSITY", 1.0 if sparse_gradient else 0.0)
    ran = kernels_run(monkeypatch)
    x = spikes((30, 4, 12), 0.2)
    weight, bias = parameters(12, 20)
    if fused:
        out, _ = linear_lif_sequence(x, weight, bias, beta=0.9, threshold=1.0, surrogate=FastSigmoid())
    else:
        out = spike_linear(x, weight, bias)
    assert ran == ["spike_sum"] * sparse_forward
    out.sum().backward()
    assert ran == ["spike_sum"] * sparse_forward + ["spike_sum_packed"] * sparse_gradient


def test_float32_agrees_to_rounding_and_rows_are_summed_alike_in_any_batch():
    x = spikes((40, 8, 64), 0.2, torch.float32)
    weight, _ = parameters(64, 100, torch.float32)
    whole = spike_linear(x, weight)
    torch.testing.assert_close(whole, torch.nn.functional.linear(x, weight), rtol=1e-5, atol=1e-5)
    by_step = torch.stack([spike_linear(x_t, weight) for x_t in x])
    assert torch.equal(whole, by_step)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_columns_sums_do_not_depend_on_where_a_tile_ends(dtype):
    """Widths of whole vectors, of a tile narrowed to them plus single columns (100 = 6 × 16 + 4 floats)
    and of single columns alone: every output column gets the same bits as that column computed on its
    own, and the values of the matrix product (float64 to 1e-12)."""
    x = spikes((30, 70), 0.15, dtype)
    weight, bias = parameters(70, 261, dtype)
    weight, bias = weight.detach(), bias.detach()
    with torch.no_grad():
        for lo, hi in ((0, 100), (3, 20), (0, 261), (5, 6), (0, 32), (40, 169)):
            part = spike_linear(x, weight[lo:hi], bias[lo:hi])
            columns = torch.cat([spike_linear(x, weight[c:c + 1], bias[c:c + 1]) for c in range(lo, hi)], 1)
            assert torch.equal(part, columns), (lo, hi)
            if dtype == torch.float64:
                torch.testing.assert_close(part, torch.nn.functional.linear(x, weight[lo:hi], bias[lo:hi]),
                                           rtol=0, atol=1e-12)


def test_rows_without_spikes_get_the_bias_and_no_weight_gradient():
    x = torch.zeros(5, 3, 10, dtype=torch.float64)
    x[2, 1, 4] = 1.0
    weight, bias = parameters(10, 20)
    out = spike_linear(x, weight, bias)
    torch.testing.assert_close(out[0, 0], bias.detach())
    (grad_weight,) = torch.autograd.grad(out.sum(), weight)
    expected = torch.zeros_like(weight)
    expected[:, 4] = 1.0
    torch.testing.assert_close(grad_weight, expected)


# graded spikes: payloads of a few bits, learned magnitudes (any sign), and a NaN (its row is NaN, as
# in a matrix product)
@pytest.mark.parametrize("payloads", ["levels", "signed", "nan"])
@pytest.mark.parametrize("sparse_gradient", [True, False])
def test_graded_spikes_are_events_that_scale_their_rows(payloads, sparse_gradient, monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    if not sparse_gradient:
        monkeypatch.setattr(module, "GRADIENT_DENSITY", 0.0)
    generator = torch.Generator().manual_seed(3)
    x = spikes((30, 4, 50), 0.2)
    if payloads == "levels":
        x = x * torch.randint(1, 16, x.shape, generator=generator) / 7.5
    elif payloads == "signed":
        x = x * torch.randn(50, dtype=torch.float64, generator=generator)
    else:
        x[3, 1, 2] = float("nan")
    x.requires_grad_()
    weight, bias = parameters(50, 37)
    grad_out = torch.randn(30, 4, 37, dtype=torch.float64, generator=generator)
    ours, expected = spike_linear(x, weight, bias), torch.nn.functional.linear(x, weight, bias)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12, equal_nan=True)
    got = torch.autograd.grad(ours, (x, weight, bias), grad_out)
    want = torch.autograd.grad(expected, (x, weight, bias), grad_out)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert calls == [(True, sparse_gradient)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sparse_gradient", [True, False])
def test_graded_spikes_on_whole_tiles_and_several_gradient_blocks(dtype, sparse_gradient, monkeypatch):
    """n_out = 300: whole vector tiles and a remainder; 80 × 4 = 320 rows: two blocks of the weight
    gradient's transposed index, the payloads moved along with their rows."""
    if not sparse_gradient:
        monkeypatch.setattr(module, "GRADIENT_DENSITY", 0.0)
    generator = torch.Generator().manual_seed(7)
    x = spikes((80, 4, 40), 0.2, dtype) * torch.randint(1, 16, (80, 4, 40), generator=generator).to(dtype) / 7.5
    weight, bias = (t.detach().to(dtype).requires_grad_() for t in parameters(40, 300))
    grad_out = torch.randn(80, 4, 300, generator=generator).to(dtype)
    ours, expected = spike_linear(x, weight, bias), torch.nn.functional.linear(x, weight, bias)
    tolerance = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, expected, **tolerance)
    for a, b in zip(torch.autograd.grad(ours, (weight, bias), grad_out),
                    torch.autograd.grad(expected, (weight, bias), grad_out)):
        torch.testing.assert_close(a, b, **tolerance)


def test_graded_input_to_the_fused_layer_runs_the_events_with_the_gradients_of_the_step_path(monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    x = (spikes((40, 3, 24), 0.2) * torch.rand(40, 3, 24, dtype=torch.float64,
                                                generator=torch.Generator().manual_seed(4)) * 2).requires_grad_()
    weight, bias = parameters(24, 30)
    options = dict(beta=0.9, threshold=1.0, surrogate=FastSigmoid())
    fused, _ = linear_lif_sequence(x, weight, bias, **options)
    assert calls == [(True, True)]
    currents = torch.nn.functional.linear(x, weight, bias)
    zero = torch.zeros(3, 30, dtype=torch.float64)
    reference = fallback.differentiable(currents, 0.9, 1.0, FastSigmoid(), False, zero, zero)[0]
    assert torch.equal(fused.detach(), reference.detach())
    grad_out = torch.randn_like(fused)
    for a, b in zip(torch.autograd.grad(fused, (x, weight, bias), grad_out),
                    torch.autograd.grad(reference, (x, weight, bias), grad_out)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("change", ["dense", "int", "nan-weight", "bfloat16"])
def test_anything_but_sparse_spikes_takes_the_matrix_product(change, monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    x = spikes((20, 2, 16), 0.2)
    weight, bias = parameters(16, 8)
    if change == "dense":
        x = spikes((20, 2, 16), 0.8)
    elif change == "nan-weight":  # a matrix product spreads it to every row: so must we
        weight = weight.detach().clone()
        weight[0, 0] = float("nan")
    elif change == "bfloat16":  # even where the C++ kernel is demanded, linear takes other dtypes
        monkeypatch.setenv("NEUROPLASTIC_FUSED", "cpp")
        x, weight, bias = (t.detach().to(torch.bfloat16) for t in (x, weight, bias))
    elif change == "int":
        x = x.long()
        with pytest.raises(RuntimeError):  # what linear itself says of the mismatch
            spike_linear(x, weight, bias)
        assert calls == []
        return
    out = spike_linear(x, weight, bias)
    assert calls == []
    torch.testing.assert_close(out, torch.nn.functional.linear(x, weight, bias), equal_nan=True)


def test_beyond_the_forward_limit_only_the_gradient_is_event_driven(monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    n_in = module.FORWARD_MAX_INPUTS + 1
    x = spikes((3, 2, n_in), 0.1)
    weight, bias = parameters(n_in, 5)
    out = spike_linear(x, weight, bias)
    assert calls == [(False, True)]
    expected = torch.nn.functional.linear(x, weight, bias)
    assert torch.equal(out, expected)
    grad_out = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, (weight, bias), grad_out),
                    torch.autograd.grad(expected, (weight, bias), grad_out)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_torch_backend_setting_turns_it_off(monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    monkeypatch.setenv("NEUROPLASTIC_FUSED", "torch")
    x = spikes((10, 2, 8), 0.2)
    weight, _ = parameters(8, 4)
    torch.testing.assert_close(spike_linear(x, weight), torch.nn.functional.linear(x, weight))
    assert calls == []


@pytest.mark.parametrize("sparse_gradient", [True, False])
def test_second_derivatives_are_those_of_linear(sparse_gradient, monkeypatch):
    """With create_graph the backward is made of differentiable products: grad-of-grad with respect
    to input, weight and bias equals autograd of ``linear`` (before: silently first order)."""
    if not sparse_gradient:
        monkeypatch.setattr(module, "GRADIENT_DENSITY", 0.0)
    x = spikes((10, 2, 8), 0.2).requires_grad_()
    weight, bias = parameters(8, 4)

    def squared_gradient(linear):
        first = torch.autograd.grad(linear(x, weight, bias).pow(3).sum(), (x, weight, bias), create_graph=True)
        return torch.autograd.grad(sum(g.pow(2).sum() for g in first), (x, weight, bias))

    for a, b in zip(squared_gradient(spike_linear), squared_gradient(torch.nn.functional.linear)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def fused_network():
    generator = torch.Generator().manual_seed(0)
    lif = ALIF(tau_m=20.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0))
    layer = SpikingLayer(40, 30, lif, scale=3.0, generator=generator)
    return SpikingNetwork([layer], LeakyReadout(30, 3, generator=generator)).double()


def test_a_fused_layer_fed_spikes_uses_it_and_matches_its_step_path(monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    net = fused_network()
    x = spikes((50, 4, 40), 0.2)
    out = net(x)
    torch.testing.assert_close(out.readout, run(net, x, 1.0).readout, rtol=1e-12, atol=1e-12)
    assert calls == [(True, True)]
    assert type(out.spikes[0].grad_fn).__name__ == "_LinearLeakySequenceBackward"
    graded = net(x * 2.5)  # graded input: events too
    torch.testing.assert_close(graded.readout, run(net, x * 2.5, 1.0).readout, rtol=1e-12, atol=1e-12)
    assert len(calls) == 2


@pytest.mark.parametrize("hook", ["prune", "forward_hook", "global_hook"])
def test_synapses_with_hooks_are_called_as_modules(hook, monkeypatch):
    calls = calls_of_the_kernel(monkeypatch)
    net = fused_network()
    synapses = net.layers[0].synapses
    seen = []
    if hook == "prune":  # a forward pre-hook recomputes the weight from weight_orig and a mask
        torch.nn.utils.prune.l1_unstructured(synapses, "weight", amount=1.0)
    elif hook == "forward_hook":
        synapses.register_forward_hook(lambda *args: seen.append(1))
    else:
        handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: seen.append(1))
    x = spikes((50, 4, 40), 0.2)
    try:
        out = net(x)
    finally:
        if hook == "global_hook":
            handle.remove()
    assert calls == []
    if hook == "prune":
        assert sum(z.sum() for z in out.spikes) == 0  # every weight pruned: no current, no spike
    else:
        assert seen


def test_the_summed_weight_gradient_spreads_a_nan_as_the_product_does(monkeypatch):
    from neuroplastic.fused.event_linear import weight_gradient

    summed, original = [], module._summed_weight_gradient
    monkeypatch.setattr(module, "_summed_weight_gradient", lambda *a: summed.append(1) or original(*a))
    spikes = (torch.rand(50, 8, generator=torch.Generator().manual_seed(0)) < 0.1).float()
    spikes[7] = 0.0
    grad = torch.randn(50, module.GRADIENT_MIN_OUTPUTS)
    grad[7, 2] = float("nan")  # on a row without spikes
    expected = grad.t() @ spikes
    assert torch.equal(torch.isnan(weight_gradient(grad, spikes)), torch.isnan(expected))
    grad[7, 2] = 0.0
    torch.testing.assert_close(weight_gradient(grad, spikes), grad.t() @ spikes)
    assert len(summed) == 1 or module.extension.backend(spikes) != "cpp"  # the NaN took the product
    torch.testing.assert_close(weight_gradient(grad[:, :10], spikes), grad[:, :10].t() @ spikes)
    assert len(summed) <= 1  # few outputs: the product, whose index would cost more than it saves


@pytest.mark.parametrize("outputs", [9, 17])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("with_bias", [False, True])
def test_grouped_linear_is_each_groups_own_product(shared, with_bias, outputs, monkeypatch):
    """``grouped_linear`` (the models of a population) against one ``einsum``: graded and binary entries,
    rows without any (A·G·C = 5·4·3 rows of 70 inputs: two 64-input masks per row), one input read by
    every group, outputs within one padded row of 16 and beyond; values in float64, and through the
    differentiable form where a gradient is asked for."""
    generator = torch.Generator().manual_seed(3)
    x = spikes((5, 1 if shared else 4, 3, 70), 0.1) * torch.where(torch.rand(5, 1, 1, 70, generator=generator) < 0.5,
                                                                 1.0, torch.rand(5, 1, 1, 70, generator=generator)).double()
    x[0, :, 1] = 0.0
    weight = torch.randn(4, outputs, 70, generator=generator, dtype=torch.float64)
    bias = torch.randn(4, outputs, generator=generator, dtype=torch.float64) if with_bias else None
    want = torch.einsum("agck,gok->agco", x.expand(-1, 4, -1, -1), weight)
    if with_bias:
        want = want + bias[:, None, :]
    taken = []  # the kernel writes into a buffer of the workspace
    monkeypatch.setattr(module.workspace, "take", lambda shape, like: taken.append(shape) or like.new_empty(shape))
    torch.testing.assert_close(module.grouped_linear(x, weight, bias), want, rtol=0, atol=1e-13)
    assert taken == [(5, 4, 3, outputs)]
    weight.requires_grad_(True)
    out = module.grouped_linear(x, weight, bias)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-13)
    (grad,) = torch.autograd.grad(out.sum(), weight)
    torch.testing.assert_close(grad, torch.einsum("agck->gk", x.expand(-1, 4, -1, -1))[:, None].expand_as(grad))
    assert len(taken) == 1  # the gradient's way is the batched product


@pytest.mark.parametrize("grad", [False, True])
def test_grouped_linear_writes_into_its_slice_of_a_larger_buffer(grad):
    """``out``: the slice along the groups of a contiguous buffer (a population's chunks joined where
    they are written): that slice gets the product — the kernel's or, with a gradient, the batched
    product's, whose gradient flows through the buffer — and the rest of the buffer is untouched."""
    x = spikes((5, 1, 3, 70), 0.1)
    weight = torch.randn(2, 10, 70, dtype=torch.float64, requires_grad=grad)
    buffer = torch.full((5, 6, 3, 10), 7.0, dtype=torch.float64)
    written = module.grouped_linear(x, weight, out=buffer[:, 3:5])
    torch.testing.assert_close(buffer[:, 3:5], torch.einsum("agck,gok->agco", x.expand(-1, 2, -1, -1), weight),
                               rtol=0, atol=1e-13)
    assert written.data_ptr() == buffer[:, 3:5].data_ptr()
    assert torch.equal(buffer[:, :3], torch.full((5, 3, 3, 10), 7.0, dtype=torch.float64))
    assert torch.equal(buffer[:, 5:], torch.full((5, 1, 3, 10), 7.0, dtype=torch.float64))
    if grad:
        (g,) = torch.autograd.grad(buffer.sum(), weight)
        torch.testing.assert_close(g, x.sum((0, 1, 2)).expand(2, 10, -1))
    with pytest.raises(ValueError, match="out must be"):
        module.grouped_linear(x, weight, out=buffer[:, 3:4])


def test_grouped_linear_spreads_a_non_finite_weight_as_the_product_does():
    x = spikes((2, 3, 4, 8), 0.3)
    x[:, :, 0] = 0.0  # rows without input read the weight only through 0 · w
    weight = torch.randn(3, 5, 8, dtype=torch.float64)
    weight[1, 2, 0] = float("nan")
    out = module.grouped_linear(x, weight)
    assert torch.equal(out.isnan(), torch.einsum("agck,gok->agco", x, weight).isnan())
    assert out[:, 1, 0, 2].isnan().all()


def test_a_weight_gradient_without_inputs_or_rows_is_empty_or_zero():
    """``Gᵀ S`` of empty shapes, as the matrix product gives them."""
    assert module.weight_gradient(torch.randn(2, 5, 3), torch.zeros(2, 5, 0)).shape == (3, 0)
    assert torch.equal(module.weight_gradient(torch.randn(0, 3), torch.zeros(0, 4)), torch.zeros(3, 4))


def test_grouped_linear_of_empty_shapes_and_refused_shapes():
    """No rows or no groups give empty currents of the right shape on both ways; shapes that do not pair
    are refused with the mismatch named."""
    weight = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    assert module.grouped_linear(torch.zeros(0, 3, 4, 8, dtype=torch.float64), weight).shape == (0, 3, 4, 5)
    with torch.no_grad():
        assert module.grouped_linear(torch.zeros(2, 3, 0, 8, dtype=torch.float64), weight).shape == (2, 3, 0, 5)
    for x, bias, words in ((torch.zeros(2, 2, 4, 8), None, "does not fit"), (torch.zeros(2, 3, 4, 7), None, "does not fit"),
                           (torch.zeros(3, 4, 8), None, "takes x"), (torch.zeros(2, 1, 4, 8), torch.zeros(5), "bias must be")):
        with pytest.raises(ValueError, match=words):
            module.grouped_linear(x.double(), weight, bias)
