"""Data of one's own: tasks from arrays (against numpy's own transposes), from .npz files (dense and
events binned by hand), from datasets (Tonic's ToFrame against np.histogramdd of the same events),
the command line, every bad input as one clear error, and the README's example run as it stands."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroplastic import Task
from neuroplastic.cli.main import main
from neuroplastic.training.fit import fit

README = Path(__file__).resolve().parents[1] / "README.md"


def _separable(samples=60, steps=30, channels=20, seed=0):
    """Spikes ``(samples, steps, channels)`` whose class (0 or 1) fires one half of the channels more."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    rates = np.where(np.arange(channels) // (channels // 2) == labels[:, None], 0.3, 0.05)
    return (rng.random((samples, steps, channels)) < rates[:, None, :]).astype(np.float32), labels


def _batches(task, split="train", size=3):
    return list(task.batches(split, size, shuffle=False))


# ------------------------------------------------------------------------------------------- arrays


def test_time_first_and_samples_first_give_numpys_transposed_batches():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 5, 3)), np.array([0, 2, 1, 1, 0, 2, 2])
    first = Task.from_arrays(x, y, x[:2], y[:2], layout="samples-first", dt=0.5)
    time_first = Task.from_arrays(x.transpose(1, 0, 2), y, x[:2].transpose(1, 0, 2), y[:2], layout="time-first",
                                  dt=0.5)
    tensors = Task.from_arrays(torch.from_numpy(x), torch.from_numpy(y), x[:2], y[:2], layout="samples-first")
    for task in (first, time_first, tensors):
        assert (task.n_inputs, task.n_outputs, task.train.steps, task.dtype) == (3, 3, 5, torch.float32)
        for start, (inputs, labels) in zip(range(0, 7, 3), _batches(task)):
            expected = x[start:start + 3].transpose(1, 0, 2).astype(np.float32)  # (T, B, channels)
            np.testing.assert_array_equal(inputs.numpy(), expected)
            np.testing.assert_array_equal(labels.numpy(), y[start:start + 3])
    assert first.dt == 0.5 and tensors.dt == 1.0 and first.name == "own"


def test_frames_axes_flatten_into_channels_and_n_classes_may_be_given():
    frames = np.arange(4 * 3 * 2 * 2 * 5).reshape(4, 3, 2, 2, 5)  # (samples, steps, polarity, height, width)
    task = Task.from_arrays(frames, [0, 1, 0, 1], frames, [1, 1, 0, 0], layout="samples-first", n_classes=5)
    assert (task.n_inputs, task.n_outputs) == (20, 5)
    np.testing.assert_array_equal(task.train.inputs.numpy(), frames.reshape(4, 3, 20))


@pytest.mark.parametrize("change, message", [
    (dict(layout="auto"), "layout must be 'samples-first' or 'time-first'"),
    (dict(y_train=np.array([0.0, 1.0, 0.0, 1.0])), "y_train must hold integers"),
    (dict(y_test=np.array([0, -1, 0])), "y_test holds the negative value -1"),
    (dict(y_test=np.array([0, 1, 3]), n_classes=3), "y_test holds the label 3, outside 0 … 2"),
    (dict(y_train=np.array([0, 1, 0])), "y_train holds 3 labels for 4 samples"),
    (dict(y_train=np.zeros((4, 2), dtype=int)), "y_train must be one-dimensional"),
    (dict(y_train=np.array([], dtype=int)), "y_train is empty"),
    (dict(x_train=np.full((4, 5, 2), np.nan)), "x_train contains NaN or infinite values"),
    (dict(x_test=np.full((3, 5, 2), np.inf)), "x_test contains NaN or infinite values"),
    (dict(x_test=np.zeros((3, 5, 4))), "x_train has 2 channels but x_test has 4"),
    (dict(x_test=np.zeros((3, 6, 2))), "x_train has 5 steps but x_test has 6"),
    (dict(x_train=np.zeros((4, 5))), r"x_train must be shaped \(samples, steps, channels\)"),
    (dict(x_train=np.full((4, 5, 2), "a")), "x_train must hold real numbers"),
    (dict(dt=0.0), "dt must be finite and positive"),
])
def test_bad_arrays_give_one_clear_error(change, message):
    arrays = dict(x_train=np.zeros((4, 5, 2)), y_train=np.array([0, 1, 0, 1]), x_test=np.zeros((3, 5, 2)),
                  y_test=np.array([1, 0, 1]), layout="samples-first") | change
    with pytest.raises(ValueError, match=message):
        Task.from_arrays(**arrays)


# --------------------------------------------------------------------------------------------- files


