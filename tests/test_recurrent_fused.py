"""The recurrent ALIF layer's fused operation against autograd through the step path (``ALIF.step`` in
a loop with ``linear``): spikes, final state (to rounding: the recurrent product is summed event by
event) and every gradient (currents, recurrent weights, initial
state) — float64 to 1e-12, float32 to 1e-5 relative — for ALIF and LIF, refractory or not, every
built-in surrogate, the reset's gradient kept or detached; derivatives of the second order through
the step path; and a recurrent layer chooses it by itself where it applies."""
import math

import pytest
import torch

from neuroplastic.fused import calibration, extension
from neuroplastic.fused import recurrent as recurrent_module
from neuroplastic.fused.recurrent import alif_recurrent_sequence, step_path
from neuroplastic.networks import SpikingLayer
from neuroplastic.networks.paths import use_path
from neuroplastic.neurons import ALIF, ResetBySubtraction, ResetTo
from neuroplastic.neurons.alif import ALIFState
from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Surrogate, Triangle

pytestmark = pytest.mark.skipif(extension.backend() != "cpp", reason="needs the C++ kernel")

T, B, N = 40, 3, 12
ALIFS = {
    "alif": ALIF(tau_m=20.0, tau_a=200.0, v_th=0.6, beta=0.5, t_ref=2.0),
    "lif": ALIF(tau_m=10.0, beta=0.0, v_th=1.0, t_ref=0.0, surrogate=FastSigmoid(10.0)),
}
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}


def _problem(dtype, seed=0, scale=0.5):
    generator = torch.Generator().manual_seed(seed)
    currents = torch.randn(T, B, N, generator=generator, dtype=dtype) * scale + 0.1
    weight = (torch.randn(N, N, generator=generator, dtype=dtype) * 0.4).fill_diagonal_(0)
    return currents, weight, torch.randn(T, B, N, generator=generator, dtype=dtype)


def _state(neuron, dtype, random=False):
    state = neuron.init_state((B, N), dtype=dtype)
    if not random:
        return state
    generator = torch.Generator().manual_seed(7)
    return state._replace(v=torch.rand(B, N, generator=generator, dtype=dtype) * 0.5,
                          a=torch.rand(B, N, generator=generator, dtype=dtype),
                          z=(torch.rand(B, N, generator=generator) < 0.3).to(dtype))


def _run(sequence, neuron, currents, weight, state, weights, *, final=True):
    leaves = [x.detach().requires_grad_() for x in (currents, weight, state.v, state.a, state.z)]
    spikes, end = sequence(leaves[0], leaves[1], neuron, 1.0, state._replace(v=leaves[2], a=leaves[3], z=leaves[4]))
    loss = (spikes * weights).sum() + ((0.3 * end.v.sum() + 0.7 * end.a.sum()) if final else 0.0)
    return spikes.detach(), end, torch.autograd.grad(loss, leaves, allow_unused=True)


def _assert_close(fast, slow, dtype):
    scale = slow.abs().max().clamp(min=1e-30)
    assert float((fast - slow).abs().max() / scale) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", sorted(ALIFS))
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("random_start", [False, True])
def test_values_and_gradients_are_the_step_paths(dtype, kind, detach, random_start):
    neuron = ALIFS[kind]
    neuron = type(neuron)(**{**vars(neuron), "reset": ResetBySubtraction(detach=detach)})
    currents, weight, weights = _problem(dtype)
    state = _state(neuron, dtype, random_start)
    fast_spikes, fast_end, fast = _run(alif_recurrent_sequence, neuron, currents, weight, state, weights)
    slow_spikes, slow_end, slow = _run(step_path, neuron, currents, weight, state, weights)
    assert 0.02 < float(slow_spikes.mean()) < 0.5  # spikes, resets and refractory periods all happen
    assert torch.equal(fast_spikes, slow_spikes)
    for name in ("z", "refractory"):
        assert torch.equal(getattr(fast_end, name).detach(), getattr(slow_end, name).detach()), name
    for name in ("v", "a"):  # the recurrent product event by event: its sums in another order
        _assert_close(getattr(fast_end, name).detach(), getattr(slow_end, name).detach(), dtype)
    for name, f, s in zip(("currents", "weight", "v0", "a0", "z0"), fast, slow):
        _assert_close(f, s, dtype)


