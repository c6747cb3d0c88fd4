"""The fused LIF sequence against autograd through the step path, for both backends."""
import subprocess
import sys
import warnings

import pytest
import torch

from neuroplastic import fused
from neuroplastic.fused import extension, lif_sequence
from neuroplastic.fused import lif as fused_lif
from neuroplastic.spikes import Arctan, Boxcar, FastSigmoid, Rescaled, Triangle, spike

SURROGATES = [FastSigmoid(scale=5.0), Triangle(gamma=0.3), Boxcar(width=1.0), Arctan(alpha=2.0)]
THRESHOLD = 1.0


def step_path(currents, beta, surrogate, detach_reset=False, state=None):
    """The reference: one ``spike`` per step, autograd through the Python loop."""
    v = torch.zeros_like(currents[0]) if state is None else state[0]
    z = torch.zeros_like(currents[0]) if state is None else state[1]
    spikes, voltages = [], []
    for current in currents:
        reset = z.detach() if detach_reset else z
        v = beta * v + current - THRESHOLD * reset
        z = spike(v - THRESHOLD, surrogate)
        spikes.append(z)
        voltages.append(v)
    return torch.stack(spikes), (v, z), torch.stack(voltages)


def fused_path(currents, beta, surrogate, detach_reset=False, state=None):
    return lif_sequence(currents, beta=beta, threshold=THRESHOLD, surrogate=surrogate,
                        detach_reset=detach_reset, state=state)


@pytest.fixture(params=["cpp", "torch"])
def backend(request, monkeypatch):
    monkeypatch.setenv(extension.ENV, request.param)
    monkeypatch.setattr(fused_lif, "_CHUNK", 7 * 3 * 8)  # backward in chunks of 7 steps of (3, 8)
    monkeypatch.setattr(fused_lif, "_INTERVAL", 3)  # or every third voltage kept, the last segment short
    if request.param == "cpp":
        try:
            fused.backend()
        except RuntimeError:
            pytest.skip("the C++ kernel could not be built here")
    return request.param


def currents(shape=(40, 3, 8), dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (0.6 * torch.randn(shape, generator=generator, dtype=torch.float64) + 0.35).to(dtype)


def assert_relative(actual, expected, tolerance):
    error = (actual - expected).abs().max() / expected.abs().max()
    assert error <= tolerance, f"relative error {error:.3g} > {tolerance:.0e}"


TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def compare(loss_fn, current, beta, surrogate, detach_reset, *, state=None, extra=()):
    """Spikes identical; gradients with respect to ``current`` and ``extra`` within TOLERANCE."""
    inputs = [current, *extra]
    results = []
    for run in (step_path, fused_path):
        spikes, final, *_ = run(current, beta, surrogate, detach_reset, state=state)
        grads = torch.autograd.grad(loss_fn(spikes, final), inputs)
        results.append((spikes.detach(), grads))
    (ref_spikes, ref_grads), (spikes, grads) = results
    assert torch.equal(spikes, ref_spikes)
    assert 0 < spikes.mean() < 0.5  # the test exercises both spiking and silence
    for got, want in zip(grads, ref_grads, strict=True):
        assert_relative(got, want, TOLERANCE[current.dtype])


def weighted_all_steps(spikes, final):
    weights = torch.linspace(-1.0, 2.0, spikes.numel(), dtype=spikes.dtype).reshape(spikes.shape)
    return (spikes * weights).sum() + (spikes.sum(0) ** 2).mean()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset-grad", "reset-detached"])
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: type(s).__name__)
def test_matches_the_step_path(backend, surrogate, detach_reset, dtype):
    current = currents(dtype=dtype).requires_grad_()
    assert fused.backend(current) == backend
    compare(weighted_all_steps, current, 0.9, surrogate, detach_reset)


def test_non_contiguous_currents(backend):
    current = currents(shape=(3, 40, 8)).transpose(0, 1).detach().requires_grad_()  # (40, 3, 8)
    compare(weighted_all_steps, current, 0.9, FastSigmoid(), False)


@pytest.mark.parametrize("loss", [lambda s, f: s.sum(), lambda s, f: s.sum(0).pow(2).sum(),
                                  lambda s, f: s[-1].sum() + 0.5 * s[3].sum()],
                         ids=["sum", "count-squared", "two-steps"])
