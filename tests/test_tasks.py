"""Tasks against their definitions: the papers' task structure, probability theory, scikit-learn's
and mnist1d's own data, the randman reference code and the Fourier transform."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from neuroplastic.tasks import TASKS, Split, Task, load_task, population_encode
from neuroplastic.tasks.mnist_1d import slopes
from neuroplastic.tasks.randman import frequency_cutoff, manifold_values


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _within_se(count, trials, p, k=3.0):
    """``count`` successes in ``trials`` Bernoulli(p) draws lies within k standard errors."""
    return abs(count - trials * p) <= k * math.sqrt(trials * p * (1 - p))


# ---------------------------------------------------------------------------------------- interface


def _toy_task(sparse=False, kind="classification"):
    inputs = torch.arange(5 * 3 * 2, dtype=torch.float32).reshape(5, 3, 2)
    if kind == "classification":
        targets = torch.tensor([0, 1, 2, 1, 0])
    else:
        targets = -inputs[..., :1].clone()
    split = Split(inputs.to_sparse() if sparse else inputs, targets)
    classification = kind == "classification"
    return Task(name="toy", train=split, test=split, n_inputs=2, n_outputs=3 if classification else 1,
                dt=1.0, kind=kind, loss_steps=2 if classification else None), inputs, targets


@pytest.mark.parametrize("sparse", [False, True])
def test_batches_are_time_first_and_hold_every_sample_once(sparse):
    task, inputs, targets = _toy_task(sparse)
    batches = list(task.batches("train", 2, shuffle=True, generator=_gen()))
    assert [b[0].shape for b in batches] == [(3, 2, 2), (3, 2, 2), (3, 1, 2)]
    seen_inputs = torch.cat([x.transpose(0, 1) for x, _ in batches])
    seen_targets = torch.cat([y for _, y in batches])
    order = seen_inputs[:, 0, 0].long() // 6  # the first entry of sample i is 6 i
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4] and order.tolist() != [0, 1, 2, 3, 4]
    torch.testing.assert_close(seen_inputs, inputs[order])
    torch.testing.assert_close(seen_targets, targets[order])
    again = list(task.batches(task.train, 2, shuffle=True, generator=_gen()))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again, strict=True))
    in_order = torch.cat([x for x, _ in task.batches("test", 4, shuffle=False)], dim=1)
    torch.testing.assert_close(in_order, inputs.transpose(0, 1))


def test_regression_targets_are_batched_time_first():
    task, inputs, targets = _toy_task(kind="regression")
    x, y = next(task.batches("train", 5, shuffle=False))
    assert y.shape == (3, 5, 1)
    torch.testing.assert_close(y, targets.transpose(0, 1))


@pytest.mark.parametrize("change, message", [
    (dict(kind="ranking"), "kind"),
    (dict(n_outputs=2), "labels must lie"),
    (dict(loss_steps=4), "loss_steps"),
    (dict(n_inputs=3), "inputs have shape"),
])
def test_task_rejects_inconsistent_fields(change, message):
    _, inputs, targets = _toy_task()
    fields = dict(name="toy", train=Split(inputs, targets), test=Split(inputs, targets),
                  n_inputs=2, n_outputs=3, dt=1.0, kind="classification") | change
    with pytest.raises(ValueError, match=message):
        Task(**fields)


def test_split_rejects_bad_tensors():
    for dtype in (torch.float16, torch.int64):
        with pytest.raises(ValueError, match="float32 or float64"):
            Split(torch.zeros(2, 3, 4, dtype=dtype), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="2 input samples but 3 targets"):
        Split(torch.zeros(2, 3, 4), torch.zeros(3, dtype=torch.int64))


def test_float64_tasks_and_a_validation_split():
    task = load_task("randman", seed=0)
    double = task.to(torch.float64)
    inputs, labels = next(double.batches("train", 4, shuffle=False))
    assert inputs.dtype == torch.float64 and torch.equal(inputs.float(), next(task.batches("train", 4, shuffle=False))[0])
    held = double.with_validation(0.25, seed=1)
    assert len(held.validation) == round(0.25 * len(task.train)) and len(held.train) + len(held.validation) == len(task.train)
    dense = [split.inputs.to_dense().flatten(1) for split in (held.train, held.validation, double.train)]
    seen = torch.cat(dense[:2])
    assert torch.equal(seen.sort(0).values, dense[2].sort(0).values)  # the same samples, each once
    assert list(held.splits) == ["train", "validation", "test"] and held.test is double.test
    assert sum(len(y) for _, y in held.batches("validation", 7, shuffle=False)) == len(held.validation)
    with pytest.raises(ValueError, match="splits train, test, not 'validation'"):
        next(task.batches("validation", 4, shuffle=False))
    with pytest.raises(ValueError, match="fraction"):
        task.with_validation(1.5)
    with pytest.raises(ValueError, match="train inputs torch.float32"):
        Task("mixed", task.train, double.test, task.n_inputs, task.n_outputs, task.dt, task.kind)


def test_load_task_names_the_problem():
    assert set(TASKS) == {"digits", "mnist1d", "randman", "cue", "pattern", "shd", "nmnist", "timing"}
    with pytest.raises(ValueError, match="unknown task 'mnist'; choose from digits"):
        load_task("mnist")
    with pytest.raises(ValueError, match="no option 'rate'"):
        load_task("digits", rate=3)
    with pytest.raises(ValueError, match="seed"):
        load_task("pattern", seed=-1)
    for name in ("shd", "nmnist"):
        with pytest.raises(ValueError, match="pass path="):
            load_task(name)


# ------------------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train, test = train_test_split(np.arange(1797), test_size=0.2, stratify=digits.target,
                                   random_state=0)
    return digits.data / 16.0, digits.target, train, test


def test_digits_sizes_and_stratified_split(sklearn_digits):
    _, labels, train, test = sklearn_digits
    task = load_task("digits", encoding="latency")
    assert (len(task.train), len(task.test)) == (1437, 360)
    assert (task.n_inputs, task.n_outputs, task.kind) == (64, 10, "classification")
    totals = np.bincount(labels, minlength=10)
    in_test = np.bincount(task.test.targets.numpy(), minlength=10)
    assert np.all(np.abs(in_test - 0.2 * totals) <= 1)
    np.testing.assert_array_equal(task.train.targets.numpy(), labels[train])
    np.testing.assert_array_equal(task.test.targets.numpy(), labels[test])


def test_digits_latency_code_is_one_spike_per_inked_pixel(sklearn_digits):
    pixels, _, train, _ = sklearn_digits
    steps = 25
    spikes = load_task("digits", encoding="latency", steps=steps).train.inputs.numpy()
    x = pixels[train]
    expected = np.zeros_like(spikes)
    sample, pixel = np.nonzero(x > 0)
    expected[sample, np.round((1 - x[sample, pixel]) * (steps - 1)).astype(int), pixel] = 1
    np.testing.assert_array_equal(spikes, expected)
    assert spikes.sum() == (x > 0).sum()


def test_digits_rate_code_fires_at_value_times_max_rate(sklearn_digits):
    pixels, _, train, _ = sklearn_digits
    steps, rate = 40, 300.0
    spikes = load_task("digits", steps=steps, max_rate_hz=rate).train.inputs  # (n, T, 64)
    counts = spikes.sum(1).numpy()
    assert set(np.unique(spikes.numpy())) <= {0.0, 1.0}
    x = pixels[train]
    z = []
    for value in np.unique(x):
        chosen = x == value
        p = value * rate / 1000.0
        if value == 0:
            assert counts[chosen].sum() == 0
            continue
        trials = chosen.sum() * steps
        z.append((counts[chosen].sum() - trials * p) / math.sqrt(trials * p * (1 - p)))
    assert len(z) == 16 and max(map(abs, z)) < 4
    assert scipy.stats.chi2.sf(np.sum(np.square(z)), len(z)) > 1e-3


def test_digits_is_reproducible_and_the_seed_matters():
    a, b = load_task("digits", seed=3), load_task("digits", seed=3)
    assert torch.equal(a.train.inputs, b.train.inputs) and torch.equal(a.test.targets, b.test.targets)
    c = load_task("digits", seed=4)
    assert not torch.equal(a.train.inputs, c.train.inputs)
    with pytest.raises(ValueError, match="rate·dt/1000 must be <= 1"):
        load_task("digits", max_rate_hz=2000.0)
    with pytest.raises(ValueError, match="unknown digits encoding 'phase'"):
        load_task("digits", encoding="phase")


# ------------------------------------------------------------------------------------------ mnist1d


@pytest.fixture(scope="module")
def mnist1d_reference():
    from mnist1d.data import get_dataset_args, make_dataset

    return make_dataset(get_dataset_args())


def test_mnist1d_encodes_mnist1d_signals_with_the_documented_fields(mnist1d_reference):
    state = np.random.get_state()
    task = load_task("mnist1d", repeat=2, slope_levels=0)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # global generator untouched
    assert task.train.inputs.shape == (4000, 80, 32) and task.test.inputs.shape == (1000, 80, 32)
    assert task.n_outputs == 10 and set(task.test.targets.tolist()) == set(range(10))
    np.testing.assert_array_equal(task.train.targets.numpy(), mnist1d_reference["y"])
    np.testing.assert_array_equal(task.test.targets.numpy(), mnist1d_reference["y_test"])
    centres = np.linspace(-3, 3, 32)
    edge = 2.5 * 6 / 31
    for spikes, signals in ((task.train.inputs, mnist1d_reference["x"]),
                            (task.test.inputs, mnist1d_reference["x_test"])):
        torch.testing.assert_close(spikes[:, 0::2], spikes[:, 1::2])  # each value held 2 steps
        distance = np.abs(np.clip(signals, -3, 3)[..., None] - centres)
        disagree = spikes[:, 0::2].numpy() != (distance <= edge)
        assert np.all(np.abs(distance[disagree] - edge) < 1e-5)  # only float rounding at an edge
        assert disagree.mean() < 1e-5
        active = spikes.sum(-1)
        assert active.min() >= 3 and active.max() <= 6


def test_mnist1d_static_is_on_and_off_rates_of_the_signal(mnist1d_reference):
    task = load_task("mnist1d", static=True)
    assert task.n_inputs == 80 and task.train.inputs.shape == (4000, 1, 80)
    for rates, signals in ((task.train.inputs, mnist1d_reference["x"]), (task.test.inputs, mnist1d_reference["x_test"])):
        on, off = rates[:, 0, :40].double(), rates[:, 0, 40:].double()
        assert rates.min() >= 0 and rates.max() <= 1 and not torch.any((on > 0) & (off > 0))
        expected = torch.as_tensor(np.clip(signals, -3, 3) / 3)
        torch.testing.assert_close(on - off, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="static"):
        load_task("mnist1d", static="yes")


def test_mnist1d_slope_code_follows_the_first_differences(mnist1d_reference):
    task, amplitude = load_task("mnist1d"), load_task("mnist1d", slope_levels=0)
    assert task.n_inputs == 48 and task.train.inputs.shape == (4000, 40, 48)
    torch.testing.assert_close(task.train.inputs[..., :32], amplitude.train.inputs)
    torch.testing.assert_close(task.test.inputs[..., :32], amplitude.test.inputs)
    x = mnist1d_reference["x"]
    differences = np.diff(x, axis=1, prepend=x[:, :1])  # d_0 = 0
    spread = differences.std()
    centres, edge = np.linspace(-3, 3, 16), 2.5 * 6 / 15
    for spikes, signals in ((task.train.inputs, x), (task.test.inputs, mnist1d_reference["x_test"])):
        slope = np.diff(signals, axis=1, prepend=signals[:, :1]) / spread
        distance = np.abs(np.clip(slope, -3, 3)[..., None] - centres)
        disagree = spikes[..., 32:].numpy() != (distance <= edge)
        assert np.all(np.abs(distance[disagree] - edge) < 1e-4)  # only float rounding at an edge
        assert disagree.mean() < 1e-4
        assert torch.all(spikes[:, 0, 32:] == population_encode(torch.zeros(1), 16))  # d_0 = 0
    ramp = 0.5 * torch.arange(6.0) - 1.0
    torch.testing.assert_close(slopes(ramp), torch.tensor([0.0, 0.5, 0.5, 0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="slope_levels"):
        load_task("mnist1d", slope_levels=1)


def test_population_code_keeps_the_order_of_values():
    codes = population_encode(torch.tensor([-10.0, -1.0, 0.0, 1.0, 10.0]), 32)
    centre = (codes * torch.linspace(-3, 3, 32)).sum(1) / codes.sum(1)
    assert torch.all(centre.diff() > 0)
    torch.testing.assert_close(centre[[0, 4]], torch.tensor([-3 + 1.0 * 6 / 31, 3 - 1.0 * 6 / 31]))
    with pytest.raises(ValueError, match="levels"):
        population_encode(torch.zeros(3), 1)


# ------------------------------------------------------------------------------------------ randman


def _reference_randman_unit(x, theta, alpha):
    """fzenke/randman numpy_randman: eval_random_function (product over manifold dimensions of
    eval_random_function_1d), transcribed loop for loop."""
    out = np.ones(len(x))
    for d in range(x.shape[1]):
        tmp = np.zeros(len(x))
        s = 1.0 / ((np.arange(theta.shape[-1]) + 1) ** alpha)
        for i in range(theta.shape[-1]):
            tmp += theta[d, 0, i] * s[i] * np.sin(2 * np.pi * (i * x[:, d] * theta[d, 1, i]
                                                               + theta[d, 2, i]))
        out *= tmp
    return out


def test_randman_manifold_matches_the_reference_code():
    assert frequency_cutoff(2.0) == 32
    rng = np.random.default_rng(1)
    theta, x = rng.uniform(size=(3, 2, 3, 32)), rng.uniform(size=(50, 2))
    ours = manifold_values(torch.tensor(x), torch.tensor(theta), 2.0).numpy()
    for unit in range(3):
        np.testing.assert_allclose(ours[:, unit], _reference_randman_unit(x, theta[unit], 2.0),
                                   rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def randman():
    return load_task("randman", samples_per_class=200)


def test_randman_every_unit_fires_once_and_times_span_the_window(randman):
    assert (len(randman.train), len(randman.test)) == (1600, 400)
    dense = [randman.train.inputs.to_dense(), randman.test.inputs.to_dense()]
    for spikes in dense:
        assert torch.all(spikes.sum(1) == 1) and spikes.shape[1:] == (100, 100)
    times = torch.cat([s.argmax(1) for s in dense])
    labels = torch.cat([randman.train.targets, randman.test.targets])
    for k in range(10):  # min–max normalization over each class: first and last step are used
        assert torch.all(times[labels == k].min(0).values == 0)
        assert torch.all(times[labels == k].max(0).values == 99)


def test_randman_classes_are_separable_by_nearest_centroid(randman):
    def times(split):
        return split.inputs.to_dense().argmax(1).double()

    train, test = times(randman.train), times(randman.test)
    centroids = torch.stack([train[randman.train.targets == k].mean(0) for k in range(10)])
    predicted = torch.cdist(test, centroids).argmin(1)
    assert (predicted == randman.test.targets).double().mean() > 0.8  # chance: 0.1


def test_randman_is_reproducible_and_the_seed_matters():
    a = load_task("randman", samples_per_class=20, classes=3)
    b = load_task("randman", samples_per_class=20, classes=3)
    c = load_task("randman", samples_per_class=20, classes=3, seed=1)
    assert torch.equal(a.train.inputs.to_dense(), b.train.inputs.to_dense())
    assert not torch.equal(a.train.inputs.to_dense(), c.train.inputs.to_dense())


# ---------------------------------------------------------------------------------------------- cue


def _cue_structure(task, n_cues, dt):
    """Cue sides read from the spikes, after checking that the windows hold what the paper says."""
    spikes = task.train.inputs.to_dense()
    slot, onset, recall = round(150 / dt), round(50 / dt), round(150 / dt)
    left, right, recall_group = spikes[..., 0:10], spikes[..., 10:20], spikes[..., 20:30]
    cue_steps = torch.zeros(spikes.shape[1], dtype=torch.bool)
    sides = []
    for k in range(n_cues):
        window = slice(k * slot + onset, (k + 1) * slot)
        cue_steps[window] = True
        n_left, n_right = left[:, window].sum((1, 2)), right[:, window].sum((1, 2))
        assert torch.all((n_left > 0) != (n_right > 0))  # exactly one group speaks per cue
        sides.append((n_right > 0).long())
    assert left[:, ~cue_steps].sum() == 0 and right[:, ~cue_steps].sum() == 0
    assert recall_group[:, :-recall].sum() == 0 and task.loss_steps == recall
    return spikes, torch.stack(sides, 1)


def test_cue_task_has_the_paper_structure_and_rates():
    task = load_task("cue", train_samples=96, test_samples=8)
    assert task.train.inputs.shape == (96, 2250, 40) and task.test.inputs.shape == (8, 2250, 40)
    assert (task.n_outputs, task.dt) == (2, 1.0)
    spikes, sides = _cue_structure(task, 7, 1.0)
    assert torch.equal(task.train.targets, (sides.sum(1) >= 4).long())  # majority right → 1
    active = spikes[..., :20].sum()  # cue groups: 10 neurons × 100 ms per cue, at 40 Hz
    assert _within_se(active.item(), 96 * 7 * 100 * 10, 0.04)
    assert _within_se(spikes[:, -150:, 20:30].sum().item(), 96 * 150 * 10, 0.04)
    assert _within_se(spikes[..., 30:].sum().item(), 96 * 2250 * 10, 0.01)


def test_cue_sides_follow_the_0_3_and_0_7_mixture():
    samples = 1000
    task = load_task("cue", delay_ms=0.0, dt=10.0, train_samples=samples, test_samples=1)
    sample, step, unit = task.train.inputs.indices()  # sparse: read the cue spikes directly
    cue = unit < 20
    slot = sample[cue] * 7 + (step[cue] - 5) // 15  # cue k fills steps 15 k + 5 … 15 k + 14
    right = torch.zeros(samples * 7).index_add_(0, slot, (unit[cue] >= 10).float()) > 0
    right_cues = right.reshape(samples, 7).sum(1)
    assert torch.equal(task.train.targets, (right_cues >= 4).long())
    observed = np.bincount(right_cues.numpy(), minlength=8)
    mixture = 0.5 * scipy.stats.binom.pmf(np.arange(8), 7, 0.3) + \
        0.5 * scipy.stats.binom.pmf(np.arange(8), 7, 0.7)
    assert scipy.stats.chisquare(observed, samples * mixture).pvalue > 1e-3
    fair = scipy.stats.binom.pmf(np.arange(8), 7, 0.5)
    assert scipy.stats.chisquare(observed, samples * fair).pvalue < 1e-6
    assert 0.45 < task.train.targets.double().mean() < 0.55


def test_cue_task_scales_with_dt_and_number_of_cues():
    task = load_task("cue", n_cues=3, dt=2.0, train_samples=64, test_samples=4)
    assert task.train.inputs.shape == (64, (3 * 150 + 1050 + 150) // 2, 40)
    spikes, sides = _cue_structure(task, 3, 2.0)
    assert torch.equal(task.train.targets, (sides.sum(1) >= 2).long())
    assert _within_se(spikes[..., :20].sum().item(), 64 * 3 * 50 * 10, 0.08)
    with pytest.raises(ValueError, match="odd"):
        load_task("cue", n_cues=4)
    with pytest.raises(ValueError, match="not a multiple of dt"):
        load_task("cue", dt=7.0)


# ------------------------------------------------------------------------------------------ pattern


def test_pattern_target_is_four_sines_with_the_paper_periods():
    task = load_task("pattern")
    assert task.train is task.test and task.kind == "regression" and task.loss_steps is None
    assert task.train.inputs.shape == (1, 1000, 100) and task.train.targets.shape == (1, 1000, 1)
    target = task.train.targets[0, :, 0].double().numpy()
    spectrum = np.abs(np.fft.rfft(target)) * 2 / 1000  # bin k: k cycles per 1000 ms
    cycles = [1, 2, 3, 5]  # periods 1000, 500, 333⅓, 200 ms
    assert np.all((spectrum[cycles] >= 0.5) & (spectrum[cycles] <= 2.0))
    assert np.delete(spectrum, cycles).max() < 1e-5
    assert torch.equal(task.train.inputs.unique(), torch.tensor([0.0, 1.0]))
    assert _within_se(task.train.inputs.sum().item(), 100 * 1000, 0.05)


def test_pattern_is_reproducible_and_the_seed_matters():
    a, b, c = load_task("pattern"), load_task("pattern"), load_task("pattern", seed=1)
    assert torch.equal(a.train.targets, b.train.targets) and torch.equal(a.train.inputs, b.train.inputs)
    assert not torch.equal(a.train.targets, c.train.targets)
    assert load_task("pattern", dt=2.0).train.inputs.shape == (1, 500, 100)


def test_batches_of_sparse_stored_inputs_equal_the_dense_ones():
    """Inputs stored sparse over samples and time (events), or over the samples alone, batch as the same
    dense tensor, time first."""
    x = (torch.rand(6, 5, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    y = torch.randint(0, 2, (6,), generator=torch.Generator().manual_seed(1))
    for stored in (x, x.to_sparse(), x.to_sparse(2), x.to_sparse(1)):
        split = Split(stored, y)
        task = Task(name="t", train=split, test=split, n_inputs=4, n_outputs=2, dt=1.0, kind="classification")
        batches = list(task.batches("test", 4, shuffle=False))
        assert [b.shape for b, _ in batches] == [(5, 4, 4), (5, 2, 4)]
        torch.testing.assert_close(torch.cat([b for b, _ in batches], 1), x.transpose(0, 1), rtol=0, atol=0)
        assert all(b.is_contiguous() for b, _ in batches)