@pytest.mark.parametrize("surrogate", [FastSigmoid(25.0), Triangle(gamma=0.3, width=0.7), Boxcar(0.8), Arctan(2.0)],
                         ids=lambda s: type(s).__name__)
def test_every_built_in_surrogate(surrogate):
    neuron = ALIF(tau_m=20.0, tau_a=100.0, v_th=0.6, beta=0.3, t_ref=1.0, surrogate=surrogate)
    currents, weight, weights = _problem(torch.float64, seed=1)
    state = _state(neuron, torch.float64)
    fast = _run(alif_recurrent_sequence, neuron, currents, weight, state, weights)
    slow = _run(step_path, neuron, currents, weight, state, weights)
    assert torch.equal(fast[0], slow[0])
    for f, s in zip(fast[2], slow[2]):
        _assert_close(f, s, torch.float64)


def test_a_loss_on_the_spikes_alone_and_one_step():
    neuron = ALIFS["alif"]
    currents, weight, weights = _problem(torch.float64, seed=2)
    for steps in (1, T):
        fast = _run(alif_recurrent_sequence, neuron, currents[:steps], weight, _state(neuron, torch.float64, True),
                    weights[:steps], final=False)
        slow = _run(step_path, neuron, currents[:steps], weight, _state(neuron, torch.float64, True),
                    weights[:steps], final=False)
        for f, s in zip(fast[2], slow[2]):
            _assert_close(f, s, torch.float64)


def test_two_halves_continue_the_sequence_exactly():
    neuron = ALIFS["alif"]
    currents, weight, _ = _problem(torch.float64, seed=3)
    whole, _ = alif_recurrent_sequence(currents, weight, neuron, 1.0, _state(neuron, torch.float64))
    first, middle = alif_recurrent_sequence(currents[:17], weight, neuron, 1.0, _state(neuron, torch.float64))
    second, _ = alif_recurrent_sequence(currents[17:], weight, neuron, 1.0, middle)
    assert torch.equal(torch.cat([first, second]), whole)


@pytest.mark.parametrize("kind", sorted(ALIFS))
def test_without_a_graph_the_kernel_keeps_no_pseudo_derivative_and_runs_the_same_steps(kind, monkeypatch):
    neuron = ALIFS[kind]
    currents, weight, _ = _problem(torch.float64, seed=5)
    state = _state(neuron, torch.float64, random=True)
    kept = []
    original = recurrent_module._forward
    monkeypatch.setattr(recurrent_module, "_forward", lambda *args, **kwargs: kept.append(
        kwargs.get("keep_h", True)) or original(*args, **kwargs))
    with torch.no_grad():
        spikes, end = alif_recurrent_sequence(currents, weight, neuron, 1.0, state)
    graph_spikes, graph_end = alif_recurrent_sequence(currents, weight.requires_grad_(), neuron, 1.0, state)
    assert kept == [False, True]
    assert torch.equal(spikes, graph_spikes.detach())
    for value, want in zip(end, graph_end):
        assert torch.equal(value, want.detach())


def test_second_derivatives_are_the_step_paths():
    neuron = ALIFS["alif"]
    currents, weight, weights = _problem(torch.float64, seed=4)

    def gradient_norm(sequence):
        w = weight.detach().requires_grad_()
        spikes, _ = sequence(currents, w, neuron, 1.0, _state(neuron, torch.float64))
        (grad,) = torch.autograd.grad((spikes * weights).sum(), w, create_graph=True)
        return torch.autograd.grad((grad ** 2).sum(), w)[0]

    _assert_close(gradient_norm(alif_recurrent_sequence), gradient_norm(step_path), torch.float64)


def test_a_non_finite_current_is_refused():
    neuron = ALIFS["alif"]
    currents, weight, _ = _problem(torch.float32)
    currents[5, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="diverged"):
        alif_recurrent_sequence(currents, weight, neuron, 1.0, _state(neuron, torch.float32))


class _Smooth(Surrogate):
    def derivative(self, x):
        return torch.exp(-x * x)


