"""Tasks from data of one's own: arrays or tensors, an ``.npz`` file, or datasets of ``(frames or
events, label)`` pairs — a Tonic dataset with a ``ToFrame`` transform among them, with no glue.

Each builds a classification :class:`Task` (also as ``Task.from_arrays``, ``Task.from_file``,
``Task.from_datasets``) or raises one ValueError naming the problem: a missing key, a wrong shape,
labels that are not integers or out of range, NaN or infinite inputs, train and test with different
channels or steps. Inputs (spikes, spike counts or currents) are stored float32; labels are integers
``0 … n_classes − 1``, ``n_classes`` the largest label + 1 unless given; ``dt`` is a step in ms.

The ``.npz`` file, dense (``dt`` optional)::

    x_train, x_test           (samples, steps, channels)  spikes, counts or currents, samples first
    y_train, y_test           (samples,)                  integer labels
    dt                        scalar                      ms per step (default 1)

or events, one entry per event (``dt``, ``steps``, ``channels`` optional)::

    t_train, t_test           (events,)   time in ms
    unit_train, unit_test     (events,)   integer input channel
    sample_train, sample_test (events,)   integer index of the event's sample (its label in y_*)
    y_train, y_test           (samples,)  integer labels
    dt, steps, channels       scalars     ms per step (default 1); steps (default: up to the last
                                          event); channels (default: the highest unit + 1)

Events are binned as the SHD and N-MNIST loaders bin them (:func:`~neuroplastic.tasks.base.event_steps`:
step ``k`` covers ``(k·dt, (k+1)·dt]``; events after ``steps · dt`` are dropped; events of one channel
in one step add up) and stored sparse.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from neuroplastic.tasks.base import Split, Task, event_steps, event_tensor
from neuroplastic.validation import (
    require_count,
    require_finite_tensor,
    require_positive,
)

__all__ = ["from_arrays", "from_file", "from_datasets", "LAYOUTS"]

LAYOUTS = ("samples-first", "time-first")
MAX_SAMPLE_VALUES = 2**27  # steps × channels of one sample, dense in a batch: 512 MB of float32
MAX_CLASSES = 2**16
SPLITS = ("train", "test")
DENSE_KEYS = ("x_train", "y_train", "x_test", "y_test")
EVENT_KEYS = ("t_train", "unit_train", "sample_train", "y_train", "t_test", "unit_test", "sample_test", "y_test")
FILE_FORMAT = ("expected x_train, y_train, x_test, y_test (inputs (samples, steps, channels), integer labels) "
               "and optionally dt; or events t_*, unit_*, sample_*, y_* for train and test and optionally dt, "
               "steps, channels")


def from_arrays(x_train, y_train, x_test, y_test, *, layout: str, dt: float = 1.0,
                n_classes: int | None = None, name: str = "own") -> Task:
    """A classification task from inputs ``x_*`` (numpy arrays or tensors of real numbers) and
    integer labels ``y_*`` of shape ``(samples,)``.

    ``layout`` says what the inputs' first two axes are, never guessed: ``"samples-first"``,
    ``(samples, steps, channels)``, or ``"time-first"``, ``(steps, samples, channels)``. Axes after
    the third are flattened into channels (frames ``(…, polarity, height, width)``).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be {' or '.join(map(repr, LAYOUTS))} (what the inputs' first two axes "
                         f"are), got {layout!r}")
    inputs = {}
    for split, x in zip(SPLITS, (x_train, x_test)):
        x = _inputs(f"x_{split}", x)
        if x.dim() < 3:
            axes = "(samples, steps, channels)" if layout == "samples-first" else "(steps, samples, channels)"
            raise ValueError(f"x_{split} must be shaped {axes} for layout={layout!r}, got shape {tuple(x.shape)}")
        inputs[f"x_{split}"] = (x if layout == "samples-first" else x.transpose(0, 1)).flatten(2).contiguous()
    labels = {"y_train": _labels("y_train", y_train), "y_test": _labels("y_test", y_test)}
    return _task(name, inputs, labels, dt, n_classes)


