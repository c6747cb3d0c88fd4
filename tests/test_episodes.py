"""Few-shot episodes and the double-digits meta-datasets against their definitions: N-way K-shot
episodes (Vinyals et al. 2016), the class split and pair construction of Double N-MNIST (Stewart &
Neftci 2022), scikit-learn's own digit images, and N-MNIST bytes packed by hand."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroplastic.tasks import META_DATASETS, Episodes, MetaDataset, load_meta_dataset
from neuroplastic.tasks.double_digits import (
    _double_digit_pixels,
    double_digits,
    double_nmnist,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _labelled(classes=(6, 3, 4), samples=5, steps=2):
    """A meta-dataset whose every sample says who it is: input 0 = class index, 1 = sample index."""
    inputs = {}
    for split, n in zip(("train", "validation", "test"), classes):
        c, s, t = torch.meshgrid(torch.arange(n), torch.arange(samples), torch.arange(steps), indexing="ij")
        inputs[split] = torch.stack([c, s, t], dim=-1).float()
    return MetaDataset(name="labelled", inputs=inputs, dt=1.0)


def _identities(inputs):
    """(count, T, B, 3) episode inputs → (class, sample) of each of the B samples, (count, B) each."""
    return inputs[:, 0, :, 0].long(), inputs[:, 0, :, 1].long()


def _check_invariants(meta, split, ways, shots, queries, count, episodes):
    steps, n = meta.steps, meta.n_inputs
    assert isinstance(episodes, Episodes)
    assert episodes.support_inputs.shape == (count, steps, ways * shots, n)
    assert episodes.query_inputs.shape == (count, steps, ways * queries, n)
    assert episodes.support_inputs.dtype == episodes.query_inputs.dtype == torch.float32
    for targets, k in ((episodes.support_targets, shots), (episodes.query_targets, queries)):
        assert targets.dtype == torch.int64 and targets.shape == (count, ways * k)
        assert torch.stack([row.bincount(minlength=ways) for row in targets]).eq(k).all()
    support_class, support_sample = _identities(episodes.support_inputs)
    query_class, query_sample = _identities(episodes.query_inputs)
    for e in range(count):
        label_class = {}
        for cls, label in zip(torch.cat([support_class[e], query_class[e]]).tolist(),
                              torch.cat([episodes.support_targets[e], episodes.query_targets[e]]).tolist()):
            assert label_class.setdefault(label, cls) == cls  # one class per label
        assert len(set(label_class.values())) == ways and all(c < meta.classes(split) for c in label_class.values())
        support = set(zip(support_class[e].tolist(), support_sample[e].tolist()))
        query = set(zip(query_class[e].tolist(), query_sample[e].tolist()))
        assert len(support) == ways * shots and len(query) == ways * queries  # no sample twice
        assert not support & query


# ------------------------------------------------------------------------------------------ sampler


def test_episodes_hold_what_the_index_names_time_first():
    meta = _labelled()
    index = meta.episode_index("train", ways=3, shots=2, queries=1, count=4, generator=_gen(5))
    episodes = meta.episodes("train", ways=3, shots=2, queries=1, count=4, generator=_gen(5))
    assert index.classes.shape == (4, 3) and index.samples.shape == (4, 3, 3)
    expected = meta.inputs["train"][index.classes.unsqueeze(-1), index.samples]  # (4, 3, 3, T, 3)
    torch.testing.assert_close(episodes.support_inputs, expected[:, :, :2].permute(0, 3, 1, 2, 4).reshape(4, 2, 6, 3))
    torch.testing.assert_close(episodes.query_inputs, expected[:, :, 2:].permute(0, 3, 1, 2, 4).reshape(4, 2, 3, 3))
    assert episodes.support_targets.tolist() == [[0, 0, 1, 1, 2, 2]] * 4
    assert episodes.support_inputs[:, :, :, 2].eq(torch.arange(2.0).view(1, 2, 1)).all()  # time axis
    _check_invariants(meta, "train", 3, 2, 1, 4, episodes)


@settings(max_examples=40, deadline=None)
@given(split=st.sampled_from(["train", "validation", "test"]), ways=st.integers(1, 6),
       shots=st.integers(1, 4), queries=st.integers(1, 4), count=st.integers(1, 5), seed=st.integers(0, 2**31))
def test_episode_invariants_hold_for_every_valid_draw(split, ways, shots, queries, count, seed):
    meta = _labelled()
    ways = min(ways, meta.classes(split))
    queries = min(queries, meta.samples_per_class(split) - shots)
    episodes = meta.episodes(split, ways=ways, shots=shots, queries=queries, count=count, generator=_gen(seed))
    _check_invariants(meta, split, ways, shots, queries, count, episodes)


def test_episodes_come_from_the_generator_alone():
    meta = _labelled()
    draw = dict(ways=3, shots=2, queries=2, count=8)
    first, again = (meta.episodes("train", **draw, generator=_gen(1)) for _ in range(2))
    other = meta.episodes("train", **draw, generator=_gen(2))
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert not torch.equal(first.support_inputs, other.support_inputs)
    classes = meta.episode_index("train", **draw, generator=_gen(1)).classes
    assert len({tuple(row) for row in classes.tolist()}) > 1  # episodes of a batch differ
    assert not (classes.diff(dim=-1) > 0).all()  # labels are given to the classes in a random order


def test_every_class_and_label_order_turns_up():
    meta = _labelled(classes=(4, 3, 3))
    classes = meta.episode_index("train", ways=2, shots=1, queries=1, count=400, generator=_gen()).classes
    assert len({tuple(row) for row in classes.tolist()}) == 12  # all ordered pairs of 4 classes


@pytest.mark.parametrize("change, message", [
    (dict(split="meta"), "unknown labelled meta-split 'meta'"),
    (dict(ways=0), "ways must be an integer >= 1"),
    (dict(ways=7), "ways = 7 exceeds the 6 classes"),
    (dict(shots=0), "shots must be an integer >= 1"),
    (dict(queries=0), "queries must be an integer >= 1"),
    (dict(shots=3, queries=3), r"shots \+ queries = 6 exceeds the 5 samples per class"),
    (dict(count=0), "count must be an integer >= 1"),
    (dict(ways=2.5), "ways must be an integer"),
    (dict(generator=None), "generator must be a torch.Generator"),
])
def test_bad_episode_requests_raise_one_line_naming_the_parameter(change, message):
    request = dict(split="train", ways=2, shots=1, queries=1, count=1, generator=_gen())
    request.update(change)
    with pytest.raises(ValueError, match=message) as error:
        _labelled().episodes(request.pop("split"), **request)
    assert "\n" not in str(error.value)


def test_bad_meta_datasets_are_refused():
    with pytest.raises(ValueError, match="unknown meta-split 'dev'"):
        MetaDataset(name="x", inputs={"dev": torch.zeros(2, 2, 1, 1)}, dt=1.0)
    with pytest.raises(ValueError, match="shape \\(classes, samples_per_class, T, n_inputs\\)"):
        MetaDataset(name="x", inputs={"train": torch.zeros(2, 1, 1)}, dt=1.0)
    with pytest.raises(ValueError, match="class_ids repeat"):
        MetaDataset(name="x", inputs={"train": torch.zeros(2, 2, 1, 1), "test": torch.zeros(1, 2, 1, 1)}, dt=1.0,
                    class_ids={"train": torch.tensor([0, 1]), "test": torch.tensor([1])})


def test_a_vmapped_learner_maps_over_the_episodes():
    meta = _labelled()
    episodes = meta.episodes("train", ways=3, shots=2, queries=2, count=5, generator=_gen())

    def prototype_predictions(support, support_targets, query):  # (T, B, n) within one episode
        one_hot = torch.nn.functional.one_hot(support_targets, 3).float()
        prototypes = one_hot.T @ support.sum(0) / one_hot.sum(0, keepdim=True).T
        return torch.cdist(query.sum(0)[:, :1], prototypes[:, :1]).argmin(-1)

    predicted = torch.func.vmap(prototype_predictions)(episodes.support_inputs, episodes.support_targets,
                                                       episodes.query_inputs)
    assert torch.equal(predicted, episodes.query_targets)  # input 0 holds the class: prototypes are exact


# ------------------------------------------------------------------------------------ double digits


@pytest.fixture(scope="module")
def doubles():
    return double_digits(seed=0, samples_per_class=6)


def test_double_digits_split_by_class_64_16_20(doubles):
    assert {split: doubles.classes(split) for split in doubles.inputs} == {"train": 64, "validation": 16, "test": 20}
    ids = torch.cat(list(doubles.class_ids.values()))
    assert sorted(ids.tolist()) == list(range(100))  # disjoint and complete
    assert doubles.inputs["train"].shape == (64, 6, 20, 128) and doubles.inputs["train"].dtype == torch.uint8
    assert (doubles.n_inputs, doubles.steps, doubles.dt) == (128, 20, 1.0)
    assert load_meta_dataset("double-digits", seed=0, samples_per_class=6).class_ids["test"].equal(
        doubles.class_ids["test"])
    assert not double_digits(seed=1, samples_per_class=6).class_ids["test"].equal(doubles.class_ids["test"])


def test_a_pair_class_is_digit_a_left_of_digit_b_in_distinct_pairs():
    from sklearn.datasets import load_digits
    digits = load_digits()
    pixels, pairs = _double_digit_pixels(_gen(3), samples_per_class=30)
    assert pixels.shape == (100, 30, 128)
    images = pixels.view(100, 30, 8, 16)
    targets = torch.from_numpy(digits.target)
    a, b = torch.arange(100).div(10, rounding_mode="floor"), torch.arange(100) % 10
    assert targets[pairs.left].eq(a[:, None]).all() and targets[pairs.right].eq(b[:, None]).all()
    source = torch.tensor(digits.images / 16.0, dtype=torch.float32)
    torch.testing.assert_close(images[..., :8], source[pairs.left])
    torch.testing.assert_close(images[..., 8:], source[pairs.right])
    for c in range(100):
        assert len(set(zip(pairs.left[c].tolist(), pairs.right[c].tolist()))) == 30


def test_spike_counts_follow_the_pixels():
    meta = double_digits(seed=4, steps=200, max_rate_hz=1000.0, samples_per_class=2)
    pixels, _ = _double_digit_pixels(_gen(4), samples_per_class=2)
    for split, ids in meta.class_ids.items():
        rates = meta.inputs[split].float().mean(2)  # p = x at 1000 Hz and 1 ms
        expected = pixels[ids]
        assert (rates - expected).abs().max() < 0.15  # 200 Bernoulli draws: sd <= 0.036
        assert np.corrcoef(rates.flatten(), expected.flatten())[0, 1] > 0.99
        assert rates[expected == 0].sum() == 0


def test_prototypes_of_double_digits_beat_chance_on_meta_test(doubles):
    episodes = doubles.episodes("test", ways=5, shots=3, queries=3, count=20, generator=_gen())
    counts = episodes.support_inputs.sum(1)  # (count, 15, 128)
    prototypes = counts.view(20, 5, 3, 128).mean(2)
    predicted = torch.cdist(episodes.query_inputs.sum(1), prototypes).argmin(-1)
    assert (predicted == episodes.query_targets).float().mean() > 0.6  # chance: 0.2


def test_double_digits_and_registry_refuse_bad_options():
    for call, message in [
        (lambda: double_digits(samples_per_class=1), "samples_per_class must be an integer >= 2"),
        (lambda: double_digits(samples_per_class=10**6), "samples_per_class = 1000000 exceeds"),
        (lambda: double_digits(steps=0), "steps must be an integer >= 1"),
        (lambda: double_digits(max_rate_hz=5000.0), "rate·dt/1000 must be <= 1"),
        (lambda: load_meta_dataset("omniglot"), "unknown meta-dataset 'omniglot'; choose from double-digits"),
        (lambda: load_meta_dataset("double-digits", ways=5), "meta-dataset 'double-digits' has no option 'ways'"),
        (lambda: load_meta_dataset("double-digits", seed=-1), "seed must be an integer >= 0"),
        (lambda: load_meta_dataset("double-nmnist"), "double-nmnist reads local files: pass path="),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    assert set(META_DATASETS) == {"double-digits", "double-nmnist"}


# ------------------------------------------------------------------------------------ double N-MNIST


def _pack(events):
    """Orchard et al. 2015: x, y, then polarity in bit 7 above the 23-bit µs timestamp."""
    return b"".join(bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
                    for x, y, p, t in events)


def _write_digits(folder, files_per_digit=2):
    """Digit d's file i: one event at (x, y) = (d, i), polarity i % 2, t = 1000·(d + 1) µs → step d."""
    for digit in range(10):
        (folder / str(digit)).mkdir(parents=True)
        for i in range(files_per_digit):
            (folder / str(digit) / f"{i:05d}.bin").write_bytes(_pack([(digit, i, i % 2, 1000 * (digit + 1))]))


