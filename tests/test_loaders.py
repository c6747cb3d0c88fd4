"""Local-file loaders on small files written here in the real formats: the SHD HDF5 layout of
Cramer et al. (vlen datasets through h5py) and N-MNIST's 5-byte events packed by hand from
Orchard et al.'s description."""
import numpy as np
import pytest
import torch

from neuroplastic.tasks import load_nmnist, load_shd, load_task

# ---------------------------------------------------------------------------------------------- SHD


def _write_shd(path, times, units, labels):
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as file:
        t = file.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        u = file.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (a, b) in enumerate(zip(times, units, strict=True)):
            t[i] = np.asarray(a, dtype=np.float32)
            u[i] = np.asarray(b, dtype=np.uint16)
        file.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
    return path


# Times in seconds; with dt = 10 ms, step k covers (10k, 10k + 10] ms.
SHD_TIMES = [[0.0, 0.0155, 0.0157, 0.0951, 0.2], [0.0349]]
SHD_UNITS = [[3, 699, 699, 0, 5], [42]]
SHD_LABELS = [19, 7]


def test_shd_spikes_land_in_their_time_and_unit_bins(tmp_path):
    path = _write_shd(tmp_path / "shd_train.h5", SHD_TIMES, SHD_UNITS, SHD_LABELS)
    split = load_shd(path, steps=10, dt=10.0)
    expected = torch.zeros(2, 10, 700)
    expected[0, 0, 3] = 1  # t = 0 belongs to the first step
    expected[0, 1, 699] = 2  # 15.5 and 15.7 ms: two spikes of one unit in one step add up
    expected[0, 9, 0] = 1  # 95.1 ms, the last step; 200 ms is past 10 steps and dropped
    expected[1, 3, 42] = 1  # 34.9 ms
    assert split.inputs.is_sparse
    torch.testing.assert_close(split.inputs.to_dense(), expected)
    assert split.targets.tolist() == SHD_LABELS and split.targets.dtype == torch.int64


def test_shd_spike_at_the_end_of_a_step_belongs_to_that_step(tmp_path):
    # 2⁻⁵ s = 31.25 ms exactly (in float32 too): the end of step 0 when dt = 31.25 ms
    path = _write_shd(tmp_path / "edge.h5", [[2.0 ** -5, 2.0 ** -4]], [[1, 2]], [0])
    dense = load_shd(path, steps=4, dt=31.25).inputs.to_dense()
    assert dense[0, 0, 1] == 1 and dense[0, 1, 2] == 1 and dense.sum() == 2


def test_shd_task_reads_both_files(tmp_path):
    _write_shd(tmp_path / "shd_train.h5", SHD_TIMES, SHD_UNITS, SHD_LABELS)
    _write_shd(tmp_path / "shd_test.h5", [[0.5]], [[1]], [0])
    task = load_task("shd", path=tmp_path)
    assert (task.n_inputs, task.n_outputs, task.dt, task.train.steps) == (700, 20, 14.0, 100)
    assert (len(task.train), len(task.test)) == (2, 1)
    x, y = next(task.batches("test", 4, shuffle=False))
    assert x.shape == (100, 1, 700) and x[35, 0, 1] == 1  # 500 ms / 14 ms → step ⌈35.7⌉ − 1 = 35


def test_shd_broken_files_name_the_file(tmp_path):
    good = _write_shd(tmp_path / "good.h5", SHD_TIMES, SHD_UNITS, SHD_LABELS)
    raw = good.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.h5.*truncated"):
        load_shd(cut)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file" * 20)
    with pytest.raises(ValueError, match="junk.h5"):
        load_shd(junk)
    with pytest.raises(ValueError, match="missing.h5"):
        load_shd(tmp_path / "missing.h5")
    bad_unit = _write_shd(tmp_path / "unit.h5", [[0.1]], [[700]], [0])
    with pytest.raises(ValueError, match="unit.h5: unit 700 outside"):
        load_shd(bad_unit)
    uneven = _write_shd(tmp_path / "uneven.h5", [[0.1, 0.2]], [[1]], [0])
    with pytest.raises(ValueError, match="uneven.h5: sample 0 has 2 spike times but 1 units"):
        load_shd(uneven)
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "nolabels.h5", "w") as file:
        file.create_dataset("spikes/times", data=np.zeros(1))
    with pytest.raises(ValueError, match="nolabels.h5: not an SHD file"):
        load_shd(tmp_path / "nolabels.h5")


# ------------------------------------------------------------------------------------------ N-MNIST