def from_file(path, *, name: str | None = None) -> Task:
    """The task in the ``.npz`` file ``path`` (format in the module docstring), named ``name``
    (default: the file's stem, ``<stem>-own`` where a registered task has that name); every error
    names the file."""
    path = Path(path)
    arrays = _read_npz(path)
    if name is None:  # the file's stem, unless a registered task has that name (its recipe would apply)
        from neuroplastic.tasks import TASKS
        name = f"{path.stem}-own" if path.stem in TASKS else path.stem
    try:
        return _file_task(arrays, name)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def from_datasets(train, test, *, dt: float = 1.0, steps: int | None = None, channels: int | None = None,
                  n_classes: int | None = None, name: str = "own") -> Task:
    """A classification task from a train and a test dataset of ``(data, label)`` pairs: a map-style
    ``torch.utils.data.Dataset``, a list, any object with ``len`` and ``[i]``.

    ``data`` is either frames, a numpy array or tensor ``(steps, …)`` whose axes after the first are
    flattened into channels, every sample of one shape — Tonic's ``ToFrame(sensor_size=…,
    time_window=…)`` gives ``(steps, polarity, [height,] width)`` (a fixed window per step, so that
    ``dt`` holds for every recording; ``n_time_bins`` stretches each over its own duration); or events,
    a pair ``(times in ms, units)`` of 1-D arrays, binned as in an event file (``steps`` and ``channels`` apply to events only).
    """
    pairs = {split: _pairs(split, dataset) for split, dataset in zip(SPLITS, (train, test))}
    kinds = {split: {_kind(f"{split} sample {i}", data) for i, (data, _) in enumerate(items)}
             for split, items in pairs.items()}
    if len(set().union(*kinds.values())) > 1:
        raise ValueError("the datasets mix frames and events; give every sample in one form")
    labels = {f"{split} labels": _labels(f"{split} labels", [label for _, label in items])
              for split, items in pairs.items()}
    if kinds["train"] == {"events"}:
        events = {split: _dataset_events(split, items) for split, items in pairs.items()}
        return _event_task(name, events, labels, dt, steps, channels, n_classes)
    if steps is not None or channels is not None:
        raise ValueError("steps and channels apply to event data; frames have their own shape")
    inputs = {f"{split} frames": _stacked_frames(split, items) for split, items in pairs.items()}
    return _task(name, inputs, labels, dt, n_classes)


