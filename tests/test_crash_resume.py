"""Crash and resume: ``kill -9`` of a training run at random moments, and once in the middle of writing
its checkpoint, then ``--resume``, ends with the weights, optimizer, metrics and summary of a run never
interrupted, bit for bit; two fresh processes with one seed agree bit for bit; every running state a
method keeps (dropout's generator, ETL's threshold, a reward baseline and its generator, PAT's
recalibration count, the twin's device draws) survives a resume; a checkpoint that would run code
when unpickled is refused."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.tasks import Task
from neuroplastic.training.checkpoint import load_checkpoint
from neuroplastic.training.fit import fit

# Dies by SIGKILL during its CRASH_AT_SAVE-th checkpoint write, after half of the bytes reached the file.
CRASHING = textwrap.dedent("""
    import io, os, signal, sys
    import torch
    from neuroplastic.cli.main import main

    saves, real_save = [0], torch.save

    def dying_save(payload, handle, *args, **kwargs):
        saves[0] += 1
        if saves[0] == int(os.environ["CRASH_AT_SAVE"]):
            buffer = io.BytesIO()
            real_save(payload, buffer, *args, **kwargs)
            handle.write(buffer.getvalue()[:buffer.tell() // 2])
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_save(payload, handle, *args, **kwargs)

    torch.save = dying_save
    sys.exit(main(sys.argv[1:]))
""")

TIMING_KEYS = ("wall_time_s", "ms_per_sample", "peak_memory_mb", "out", "figures")


def _data(path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    rates = np.where(np.arange(24) // 8 == labels[:, None], 0.25, 0.05)
    x = (rng.random((500, 30, 24)) < rates[:, None, :]).astype(np.float32)
    np.savez(path, x_train=x[:400], y_train=labels[:400], x_test=x[400:], y_test=labels[400:])


def _command(tmp_path, out):
    return [sys.executable, "-m", "neuroplastic", "train", "--data", str(tmp_path / "data.npz"), "--hidden", "32",
            "--epochs", "4", "--batch-size", "20", "--quiet", "--out", str(tmp_path / out)]


def _state(folder):
    checkpoint = load_checkpoint(folder / "checkpoint.pt")
    summary = json.loads((folder / "summary.json").read_text())
    return checkpoint, {key: value for key, value in summary.items() if key not in TIMING_KEYS}


def _equal(one, two) -> bool:
    """Bit for bit, through nested dicts and lists of tensors."""
    if isinstance(one, torch.Tensor):
        return isinstance(two, torch.Tensor) and one.dtype == two.dtype and torch.equal(one, two)
    if isinstance(one, dict):
        return isinstance(two, dict) and one.keys() == two.keys() and all(_equal(one[k], two[k]) for k in one)
    if isinstance(one, (list, tuple)):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two))
    return one == two


def _assert_identical(first, second):
    (one, one_summary), (two, two_summary) = first, second
    assert one_summary == two_summary
    for part in ("network", "optimizer", "learner", "generator", "rng", "history", "counts"):
        assert _equal(one[part], two[part]), part


def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run_bit_for_bit(tmp_path):
    _data(tmp_path / "data.npz")
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    subprocess.run(_command(tmp_path, "whole"), check=True, env=environment, timeout=300)
    duration = time.perf_counter() - start
    subprocess.run(_command(tmp_path, "again"), check=True, env=environment, timeout=300)
    whole = _state(tmp_path / "whole")
    _assert_identical(whole, _state(tmp_path / "again"))  # two fresh processes, one seed

    folder = tmp_path / "killed"
    crashing = tmp_path / "crashing.py"
    crashing.write_text(CRASHING)
    run = subprocess.run([sys.executable, str(crashing), *_command(tmp_path, "killed")[3:]], env={
        **environment, "CRASH_AT_SAVE": "2"}, capture_output=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]  # killed while writing epoch 2's
    assert (folder / "checkpoint.pt.partial").is_file()
    assert [h["epoch"] for h in load_checkpoint(folder / "checkpoint.pt")["history"]] == [1]  # epoch 1's, whole

    def started():
        return subprocess.Popen(_command(tmp_path, "killed") + ["--resume"], env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    draw = random.Random(7)
    for _ in range(3):  # at random moments of the run: importing, training, evaluating or writing
        run = started()
        time.sleep(draw.uniform(0.2, 0.9) * duration)
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
    final = started()
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()[-2000:]
    _assert_identical(whole, _state(folder))


def _small_task():
    generator = torch.Generator().manual_seed(1)
    x = (torch.rand(60, 25, 10, generator=generator) < 0.2).float()
    y = torch.randint(0, 3, (60,), generator=generator)
    return Task.from_arrays(x[:48], y[:48], x[48:], y[48:], layout="samples-first")


@pytest.mark.parametrize("rule, options, changes", [
    ("bptt", {}, {"dropout": 0.3}),
    ("etl", {}, {}),
    ("eprop", {"reward": True}, {}),
    ("pat", {"mismatch": 0.2, "noise": 0.01, "calibrate": True, "recalibrate": 3}, {}),
    ("twin", {"mismatch": 0.2, "aware": True}, {}),
])
def test_a_method_s_running_state_survives_a_resume(tmp_path, rule, options, changes):
    common = dict(rule_options=options, progress=False, hidden=(16,), batch_size=8, **changes)
    whole = fit(_small_task(), rule, epochs=2, out=tmp_path / "whole", **common)
    fit(_small_task(), rule, epochs=1, out=tmp_path / "split", **common)
    resumed = fit(_small_task(), rule, epochs=2, out=tmp_path / "split", resume=True, **common)
    assert resumed["history"] == whole["history"]
    one, two = load_checkpoint(tmp_path / "whole" / "checkpoint.pt"), load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert one["learner"] is not None
    for part in ("network", "optimizer", "learner", "rng"):
        assert _equal(one[part], two[part]), part


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    folder = tmp_path / "run"
    folder.mkdir()
    torch.save({"format": "neuroplastic-checkpoint-1", "config": Payload()}, folder / "checkpoint.pt")
    with pytest.raises(ValueError, match="holds objects other than tensors and plain data .* refused"):
        load_checkpoint(folder / "checkpoint.pt")
    assert main(["train", "--task", "digits", "--out", str(folder), "--resume"]) == 2
    assert not (tmp_path / "ran").exists()
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="damaged or holds objects"):
        load_checkpoint(folder / "checkpoint.pt")