def _pack(events):
    """Orchard et al. 2015: x, y, then polarity in bit 7 above the 23-bit µs timestamp."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def _channel(x, y, p):
    return p * 34 * 34 + y * 34 + x


def _write(folder, digit, name, data):
    (folder / str(digit)).mkdir(parents=True, exist_ok=True)
    (folder / str(digit) / name).write_bytes(data)


def test_nmnist_bytes_decode_as_the_format_says(tmp_path):
    # x = 5, y = 7, ON, t = 0x010203 µs = 66051 µs → step ⌈66.051⌉ − 1 = 66 at dt = 1 ms
    _write(tmp_path, 2, "00001.bin", bytes([0x05, 0x07, 0x81, 0x02, 0x03]))
    split = load_nmnist(tmp_path, steps=100)
    assert split.inputs.shape == (1, 100, 2312) and split.targets.tolist() == [2]
    dense = split.inputs.to_dense()
    assert dense.sum() == 1 and dense[0, 66, _channel(5, 7, 1)] == 1


def test_nmnist_events_land_in_their_time_and_channel_bins(tmp_path):
    _write(tmp_path, 0, "a.bin", _pack([(0, 0, 0, 0), (33, 33, 1, 2500), (33, 33, 1, 2999),
                                        (10, 20, 0, 9_000_000 & 0x7FFFFF)]))
    _write(tmp_path, 3, "b.bin", _pack([(1, 2, 1, 1000), (4, 240, 0, 0), (1, 2, 1, 1000)]))
    split = load_nmnist(tmp_path, steps=10, dt=1.0)
    expected = torch.zeros(2, 10, 2312)
    expected[0, 0, _channel(0, 0, 0)] = 1
    expected[0, 2, _channel(33, 33, 1)] = 2  # 2.5 and 2.999 ms share step 2
    # the 4th event (≈ 0.61 s after wrapping to 23 bits) lies past 10 ms and is dropped
    expected[1, 0, _channel(1, 2, 1)] = 1  # exactly 1 ms closes step 0
    expected[1, 9, _channel(1, 2, 1)] = 1  # y = 240 marker: + 8192 µs → 9.192 ms, step 9
    torch.testing.assert_close(split.inputs.to_dense(), expected)
    assert split.targets.tolist() == [0, 3]


def test_nmnist_task_reads_train_and_test_folders(tmp_path):
    for split, digit, count in (("Train", 1, 3), ("Train", 9, 2), ("Test", 4, 1)):
        for i in range(count):
            _write(tmp_path / split, digit, f"{i:05d}.bin", _pack([(i, i, 0, 1000 * i)]))
    (tmp_path / "Train" / "notes").mkdir()  # not a digit: ignored
    task = load_task("nmnist", path=tmp_path, per_class=2)
    assert task.train.targets.tolist() == [1, 1, 9, 9] and task.test.targets.tolist() == [4]
    assert (task.n_inputs, task.n_outputs, task.train.steps) == (2312, 10, 300)
    dense = task.train.inputs.to_dense()
    assert dense[1, 0, _channel(1, 1, 0)] == 1 and dense.sum() == 4


def test_nmnist_broken_files_name_the_file(tmp_path):
    _write(tmp_path, 5, "cut.bin", _pack([(1, 1, 0, 10)])[:-1] + _pack([(2, 2, 0, 20)])[:3])
    with pytest.raises(ValueError, match="cut.bin: 7 bytes is not a whole number of 5-byte events"):
        load_nmnist(tmp_path)
    (tmp_path / "5" / "cut.bin").unlink()
    _write(tmp_path, 5, "off.bin", _pack([(1, 1, 0, 10), (34, 3, 1, 20)]))
    with pytest.raises(ValueError, match=r"off.bin: event 1 at \(x, y\) = \(34, 3\) lies outside"):
        load_nmnist(tmp_path)
    (tmp_path / "5" / "off.bin").unlink()
    _write(tmp_path, 5, "empty.bin", b"")
    with pytest.raises(ValueError, match="empty.bin: the file holds no events"):
        load_nmnist(tmp_path)
    with pytest.raises(ValueError, match="no digit folders"):
        load_nmnist(tmp_path / "5")
    with pytest.raises(ValueError, match="not a folder"):
        load_nmnist(tmp_path / "nowhere")


def test_shd_channels_sum_neighbours_and_must_divide_700(tmp_path):
    path = _write_shd(tmp_path / "shd_train.h5", SHD_TIMES, SHD_UNITS, SHD_LABELS)
    binned = load_shd(path, steps=10, dt=10.0, channels=140).inputs.to_dense()
    full = load_shd(path, steps=10, dt=10.0).inputs.to_dense()
    torch.testing.assert_close(binned, full.reshape(2, 10, 140, 5).sum(-1))
    assert binned[0, 1, 139] == 2 and binned[1, 3, 8] == 1  # units 699 → 139, 42 → 8
    with pytest.raises(ValueError, match="channels must divide the 700"):
        load_shd(path, channels=300)


def test_the_shd_delays_recipe_runs_end_to_end_on_shd_files(tmp_path, capsys):
    """Hammouamri et al.'s setup as a recipe: their binning, two layers of 256 with learned delays up to
    25 steps, dropout; trained for one epoch on small files in the real format."""
    import json

    from neuroplastic.cli.main import main
    from neuroplastic.synapses import LearnedDelays
    from neuroplastic.training.recipes import build_network, recipe_for

    generator = np.random.default_rng(0)
    for name, samples in (("shd_train.h5", 12), ("shd_test.h5", 4)):
        times = [np.sort(generator.uniform(0, 1.2, 80)) for _ in range(samples)]
        units = [generator.integers(0, 700, 80) for _ in range(samples)]
        _write_shd(tmp_path / name, times, units, generator.integers(0, 20, samples))
    recipe = recipe_for("shd", "shd-delays")
    task = load_task("shd", path=tmp_path, **dict(recipe.task_options))
    assert (task.n_inputs, task.dt, task.train.steps) == (140, 10.0, 100)
    net = build_network(task, recipe)
    assert [layer.size for layer in net.layers] == [256, 256] and net.dropout.p == 0.4
    assert all(isinstance(layer.synapses, LearnedDelays) and layer.synapses.max_delay == 25 for layer in net.layers)
    assert main(["train", "--task", "shd", "--recipe", "shd-delays", "--data", str(tmp_path), "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and 0.0 <= summary["test_accuracy"] <= 1.0
    assert main(["train", "--task", "shd", "--recipe", "shd-dcls", "--data", str(tmp_path), "--epochs", "1",
                 "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