def _task(name, inputs: dict, labels: dict, dt, n_classes) -> Task:
    """The task of train and test ``inputs (samples, steps, channels)`` and int64 ``labels``, each a
    dict ``{name in errors: tensor}`` in the order train, test."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a task's name must be a non-empty string, got {name!r}")
    dt = require_positive("dt", dt)
    (train_key, train), (test_key, test) = inputs.items()
    for axis, what in ((2, "channels"), (1, "steps")):
        if train.shape[axis] != test.shape[axis]:
            raise ValueError(f"{train_key} has {train.shape[axis]} {what} but {test_key} has {test.shape[axis]}; "
                             f"train and test need the same")
    for (key, targets), x in zip(labels.items(), (train, test)):
        if len(targets) != len(x):
            raise ValueError(f"{key} holds {len(targets)} labels for {len(x)} samples")
    if train.shape[1] * train.shape[2] > MAX_SAMPLE_VALUES:
        raise ValueError(f"a sample of {train.shape[1]} steps × {train.shape[2]} channels would not fit in memory "
                         f"densely (at most {MAX_SAMPLE_VALUES} values); bin events more coarsely (a larger dt)")
    largest = max(int(targets.max()) for targets in labels.values())
    n_classes = largest + 1 if n_classes is None else require_count("n_classes", n_classes)
    if n_classes > MAX_CLASSES:
        raise ValueError(f"{n_classes} classes (labels up to {n_classes - 1}) is more than {MAX_CLASSES}: labels "
                         f"must be 0 … n_classes − 1")
    for key, targets in labels.items():
        if targets.max() >= n_classes:
            raise ValueError(f"{key} holds the label {int(targets.max())}, outside 0 … {n_classes - 1} "
                             f"(n_classes = {n_classes})")
    train_labels, test_labels = labels.values()
    return Task(name=name, train=Split(train, train_labels), test=Split(test, test_labels), n_inputs=train.shape[2],
                n_outputs=n_classes, dt=dt, kind="classification")


def _event_task(name, events: dict, labels: dict, dt, steps, channels, n_classes) -> Task:
    """The task of ``events`` per split, ``(times in ms, units, sample indices)``, binned into sparse
    inputs."""
    dt = require_positive("dt", dt)
    binned = {split: event_steps(t, dt) for split, (t, _, _) in events.items()}
    if steps is None:
        steps = max([int(step.max()) + 1 for step in binned.values() if step.size], default=1)
    steps = require_count("steps", steps)
    if channels is None:
        channels = max([int(unit.max()) + 1 for _, unit, _ in events.values() if unit.size], default=1)
    channels = require_count("channels", channels)
    inputs = {}
    for (split, (_, unit, sample)), targets in zip(events.items(), labels.values()):
        if unit.size and unit.max() >= channels:
            raise ValueError(f"{split} unit {int(unit.max())} lies outside the {channels} channels")
        kept = binned[split] < steps
        inputs[f"{split} events"] = event_tensor(
            *(torch.from_numpy(a[kept]) for a in (sample, binned[split], unit)), (len(targets), steps, channels))
    return _task(name, inputs, labels, dt, n_classes)


def _file_task(arrays: dict, name: str) -> Task:
    events = not {"x_train", "x_test"} & set(arrays) and bool({"t_train", "t_test"} & set(arrays))
    required = EVENT_KEYS if events else DENSE_KEYS
    missing = [key for key in required if key not in arrays]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}; {FILE_FORMAT}")
    unknown = sorted(set(arrays) - {*required, "dt", *(("steps", "channels") if events else ())})
    if unknown:
        raise ValueError(f"unexpected {', '.join(unknown)}; {FILE_FORMAT}")
    scalars = {key: _scalar(key, arrays[key], integer=key != "dt") for key in ("dt", "steps", "channels")
               if key in arrays}
    dt = scalars.get("dt", 1.0)
    if not events:
        return from_arrays(*(arrays[key] for key in DENSE_KEYS), layout="samples-first", dt=dt, name=name)
    labels = {f"y_{split}": _labels(f"y_{split}", arrays[f"y_{split}"]) for split in SPLITS}
    split_events = {}
    for split in SPLITS:
        t, unit = _events(f"t_{split}", arrays[f"t_{split}"], f"unit_{split}", arrays[f"unit_{split}"])
        sample = _integers(f"sample_{split}", arrays[f"sample_{split}"])
        if sample.shape != t.shape:
            raise ValueError(f"sample_{split} holds {sample.size} entries for {t.size} events")
        samples = len(labels[f"y_{split}"])
        if sample.size and (sample.min() < 0 or sample.max() >= samples):
            raise ValueError(f"sample_{split} must index the {samples} labels of y_{split} (0 … {samples - 1}), "
                             f"got range [{sample.min()}, {sample.max()}]")
        split_events[split] = (t, unit, sample)
    return _event_task(name, split_events, labels, dt, scalars.get("steps"), scalars.get("channels"), None)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path``; a ValueError naming the file if it is missing,
    not an archive, corrupt or holds pickled objects."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive: save one with numpy.savez(path, x_train=…, …)")
        with archive:
            return {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{path}: cannot read the .npz file ({error})") from None


def _pairs(split: str, dataset) -> list:
    try:
        count = len(dataset)
    except TypeError:
        raise ValueError(f"the {split} dataset must have a length and items dataset[i] = (data, label) "
                         f"(a map-style torch Dataset or a list), got {type(dataset).__name__}") from None
    if not count:
        raise ValueError(f"the {split} dataset is empty: a split needs at least one sample")
    items = [dataset[i] for i in range(count)]
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"{split} sample {i} must be a pair (data, label), got {type(item).__name__}")
    return items


def _kind(where: str, data) -> str:
    """``"frames"`` or ``"events"``: what a dataset's sample holds."""
    if isinstance(data, np.ndarray) and data.dtype.names:
        raise ValueError(f"{where} is a structured event array (fields {', '.join(data.dtype.names)}); give the "
                         "dataset a transform that makes frames, e.g. tonic.transforms.ToFrame(sensor_size=…, "
                         "time_window=…), or yield pairs (times in ms, units)")
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return "frames"
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return "events"
    raise ValueError(f"{where} must hold frames (an array or tensor (steps, …)) or events (a pair (times in ms, "
                     f"units)), got {type(data).__name__}")