@pytest.mark.parametrize("neuron, reason", [
    (ALIF(), None),
    (ALIF(beta=0.0, t_ref=0.0), None),
    (ALIF(surrogate=_Smooth()), "not one the kernel evaluates"),
    (ALIF(reset=ResetTo(0.0)), "not by subtraction"),
    (ALIF(tau_a=torch.full((N,), 100.0)), "must hold numbers"),
])
def test_a_recurrent_layer_takes_the_fused_path_where_it_applies(neuron, reason):
    torch.manual_seed(0)
    layer = SpikingLayer(8, N, neuron, recurrent=True, scale=3.0).double()
    assert layer.why_not_fused is None if reason is None else reason in layer.why_not_fused
    x = (torch.rand(T, B, 8) < 0.3).double()
    out, state = layer(x)
    (out.sum() + state.neuron.v.sum()).backward()
    fused = {name: p.grad.clone() for name, p in layer.named_parameters()}
    layer.zero_grad()
    with use_path("step"):
        reference, reference_state = layer(x)
        (reference.sum() + reference_state.neuron.v.sum()).backward()
    assert torch.equal(out, reference) and reference.sum() > 0
    for name, p in layer.named_parameters():
        _assert_close(fused[name], p.grad, torch.float64)
    node = type(out.grad_fn).__name__
    assert (node == "_RecurrentSequenceBackward") == (reason is None), node


def test_the_callers_currents_are_left_alone_unless_given_away():
    neuron = ALIFS["alif"]
    currents, weight, weights = _problem(torch.float64, seed=5)
    for reuse in (False, True):
        leaf = currents.clone().requires_grad_()
        given = leaf * 1.0  # made for this call
        before = given.detach().clone()
        spikes, _ = alif_recurrent_sequence(given, weight, neuron, 1.0, _state(neuron, torch.float64),
                                            reuse_currents=reuse)
        (grad,) = torch.autograd.grad((spikes * weights).sum(), leaf, retain_graph=True)
        assert torch.equal(given.detach(), before) != reuse  # the gradient was written over them
        assert torch.equal(torch.autograd.grad((spikes * weights).sum(), leaf)[0], grad)  # a second backward
    weight.requires_grad_()
    spikes, _ = alif_recurrent_sequence(currents * 1.0, weight, neuron, 1.0, _state(neuron, torch.float64),
                                        reuse_currents=True)
    torch.autograd.grad(spikes.sum(), weight, retain_graph=True)
    with pytest.raises(RuntimeError, match="take path='step'"):
        torch.autograd.grad(spikes.sum(), weight, create_graph=True)


@pytest.mark.parametrize("density", [-1.0, 1.0], ids=["products", "events"])
def test_the_recurrent_product_by_blas_or_event_by_event(monkeypatch, density):
    from neuroplastic.fused import recurrent

    monkeypatch.setattr(recurrent, "EVENT_DENSITY", density)
    neuron = ALIFS["alif"]
    currents, weight, weights = _problem(torch.float64, seed=6, scale=1.5)
    fast = _run(alif_recurrent_sequence, neuron, currents, weight, _state(neuron, torch.float64, True), weights)
    slow = _run(step_path, neuron, currents, weight, _state(neuron, torch.float64, True), weights)
    assert float(slow[0].mean()) > 0.1
    assert torch.equal(fast[0], slow[0])
    for f, s in zip(fast[2], slow[2]):
        _assert_close(f, s, torch.float64)


@pytest.mark.parametrize("density", [0.0, 1.0], ids=["dense", "where-h"])
@pytest.mark.parametrize("kind", sorted(ALIFS))
@pytest.mark.parametrize("models, width", [(1, 12), (2, 40)])
def test_the_backward_product_dense_or_only_where_h_needs_it(monkeypatch, density, kind, models, width):
    """The backward's ``ĝ^v_{t+1} W`` reaches the gradients only through ``h_t``: computed where ``h_t ≠ 0``
    alone (lanes of 16 and a tail, row blocks, each model's rows) or dense, the gradients are the step
    path's — the triangle's ``h`` mostly zero, the fast sigmoid's nowhere."""
    monkeypatch.setattr(recurrent_module, "pseudo_density", lambda *shape: density)
    neuron, rows = ALIFS[kind], 20
    generator = torch.Generator().manual_seed(9)
    currents = torch.randn(T, models * rows, width, generator=generator, dtype=torch.float64) * 0.5 + 0.1
    weights = torch.randn(models, width, width, generator=generator, dtype=torch.float64) * 0.4 * (1 - torch.eye(width))
    loss_weights = torch.randn(T, models * rows, width, generator=generator, dtype=torch.float64)
    state = neuron.init_state((models * rows, width), dtype=torch.float64)
    _, _, fast = _run(alif_recurrent_sequence, neuron, currents, weights if models > 1 else weights[0], state,
                      loss_weights)
    for m in range(models):
        part = slice(m * rows, (m + 1) * rows)
        _, _, slow = _run(step_path, neuron, currents[:, part], weights[m],
                          neuron.init_state((rows, width), dtype=torch.float64), loss_weights[:, part])
        _assert_close(fast[0][:, part], slow[0], torch.float64)
        _assert_close(fast[1][m] if models > 1 else fast[1], slow[1], torch.float64)