def test_a_dense_file_is_the_task_of_its_arrays(tmp_path):
    x, y = _separable(samples=10, steps=4, channels=6)
    np.savez(tmp_path / "mine.npz", x_train=x[:6], y_train=y[:6], x_test=x[6:], y_test=y[6:], dt=2.0)
    task = Task.from_file(tmp_path / "mine.npz")
    expected = Task.from_arrays(x[:6], y[:6], x[6:], y[6:], layout="samples-first", dt=2.0)
    assert (task.name, task.dt, task.n_inputs, task.n_outputs) == ("mine", 2.0, 6, 2)
    for split in ("train", "test"):
        for (a, la), (b, lb) in zip(_batches(task, split), _batches(expected, split), strict=True):
            assert torch.equal(a, b) and torch.equal(la, lb)


def test_an_event_file_bins_each_event_into_its_step_and_channel(tmp_path):
    # dt = 10 ms: step k covers (10k, 10k + 10] ms, an event at 0 in the first
    np.savez(tmp_path / "events.npz", dt=10.0,
             t_train=[0.0, 15.5, 15.7, 10.0, 34.9], unit_train=[3, 1, 1, 0, 2], sample_train=[0, 0, 0, 1, 1],
             y_train=[1, 0], t_test=[5.0], unit_test=[4], sample_test=[0], y_test=[2])
    task = Task.from_file(tmp_path / "events.npz")
    assert (task.train.steps, task.n_inputs, task.n_outputs, task.dt) == (4, 5, 3, 10.0)  # up to the last event
    assert task.train.inputs.is_sparse
    expected = torch.zeros(2, 4, 5)
    expected[0, 0, 3] = 1
    expected[0, 1, 1] = 2  # two events of one channel in one step add up
    expected[1, 0, 0] = 1  # 10 ms ends the first step
    expected[1, 3, 2] = 1
    torch.testing.assert_close(task.train.inputs.to_dense(), expected)
    assert task.test.inputs.to_dense()[0, 0, 4] == 1 and task.test.targets.tolist() == [2]
    np.savez(tmp_path / "cut.npz", dt=10.0, steps=2, channels=8, t_train=[0.0, 34.9], unit_train=[3, 2],
             sample_train=[0, 0], y_train=[1], t_test=[5.0], unit_test=[4], sample_test=[0], y_test=[0])
    cut = Task.from_file(tmp_path / "cut.npz")
    assert (cut.train.steps, cut.n_inputs) == (2, 8) and cut.train.inputs.to_dense().sum() == 1  # 34.9 ms dropped


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken files, each with what its error says."""
    x, y = np.zeros((4, 5, 2), dtype=np.float32), np.array([0, 1, 0, 1])
    good = dict(x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    events = dict(t_train=[1.0], unit_train=[0], sample_train=[0], y_train=[0],
                  t_test=[1.0], unit_test=[0], sample_test=[0], y_test=[0])
    cases = {
        "missing": (dict(x_train=x, y_train=y, x_test=x), "missing y_test; expected x_train"),
        "typo": (good | {"x_tset": x}, "unexpected x_tset"),
        "shape": (good | {"x_test": np.zeros((2, 5))}, r"x_test must be shaped \(samples, steps, channels\)"),
        "labels": (good | {"y_train": np.array([0, 1, 2, 7.5])}, "y_train must hold integers"),
        "nan": (good | {"x_train": np.full((4, 5, 2), np.nan)}, "x_train contains NaN"),
        "channels": (good | {"x_test": np.zeros((2, 5, 3))}, "x_train has 2 channels but x_test has 3"),
        "dt": (good | {"dt": np.array([1.0, 2.0])}, "dt must be a number"),
        "index": (events | {"sample_test": [3]}, r"sample_test must index the 1 labels of y_test"),
        "time": (events | {"t_train": [-1.0]}, "t_train must be one-dimensional, finite and non-negative"),
        "long": (events | {"t_train": [1e9], "dt": 1e-3}, "would not fit in memory densely"),
        "classes": (good | {"y_train": np.array([0, 1, 0, 10**9])}, "is more than 65536"),
    }
    files = {}
    for name, (arrays, message) in cases.items():
        np.savez(folder / f"{name}.npz", **arrays)
        files[name] = (folder / f"{name}.npz", message)
    whole = (folder / "typo.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[:len(whole) // 2])
    (folder / "text.npz").write_text("x_train,y_train\n1,2\n")
    np.save(folder / "single.npy", x)
    np.savez(folder / "objects.npz", **good | {"y_test": np.array([0, "a"], dtype=object)})
    files |= {"truncated": (folder / "truncated.npz", "cannot read the .npz file"),
              "text": (folder / "text.npz", "cannot read the .npz file"),
              "single": (folder / "single.npy", "not an .npz archive"),
              "objects": (folder / "objects.npz", "cannot read the .npz file"),
              "absent": (folder / "absent.npz", "no such file")}
    return files


BAD_FILES = ["missing", "typo", "shape", "labels", "nan", "channels", "dt", "index", "time", "long", "classes",
             "truncated", "text", "single", "objects", "absent"]


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_one_error_naming_the_file_and_the_problem(name, tmp_path):
    path, message = _bad_files(tmp_path)[name]
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*{message}"):
        Task.from_file(path)


@pytest.mark.parametrize("command", ["train", "compare"])
@pytest.mark.parametrize("name", ["missing", "labels", "channels", "truncated"])
def test_the_command_line_refuses_a_bad_file_in_one_line_and_writes_nothing(command, name, tmp_path, capsys):
    path, message = _bad_files(tmp_path)[name]
    rules = ["--rules", "bptt"] if command == "compare" else []
    assert main([command, "--data", str(path), *rules, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and re.search(message, error[0]) and str(path) in error[0]
    assert not (tmp_path / "out").exists()


def test_train_and_compare_read_a_file_without_a_task(tmp_path, capsys):
    x, y = _separable(samples=40, steps=20, channels=10)
    np.savez(tmp_path / "mine.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    assert main(["train", "--data", str(tmp_path / "mine.npz"), "--epochs", "1", "--hidden", "16",
                 "--out", str(tmp_path / "train"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["task"] == "mine" and summary["epochs"] == 1 and 0 <= summary["test_accuracy"] <= 1
    assert json.loads((tmp_path / "train" / "summary.json").read_text())["task"] == "mine"
    assert main(["compare", "--data", str(tmp_path / "mine.npz"), "--rules", "bptt", "--epochs", "1",
                 "--out", str(tmp_path / "compare"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["task"] == "mine"
    assert (tmp_path / "compare" / "bptt" / "summary.json").exists()
    assert main(["train", "--out", str(tmp_path / "none")]) == 2  # neither --task nor --data
    assert "--task" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert main(["train", "--task", "digits", "--data", str(tmp_path / "mine.npz"), "--out", str(tmp_path / "none")]) == 2
    assert "--task digits reads no files" in capsys.readouterr().err and not (tmp_path / "none").exists()


# ------------------------------------------------------------------------------------------ datasets


def test_datasets_of_frames_or_events_give_the_tasks_of_arrays_and_files(tmp_path):
    x, y = _separable(samples=8, steps=4, channels=6)
    frames = [(torch.from_numpy(x[i].reshape(4, 2, 3)), int(y[i])) for i in range(8)]  # (steps, 2, 3)
    from_frames = Task.from_datasets(frames[:5], frames[5:], dt=2.0)
    from_arrays = Task.from_arrays(x[:5], y[:5], x[5:], y[5:], layout="samples-first", dt=2.0)
    for split in ("train", "test"):
        for (a, la), (b, lb) in zip(_batches(from_frames, split), _batches(from_arrays, split), strict=True):
            assert torch.equal(a, b) and torch.equal(la, lb)
    recordings = [((np.array([0.0, 15.5, 15.7]), np.array([3, 1, 1])), 1), ((np.array([10.0, 34.9]), [0, 2]), 0)]
    from_events = Task.from_datasets(recordings, [((np.array([5.0]), np.array([4])), 2)], dt=10.0)
    np.savez(tmp_path / "events.npz", dt=10.0, t_train=[0.0, 15.5, 15.7, 10.0, 34.9], unit_train=[3, 1, 1, 0, 2],
             sample_train=[0, 0, 0, 1, 1], y_train=[1, 0], t_test=[5.0], unit_test=[4], sample_test=[0], y_test=[2])
    from_file = Task.from_file(tmp_path / "events.npz")
    for split in ("train", "test"):
        assert torch.equal(from_events.splits[split].inputs.to_dense(), from_file.splits[split].inputs.to_dense())
    assert (from_events.train.steps, from_events.n_inputs, from_events.n_outputs) == (4, 5, 3)


def test_bad_datasets_say_what_is_wrong():
    frame = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"train sample 1 has frames of shape \(5, 3\), train sample 0 \(4, 3\)"):
        Task.from_datasets([(frame, 0), (np.zeros((5, 3)), 1)], [(frame, 0)])
    with pytest.raises(ValueError, match="test sample 0 contains NaN"):
        Task.from_datasets([(frame, 0)], [(np.full((4, 3), np.nan), 0)])
    with pytest.raises(ValueError, match="test labels must hold integers"):
        Task.from_datasets([(frame, 0)], [(frame, 0.5)])
    with pytest.raises(ValueError, match="mix frames and events"):
        Task.from_datasets([(frame, 0)], [(([1.0], [0]), 0)])
    with pytest.raises(ValueError, match="the test dataset is empty"):
        Task.from_datasets([(frame, 0)], [])
    events = np.zeros(3, dtype=[("x", int), ("t", int), ("p", int)])
    with pytest.raises(ValueError, match=r"structured event array \(fields x, t, p\).*ToFrame"):
        Task.from_datasets([(events, 0)], [(events, 1)])


# ------------------------------------------------------------------------------------------------ Tonic


def _tonic_recordings(tonic, count, seed, transform=None):
    """A Tonic dataset of ``count`` recordings from a 4×3 sensor with two polarities, 1005 µs long:
    class 0 fires in columns 0–1, class 1 in columns 2–3."""
    rng = np.random.default_rng(seed)

    class Recordings(tonic.Dataset):
        sensor_size = (4, 3, 2)
        ordering = "xytp"

        def __init__(self):
            super().__init__(save_to=".", transform=transform)
            self.targets = [int(k) for k in rng.integers(0, 2, count)]
            self.data = []
            for label in self.targets:
                events = np.zeros(30, dtype=[("x", np.int64), ("y", np.int64), ("t", np.int64), ("p", np.int64)])
                events["t"] = np.sort(np.r_[0, rng.integers(1, 1000, 28), 1005])  # none on the bins' edges
                events["x"] = 2 * label + rng.integers(0, 2, 30)
                events["y"], events["p"] = rng.integers(0, 3, 30), rng.integers(0, 2, 30)
                events["t"][1:-1] += (events["t"][1:-1] % 100 == 0)  # off the 100 µs edges
                self.data.append(events)

        def __getitem__(self, index):
            events = self.data[index].copy()
            return (events if self.transform is None else self.transform(events)), self.targets[index]

        def __len__(self):
            return len(self.data)

    return Recordings()


def test_a_tonic_dataset_with_to_frame_feeds_fit_directly(tmp_path):
    tonic = pytest.importorskip("tonic", reason="Tonic is optional: pip install tonic")
    to_frame = tonic.transforms.ToFrame(sensor_size=(4, 3, 2), n_time_bins=10)
    train = _tonic_recordings(tonic, 40, seed=0, transform=to_frame)
    test = _tonic_recordings(tonic, 20, seed=1, transform=to_frame)
    task = Task.from_datasets(train, test, dt=0.1)  # 10 bins of 100 µs
    assert (task.train.steps, task.n_inputs, task.n_outputs, len(task.train)) == (10, 24, 2, 40)
    raw = _tonic_recordings(tonic, 40, seed=0)
    for i in (0, 7):  # the frames, by hand: 100 µs bins from the first event, channels (polarity, y, x)
        events, _ = raw[i]
        counts, _ = np.histogramdd(np.stack([events["t"], events["p"], events["y"], events["x"]], axis=1),
                                   bins=(np.arange(0, 1001, 100), np.arange(3), np.arange(4), np.arange(5)))
        np.testing.assert_array_equal(task.train.inputs[i].numpy(), counts.reshape(10, 24))
    with pytest.raises(ValueError, match="ToFrame"):
        Task.from_datasets(raw, raw)
    summary = fit(task, "bptt", epochs=3, hidden=(16,), batch_size=8, lr=1e-2, out=tmp_path, progress=False)
    assert summary["test_accuracy"] >= 0.9  # chance: 0.5


# ------------------------------------------------------------------------------------------- README


def test_the_readme_example_runs_as_it_stands(tmp_path, monkeypatch, capsys):
    section = re.search(r"<!-- own-data:start -->\s*```python\n(.*?)```\s*<!-- own-data:end -->",
                        README.read_text(), re.S)
    assert section, "README.md lacks the own-data example between its markers"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(section.group(1), "README.md (own data)", "exec"), namespace)
    assert namespace["summary"]["test_accuracy"] >= 0.9  # chance: 0.5
    assert (tmp_path / "my-run" / "summary.json").exists()
    assert main(["train", "--data", "my.npz", "--epochs", "1", "--hidden", "16", "--json"]) == 0  # its comment
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["task"] == "my"


def test_a_file_named_like_a_registered_task_is_not_taken_for_it(tmp_path):
    """``digits.npz`` of one's own must not get the digits recipe (nor be exported as digits)."""
    x, y = np.zeros((4, 5, 2), np.float32), np.array([0, 1, 0, 1])
    np.savez(tmp_path / "digits.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    np.savez(tmp_path / "mine.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    assert Task.from_file(tmp_path / "digits.npz").name == "digits-own"
    assert Task.from_file(tmp_path / "mine.npz").name == "mine"