def _stacked_frames(split: str, items: list) -> torch.Tensor:
    """The frames of every sample as one ``(samples, steps, channels)`` tensor."""
    frames = [_inputs(f"{split} sample {i}", data) for i, (data, _) in enumerate(items)]
    for i, sample in enumerate(frames):
        if sample.dim() < 2:
            raise ValueError(f"{split} sample {i} must be frames shaped (steps, …), got shape {tuple(sample.shape)}")
        if sample.shape != frames[0].shape:
            raise ValueError(f"{split} sample {i} has frames of shape {tuple(sample.shape)}, {split} sample 0 "
                             f"{tuple(frames[0].shape)}; every sample needs one shape (recordings of one duration "
                             "with ToFrame(time_window=…), or ToFrame(n_time_bins=…), whose step varies)")
    return torch.stack(frames).flatten(2)


def _dataset_events(split: str, items: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every sample's ``(times, units)`` in one ``(times, units, sample indices)``."""
    events = [_events(f"{split} sample {i} times", data[0], f"{split} sample {i} units", data[1])
              for i, (data, _) in enumerate(items)]
    sample = np.concatenate([np.full(len(t), i, dtype=np.int64) for i, (t, _) in enumerate(events)])
    return np.concatenate([t for t, _ in events]), np.concatenate([u for _, u in events]), sample


def _numbers(key: str, value) -> np.ndarray:
    """``value`` (a numpy array, tensor or nested sequence) as a numpy array of real numbers."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested sequences
        raise ValueError(f"{key} must be a rectangular array of numbers ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{key} must hold real numbers, got dtype {array.dtype}")
    return array


def _integers(key: str, value) -> np.ndarray:
    array = _numbers(key, value)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{key} must hold integers, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{key} must be one-dimensional, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{key} holds the negative value {array.min()}")
    return array.astype(np.int64)


def _inputs(key: str, value) -> torch.Tensor:
    """``value`` as a float32 tensor, with a clear error unless it is real and finite throughout."""
    inputs = torch.from_numpy(_numbers(key, value).astype(np.float32))
    return require_finite_tensor(key, inputs)


def _labels(key: str, value) -> torch.Tensor:
    """Class labels ``(samples,)`` as int64: integers, at least one, none negative."""
    labels = _integers(key, value)
    if not labels.size:
        raise ValueError(f"{key} is empty: a split needs at least one sample")
    return torch.from_numpy(labels)


def _events(t_key: str, times, unit_key: str, units) -> tuple[np.ndarray, np.ndarray]:
    """Event times (ms, finite, non-negative) and their units (integers), one of each per event."""
    t = _numbers(t_key, times).astype(np.float64)
    if t.ndim != 1 or not np.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{t_key} must be one-dimensional, finite and non-negative (ms)")
    unit = _integers(unit_key, units)
    if unit.shape != t.shape:
        raise ValueError(f"{unit_key} holds {unit.size} units for {t.size} event times")
    return t, unit


def _scalar(key: str, value: np.ndarray, *, integer: bool):
    if value.shape != () or value.dtype.kind not in ("iu" if integer else "iuf"):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{key} must be {kind} (a 0-d array), got {value.dtype} of shape {value.shape}")
    return value.item()