def test_expanded_and_sparse_output_gradients(backend, loss):
    compare(loss, currents().requires_grad_(), 0.8, FastSigmoid(), False)


@pytest.mark.parametrize("shape", [(), (8,)], ids=["scalar", "per-neuron"])
def test_beta_tensor_gets_its_gradient(backend, shape):
    beta = torch.linspace(0.5, 1.0, 8, dtype=torch.float64)[-1 if not shape else slice(None)]
    beta = beta.reshape(shape).clone().requires_grad_()
    compare(weighted_all_steps, currents().requires_grad_(), beta, Triangle(), False, extra=(beta,))


@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset-grad", "reset-detached"])
def test_initial_state_and_a_loss_on_the_final_state(backend, detach_reset):
    generator = torch.Generator().manual_seed(1)
    v0 = torch.randn(3, 8, generator=generator, dtype=torch.float64).requires_grad_()
    z0 = (torch.rand(3, 8, generator=generator, dtype=torch.float64) < 0.5).double().requires_grad_()

    def loss(spikes, final):
        return weighted_all_steps(spikes, final) + (final[0] ** 2).sum() + 3 * final[1].sum()

    extra = (v0,) if detach_reset else (v0, z0)  # a detached reset gives z0 no gradient at all
    compare(loss, currents().requires_grad_(), 0.9, Arctan(), detach_reset, state=(v0, z0), extra=extra)


def test_chunks_continue_the_sequence_exactly(backend):
    current = currents().requires_grad_()
    whole, _ = lif_sequence(current, beta=0.9, threshold=THRESHOLD, surrogate=Boxcar())
    (whole_grad,) = torch.autograd.grad(weighted_all_steps(whole, None), current)
    first, state = lif_sequence(current[:17], beta=0.9, threshold=THRESHOLD, surrogate=Boxcar())
    second, _ = lif_sequence(current[17:], beta=0.9, threshold=THRESHOLD, surrogate=Boxcar(),
                             state=state)
    chunked = torch.cat([first, second])
    (chunked_grad,) = torch.autograd.grad(weighted_all_steps(chunked, None), current)
    assert torch.equal(chunked, whole)
    assert_relative(chunked_grad, whole_grad, 1e-12)


def test_fires_at_exactly_the_threshold(backend):
    current = torch.tensor([THRESHOLD, 0.0, THRESHOLD - 0.25]).reshape(3, 1, 1)
    spikes, state = lif_sequence(current, beta=1.0, threshold=THRESHOLD, surrogate=Boxcar())
    assert spikes.flatten().tolist() == [1.0, 0.0, 0.0]  # H(0) = 1; the reset took θ off at t = 1
    assert state.v.item() == THRESHOLD - 0.25


class Halved(FastSigmoid):
    """A surrogate the C++ kernel does not know (a subclass may change ``derivative``)."""

    def derivative(self, x):
        return 0.5 * super().derivative(x)