@pytest.mark.parametrize("dtype, scale", [(torch.float64, float("nan")), (torch.float32, 1e38)],
                         ids=["nan", "overflow"])
def test_a_non_finite_gradient_spreads_as_the_step_paths_does(monkeypatch, dtype, scale):
    """Where ``h = 0`` a NaN or infinity arriving through ``W`` still makes ``0 · NaN``: on a step whose
    ``ĝ^v_{t+1}`` is not finite, or whose product could overflow, the backward takes the dense product,
    and its NaNs fall where the step path's do — a NaN in one incoming gradient, and finite gradients
    so large that the product overflows."""
    monkeypatch.setattr(recurrent_module, "pseudo_density", lambda *shape: 1.0)
    neuron = ALIFS["alif"]
    currents, weight, weights = _problem(dtype, seed=3)
    if math.isnan(scale):
        weights[T // 2, 1, 4] = scale
    else:
        weights = (weights * scale).clamp(-3e38, 3e38)
    fast = _run(alif_recurrent_sequence, neuron, currents, weight, _state(neuron, dtype), weights)[2]
    slow = _run(step_path, neuron, currents, weight, _state(neuron, dtype), weights)[2]
    assert bool(slow[0].isnan().any()) and not bool(slow[0].isnan().all())
    for f, s in zip(fast, slow):
        assert torch.equal(f.isnan(), s.isnan())


def test_deterministic_algorithms_take_the_dense_product(monkeypatch):
    """The masked product's choice rests on a timing; under ``use_deterministic_algorithms`` it is never
    taken, whatever the measured density."""
    monkeypatch.setattr(recurrent_module, "pseudo_density", lambda *shape: 1.0)
    currents, weight, weights = _problem(torch.float64, seed=4)
    state = _state(ALIFS["alif"], torch.float64)
    torch.use_deterministic_algorithms(True)
    try:
        assert recurrent_module._max_pseudo(currents, weight[None]) == -1
        deterministic = _run(alif_recurrent_sequence, ALIFS["alif"], currents, weight, state, weights)[2]
    finally:
        torch.use_deterministic_algorithms(False)
    monkeypatch.setattr(recurrent_module, "pseudo_density", lambda *shape: 0.0)
    dense = _run(alif_recurrent_sequence, ALIFS["alif"], currents, weight, state, weights)[2]
    for d, e in zip(deterministic, dense):
        assert torch.equal(d, e)


def test_the_backward_products_density_is_measured_once_per_shape_and_machine(tmp_path, monkeypatch):
    """Measured on CPU tensors of its own, with a generator of its own (the caller's random stream is
    left alone), once per shape in a process and once per machine: a later process reads the value kept
    in the calibration file instead of timing again (a different timing would order the additions
    otherwise)."""
    monkeypatch.setenv(calibration.ENV, str(tmp_path / "calibration.json"))
    recurrent_module.pseudo_density.cache_clear()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    density = recurrent_module.pseudo_density(4, 24, 2, torch.float32, 1)
    assert torch.equal(torch.rand(3), expected)
    assert 0.0 <= density <= 1.0
    assert recurrent_module.pseudo_density(4, 24, 2, torch.float32, 1) == density
    assert recurrent_module.pseudo_density.cache_info().hits == 1
    recurrent_module.pseudo_density.cache_clear()  # as a new process
    monkeypatch.setattr(recurrent_module, "_measure_pseudo_density", lambda *shape: pytest.fail("timed again"))
    assert recurrent_module.pseudo_density(4, 24, 2, torch.float32, 1) == density
    recurrent_module.pseudo_density.cache_clear()


def test_a_calibration_is_kept_per_machine_and_measured_over_where_unusable(tmp_path, monkeypatch):
    """Kept per key and machine; a corrupt file, or an entry that is not a finite number, is measured
    over; NEUROPLASTIC_RECALIBRATE measures again; NEUROPLASTIC_CALIBRATION=off keeps nothing."""
    path = tmp_path / "calibration.json"
    monkeypatch.setenv(calibration.ENV, str(path))
    measured = []

    def measure(value):
        return lambda: measured.append(value) or value
    assert calibration.remembered("k", measure(0.25)) == 0.25
    assert calibration.remembered("k", measure(0.75)) == 0.25 and measured == [0.25]
    assert calibration.remembered("other", measure(0.5)) == 0.5
    monkeypatch.setattr(calibration, "machine", lambda: "another CPU")
    assert calibration.remembered("k", measure(0.75)) == 0.75
    path.write_text("{not json")
    assert calibration.remembered("k", measure(0.125)) == 0.125
    assert calibration.remembered("k", measure(0.9)) == 0.125
    path.write_text(path.read_text().replace("0.125", "null"))
    assert calibration.remembered("k", measure(0.375)) == 0.375
    monkeypatch.setenv(calibration.REFRESH, "1")
    assert calibration.remembered("k", measure(0.625)) == 0.625
    monkeypatch.delenv(calibration.REFRESH)
    assert calibration.remembered("k", measure(0.9)) == 0.625
    monkeypatch.setenv(calibration.ENV, "off")
    assert calibration.remembered("k", measure(0.9)) == 0.9 and calibration.remembered("k", measure(0.8)) == 0.8
    assert measured == [0.25, 0.5, 0.75, 0.125, 0.375, 0.625, 0.9, 0.8]


def test_two_generations_of_one_model_name_keep_calibrations_apart(tmp_path, monkeypatch):
    """A virtual machine names two CPU generations alike ("AMD EPYC"): the key holds the family and
    model numbers and the data caches too, so a calibration file shared by both measures on each."""
    monkeypatch.setenv(calibration.ENV, str(tmp_path / "calibration.json"))
    zen4 = {"model name": "AMD EPYC", "cpu family": "25", "model": "17"}
    for fields, cache, value in [(zen4, {"L1d": "32K", "L2": "1024K"}, 0.25),
                                 ({**zen4, "cpu family": "26", "model": "2"}, {"L1d": "48K", "L2": "1024K"}, 0.5),
                                 (zen4, {"L1d": "48K", "L2": "1024K"}, 0.75)]:
        monkeypatch.setattr(calibration, "cpu_info", lambda fields=fields: fields)
        monkeypatch.setattr(calibration, "caches", lambda cache=cache: cache)
        assert calibration.remembered("k", lambda value=value: value) == value
    monkeypatch.setattr(calibration, "caches", lambda: {"L1d": "32K", "L2": "1024K"})
    assert "family 25 model 17; L1d 32K; L2 1024K" in calibration.machine()
    assert calibration.remembered("k", lambda: 0.9) == 0.25
    monkeypatch.setattr(calibration, "caches", lambda: {})  # caches that cannot be read
    assert "(family 25 model 17) /" in calibration.machine()


def test_snntorch_rleaky_gives_the_recurrent_lif_layers_spikes():
    """The recurrent benchmark's peer (``bench --case recurrent``): snnTorch's RLeaky with the layer's
    weights computes the same recurrence, spike for spike."""
    pytest.importorskip("snntorch")
    from neuroplastic.bench import recurrent as benchmark

    layer, x = benchmark.workload("lif", 64, 100, 4)
    forward, _ = benchmark.snntorch_layer(layer)
    with torch.no_grad():
        ours, theirs = layer(x)[0], forward(x)
    assert layer.fused and 0.02 < float(ours.mean()) < 0.6
    assert torch.equal(ours, theirs)


def test_stacked_weights_run_each_model_on_its_own_rows():
    """M models at once (a population): the batch's rows in M groups, each through its own weights —
    spikes and gradients those of each model's step path alone."""
    neuron, models = ALIFS["alif"], 3
    generator = torch.Generator().manual_seed(8)
    currents = torch.randn(T, models * B, N, generator=generator, dtype=torch.float64) * 0.5 + 0.1
    weights = (torch.randn(models, N, N, generator=generator, dtype=torch.float64) * 0.4) * (1 - torch.eye(N))
    loss_weights = torch.randn(T, models * B, N, generator=generator, dtype=torch.float64)
    fast_spikes, _, fast = _run(alif_recurrent_sequence, neuron, currents, weights,
                                _state(neuron, torch.float64)._replace(**{k: torch.zeros(models * B, N, dtype=torch.float64)
                                                                          for k in ("v", "a", "z", "refractory")}),
                                loss_weights)
    for m in range(models):
        rows = slice(m * B, (m + 1) * B)
        slow_spikes, _, slow = _run(step_path, neuron, currents[:, rows], weights[m], _state(neuron, torch.float64),
                                    loss_weights[:, rows])
        assert torch.equal(fast_spikes[:, rows], slow_spikes)
        _assert_close(fast[0][:, rows], slow[0], torch.float64)
        _assert_close(fast[1][m], slow[1], torch.float64)
    with pytest.raises(ValueError, match="M dividing the batch"):
        alif_recurrent_sequence(currents[:, :4], weights, neuron, 1.0, _state(neuron, torch.float64))


def test_hooks_on_the_recurrent_synapses_keep_the_step_path():
    layer = SpikingLayer(8, N, ALIFS["alif"], recurrent=True, scale=3.0).double()
    assert layer.fused
    handle = layer.recurrent.register_forward_hook(lambda module, args, output: output * 0)
    assert not layer.fused and "hooks" in layer.why_not_fused
    x = (torch.rand(T, B, 8, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    with use_path("step"):
        reference = layer(x)[0]
    assert torch.equal(layer(x)[0], reference)  # the hook ran
    handle.remove()
    assert layer.fused


def test_a_non_finite_recurrent_weight_shows_as_divergence():
    """Event by event, a NaN weight of a neuron that never spikes would be skipped; a dense product
    spreads it, as the step path's does, and the layer says the neurons diverged."""
    layer = SpikingLayer(8, N, ALIFS["alif"], recurrent=True, scale=3.0).double()
    with torch.no_grad():
        layer.recurrent.parametrizations.weight.original[0, 5] = float("nan")
    x = (torch.rand(T, B, 8, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    for path in ("fused", "step"):
        with use_path(path), pytest.raises(ValueError, match="diverged"):
            layer(x)


def test_a_direct_call_checks_what_the_kernel_assumes():
    currents, weight, _ = _problem(torch.float64)
    state = _state(ALIFS["alif"], torch.float64)
    with pytest.raises(ValueError, match="not by subtraction"):
        alif_recurrent_sequence(currents, weight, ALIF(reset=ResetTo(0.0)), 1.0, state)
    with pytest.raises(ValueError, match="must hold numbers"):
        alif_recurrent_sequence(currents, weight, ALIF(tau_a=torch.full((N,), 100.0)), 1.0, state)
    with pytest.raises(ValueError, match="dt"):
        alif_recurrent_sequence(currents, weight, ALIFS["alif"], 0.0, state)
    one_row = ALIFState(*(x[:1] for x in state))  # a state that broadcasts over the batch, as the step path's
    spikes, _ = alif_recurrent_sequence(currents, weight, ALIFS["alif"], 1.0, one_row)
    assert torch.equal(spikes, step_path(currents, weight, ALIFS["alif"], 1.0, one_row)[0])


@pytest.mark.parametrize("recurrent", [False, True])
def test_a_backward_hook_on_the_input_synapses_runs_on_the_fused_path(recurrent):
    """Synapses with hooks are called as modules (the fused operations would compute their product
    themselves and skip the hooks)."""
    layer = SpikingLayer(8, N, ALIFS["lif"], recurrent=recurrent, scale=3.0).double()
    calls = []
    layer.synapses.register_full_backward_hook(lambda module, grad_in, grad_out: calls.append(1))
    x = (torch.rand(T, B, 8, generator=torch.Generator().manual_seed(0)) < 0.3).double().requires_grad_()
    out, _ = layer(x)
    assert layer.fused
    out.sum().backward()
    assert calls == [1]


@pytest.mark.parametrize("kind", ["alif", "lif"])
def test_the_fused_layer_keeps_at_most_fourtensors_per_step(kind):
    """Issue 19's memory goal: the forward+backward's tensor memory grows by ≤ 4 ``(B, N)`` tensors per
    step (the currents, overwritten by their gradient, the spikes, ``∂z/∂v`` and the input spikes'
    index). A finiteness check that made four temporaries of the gradient's size once broke it (4.95)."""
    from neuroplastic.bench import recurrent as benchmark

    layer, x = benchmark.workload(kind, 128, 200, 8)
    assert layer.fused
    assert benchmark.tensors_per_step(layer, x, 8, 128) <= 4.0