def test_double_nmnist_puts_the_right_digit_34_pixels_over(tmp_path):
    _write_digits(tmp_path)
    meta = double_nmnist(path=tmp_path, steps=12, samples_per_class=3, seed=1)
    assert meta.n_inputs == 4624 and meta.steps == 12 and meta.inputs["test"].shape == (20, 3, 12, 4624)
    for split, ids in meta.class_ids.items():
        dense = meta.inputs[split].to_dense()
        for c, class_id in enumerate(ids.tolist()):
            a, b = divmod(class_id, 10)
            sources = set()
            for s in range(3):
                step, channel = dense[c, s].nonzero().T.tolist()
                polarity, rest = np.divmod(channel, 34 * 68)
                y, x = np.divmod(rest, 68)
                assert sorted(x.tolist()) == [a, b + 34] and sorted(step) == sorted([a, b])
                assert (polarity == y % 2).all()
                sources.add(tuple(y[np.argsort(x)]))
            assert len(sources) == 3  # distinct (left file, right file) pairs
    episodes = meta.episodes("train", ways=4, shots=1, queries=2, count=2, generator=_gen())
    assert episodes.support_inputs.shape == (2, 12, 4, 4624) and episodes.query_inputs.shape == (2, 12, 8, 4624)
    assert episodes.support_inputs.dtype == torch.float32 and episodes.support_inputs.sum() == 2 * 4 * 2


def test_double_nmnist_names_missing_digits_and_too_few_pairs(tmp_path):
    _write_digits(tmp_path, files_per_digit=2)
    with pytest.raises(ValueError, match="samples_per_class = 5 exceeds the 2² distinct pairs"):
        double_nmnist(path=tmp_path, samples_per_class=5)
    for file in (tmp_path / "7").iterdir():
        file.unlink()
    with pytest.raises(ValueError, match="no .bin files of digit 7"):
        double_nmnist(path=tmp_path, samples_per_class=2)
    with pytest.raises(ValueError, match="not a folder"):
        double_nmnist(path=tmp_path / "nowhere")