BUILT_IN = [FastSigmoid(scale=3.7), Triangle(gamma=0.7, width=0.3), Boxcar(width=0.3), Arctan(alpha=0.7)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("surrogate", BUILT_IN + [Rescaled(s, 0.7) for s in BUILT_IN] + [Halved()],
                         ids=repr)
def test_the_kernel_surrogate_is_the_derivative_of_spikes_py(backend, surrogate, dtype):
    """One step from rest: ``v_0 = I_0`` exactly, so ``dL/dI_0 = σ'(I_0 − θ)`` for ``L = Σ z_0``."""
    native = extension.native_surrogate(surrogate)
    assert (native is None) == (type(surrogate) is Halved)
    current = torch.linspace(-2.0, 2.0, 4001, dtype=dtype) + THRESHOLD
    current = torch.cat([current, THRESHOLD + torch.tensor([-0.5, -0.35, -0.15, 0.15, 0.35, 0.5])])
    current = current.to(dtype).reshape(1, 1, -1).requires_grad_()
    spikes, _ = lif_sequence(current, beta=0.9, threshold=THRESHOLD, surrogate=surrogate)
    spikes.sum().backward()
    expected = surrogate.derivative(current.detach() - THRESHOLD)
    tolerance = {torch.float32: 1e-6, torch.float64: 1e-15}[dtype]
    torch.testing.assert_close(current.grad, expected, rtol=tolerance, atol=0.0)


@pytest.mark.parametrize("detach_reset", [False, True], ids=["reset-grad", "reset-detached"])
def test_a_custom_surrogate_matches_the_step_path(backend, detach_reset):
    compare(weighted_all_steps, currents().requires_grad_(), 0.9, Halved(), detach_reset)


def test_many_neurons_split_among_threads_and_blocks(backend):
    current = currents(shape=(4, 2, 70_000), dtype=torch.float32).requires_grad_()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # each thread takes 70 000 neurons: a block of 65 536 and the rest
    try:
        compare(weighted_all_steps, current, 0.9, FastSigmoid(), False)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("surrogate", [Triangle(), Halved()], ids=["built-in", "custom"])
def test_one_graph_node_and_what_it_saves(backend, surrogate):
    current = currents(shape=(50, 2, 4)).requires_grad_()
    spikes, state = lif_sequence(current, beta=0.9, threshold=THRESHOLD, surrogate=surrogate)
    node = spikes.grad_fn
    assert type(node).__name__ == "_LeakySequenceBackward"
    inputs = [fn for fn, _ in node.next_functions if fn is not None]
    assert len(inputs) == 1 and inputs[0].variable is current  # straight to the leaf, no per-step ops
    saved_currents, kept, v0, z0, beta = node.saved_tensors
    assert v0.shape == current.shape[1:] and beta is None
    if backend == "cpp" and type(surrogate) is Triangle:  # the currents, and every third voltage
        assert saved_currents is current and kept.shape == (17, 2, 4) and z0.shape == v0.shape
        steps = [*range(2, 50, 3), 49]  # the last of every three steps, and the last step
        assert torch.equal(kept, step_path(current, 0.9, surrogate)[2][steps].detach())
    else:  # all the voltages, and the currents for a differentiable backward
        assert saved_currents is current and z0.shape == v0.shape
        assert torch.equal(kept, step_path(current, 0.9, surrogate)[2].detach())
    assert state.v.grad_fn is node and state.z.grad_fn.next_functions[0][0].next_functions[0][0] is node


def test_torch_func_grad_agrees_with_autograd(backend):
    current = currents()

    def loss(x):
        spikes, _ = lif_sequence(x, beta=0.9, threshold=THRESHOLD, surrogate=FastSigmoid())
        return weighted_all_steps(spikes, None)

    (expected,) = torch.autograd.grad(loss(current.requires_grad_()), current)
    assert_relative(torch.func.grad(loss)(current.detach()), expected, 1e-12)


@pytest.mark.parametrize("detach_reset", [False, True])
def test_second_derivatives_are_the_step_paths(backend, detach_reset):
    """A backward with create_graph runs the recurrence again with autograd: grad-of-grad with
    respect to the currents, β, v₀ and z₀ equals that of the step path (before: silently dropped)."""
    inputs = [currents(), torch.full((8,), 0.9, dtype=torch.float64), 0.3 * currents(seed=5)[0],
              (currents(seed=6)[0] > 0.5).double()]

    def squared_gradient(path):
        x = [t.clone().requires_grad_() for t in inputs]
        spikes, final = path(x[0], x[1], FastSigmoid(scale=5.0), detach_reset, state=(x[2], x[3]))[:2]
        loss = weighted_all_steps(spikes, None) + (final[0] ** 2).sum()
        first = torch.autograd.grad(loss, x, create_graph=True, allow_unused=True, materialize_grads=True)
        second = torch.autograd.grad(sum((g ** 2).sum() for g in first), x, allow_unused=True)
        return [torch.zeros_like(t) if g is None else g for t, g in zip(x, second)]

    expected = squared_gradient(step_path)
    assert expected[0].abs().max() > 0 and expected[1].abs().max() > 0
    for actual, wanted in zip(squared_gradient(fused_path), expected):
        torch.testing.assert_close(actual, wanted, rtol=1e-10, atol=1e-10 * wanted.abs().max().item())


def nan_currents():
    current = currents()
    current[5, 1, 2] = float("nan")
    return current


@pytest.mark.parametrize("change,message", [
    (dict(currents=torch.zeros(4, 8)), "shape"),
    (dict(currents=torch.zeros(4, 3, 8, dtype=torch.long)), "floating"),
    (dict(currents=torch.zeros(0, 3, 8)), "time step"),
    (dict(currents=nan_currents()), "NaN"),
    (dict(state=(torch.full((3, 8), float("inf")), torch.zeros(3, 8))), "NaN"),
    (dict(threshold=0.0), "threshold"),
    (dict(threshold=-1.0), "threshold"),
    (dict(beta=0.0), "beta"),
    (dict(beta=1.5), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(beta=torch.full((8,), 1.2)), "beta"),
    (dict(beta=torch.full((7,), 0.5)), "beta"),
    (dict(surrogate=lambda x: x), "surrogate"),
    (dict(detach_reset="yes"), "detach_reset"),
    (dict(state=(torch.zeros(3, 7), torch.zeros(3, 7))), "state"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_bad_input_names_the_problem(backend, change, message):
    arguments = dict(currents=currents(), beta=0.9, threshold=THRESHOLD, surrogate=Triangle())
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        lif_sequence(arguments.pop("currents"), **arguments)


def test_backend_choice(monkeypatch):
    monkeypatch.setenv(extension.ENV, "torch")
    assert fused.backend() == "torch"
    monkeypatch.setenv(extension.ENV, "auto")
    assert fused.backend(torch.zeros(1, dtype=torch.float16)) == "torch"
    monkeypatch.setenv(extension.ENV, "fast")
    with pytest.raises(ValueError, match=extension.ENV):
        fused.backend()
    monkeypatch.setenv(extension.ENV, "cpp")
    with pytest.raises(RuntimeError, match="float32 or float64"):
        fused.backend(torch.zeros(1, dtype=torch.float16))


def test_half_precision_runs_on_the_fallback():
    current = currents(dtype=torch.bfloat16).requires_grad_()
    spikes, _ = lif_sequence(current, beta=0.5, threshold=THRESHOLD, surrogate=Boxcar())
    spikes.sum().backward()
    assert spikes.dtype == current.grad.dtype == torch.bfloat16


def test_a_failed_build_falls_back_with_a_warning(monkeypatch):
    def broken():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(extension, "_build_and_load", broken)
    monkeypatch.setattr(extension, "_loaded", None)
    monkeypatch.setenv(extension.ENV, "auto")
    with pytest.warns(RuntimeWarning, match="no compiler"):
        assert fused.backend() == "torch"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not at every call
        assert fused.backend() == "torch"
    monkeypatch.setenv(extension.ENV, "cpp")
    with pytest.raises(RuntimeError, match="could not be built"):
        fused.backend()


def test_a_build_says_so_and_fit_builds_before_its_clock(monkeypatch, tmp_path, capsys):
    """A build (no library cached for these sources) prints one line on stderr before compiling; ``fit``
    builds before the first epoch starts its clock, not inside it (a first run on a machine reported the
    minute of compiling as training time)."""
    from torch.utils import cpp_extension

    from neuroplastic.training import fit as fit_module

    events = []
    load = extension._load
    monkeypatch.setattr(extension, "_load", lambda: events.append("build") or load())
    original = fit_module.Trainer.train_epoch
    monkeypatch.setattr(fit_module.Trainer, "train_epoch",
                        lambda self, *args: events.append("epoch") or original(self, *args))
    fit_module.fit("digits", "bptt", epochs=1, out=tmp_path / "run", progress=False)
    assert events[:2] == ["build", "epoch"]  # then every fused pass asks for the library again
    monkeypatch.setenv(extension.ENV, "torch")  # the fallback chosen: nothing to build
    events.clear()
    fit_module.fit("digits", "bptt", epochs=1, out=tmp_path / "again", progress=False)
    assert events == ["epoch"]

    def no_compiler(*args, **kwargs):
        raise RuntimeError("error: no compiler")
    monkeypatch.setenv(extension.ENV, "auto")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))  # nothing cached there
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    with pytest.raises(RuntimeError, match="no compiler"):
        extension._build_and_load()
    assert capsys.readouterr().err.startswith("neuroplastic: compiling the fused C++ kernels")


def test_importing_the_package_builds_nothing():
    code = "import neuroplastic, neuroplastic.fused as f; assert f.extension._loaded is None"
    subprocess.run([sys.executable, "-c", code], check=True)
