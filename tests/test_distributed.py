"""Data-parallel training on torch.distributed: two processes launched by ``torchrun`` (gloo, CPU) with
half of every batch each take the same steps as one process with the whole batch — BPTT, e-prop and
DECOLLE, OSTL and RTRL in float64 to 1e-10 — and the command line trains, checkpoints and resumes under torchrun."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from neuroplastic.cli.main import main
from neuroplastic.training.distributed import DataParallel

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="needs torch.distributed")

EXACT_RULES = ("bptt", "eprop", "decolle", "ostl", "rtrl")

# A float64 task of random spike trains; every rule trains 2 epochs of 6 batches of 12 samples.
DRIVER = textwrap.dedent("""
    import sys
    import torch
    from neuroplastic.training.distributed import end_process_group
    from neuroplastic.tasks import Task
    from neuroplastic.training.fit import fit

    def toy_task():
        generator = torch.Generator().manual_seed(0)
        x = (torch.rand(96, 20, 12, generator=generator) < 0.2).double().numpy()
        y = torch.randint(0, 3, (96,), generator=generator).numpy()
        return Task.from_arrays(x[:72], y[:72], x[72:], y[72:], layout="samples-first").to(torch.float64)

    def train(rule, out):
        return fit(toy_task(), rule, epochs=2, out=out, hidden=(16,), batch_size=12, progress=False)

    if __name__ == "__main__":
        for rule in sys.argv[2:]:
            train(rule, f"{sys.argv[1]}/{rule}")
        end_process_group()  # what a script under torchrun ends with (else, at times, an abort at exit)
""")


def _torchrun(*args, cwd, processes=2):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    environment.pop("WORLD_SIZE", None)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    result = subprocess.run([*launcher, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _weights(folder):
    return torch.load(folder / "checkpoint.pt", map_location="cpu", weights_only=True)["network"]


def test_two_processes_with_half_batches_take_the_steps_of_one_with_the_whole_batch(tmp_path):
    (tmp_path / "driver.py").write_text(DRIVER)
    _torchrun("driver.py", str(tmp_path / "two"), *EXACT_RULES, cwd=tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        import driver
    finally:
        sys.path.remove(str(tmp_path))
    for rule in EXACT_RULES:
        one = driver.train(rule, tmp_path / "one" / rule)
        two = json.loads((tmp_path / "two" / rule / "summary.json").read_text())
        single, double = _weights(tmp_path / "one" / rule), _weights(tmp_path / "two" / rule)
        assert one["updates"] > 0
        for name in single:
            assert single[name].dtype == torch.float64
            assert torch.allclose(single[name], double[name], rtol=0, atol=1e-10), (rule, name)
        for before, after in zip(one["history"], two["history"]):  # the loss of the whole batch, reduced
            assert after["train_loss"] == pytest.approx(before["train_loss"], rel=1e-12, abs=1e-12)
        assert two["synops"] == one["synops"] and two["updates"] == one["updates"]


def _toy_npz(path):
    rng = np.random.default_rng(0)
    x = (rng.random((60, 15, 10)) < 0.2).astype(np.float32)
    y = rng.integers(0, 2, 60)
    np.savez(path, x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])


def test_the_command_line_trains_and_resumes_under_torchrun_as_one_process_does(tmp_path):
    _toy_npz(tmp_path / "toy.npz")
    common = ["--data", "toy.npz", "--hidden", "16", "--batch-size", "8"]
    _torchrun("-m", "neuroplastic", "train", *common, "--epochs", "1", "--out", "parallel", cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "parallel").iterdir()) == [
        "checkpoint.pt", "learning_curve.png", "raster.png", "summary.json"]  # one writer, no leftovers
    result = _torchrun("-m", "neuroplastic", "train", *common, "--epochs", "2", "--out", "parallel", "--resume",
                       "--json", cwd=tmp_path)
    assert len(result.stdout.strip().splitlines()) == 1  # one process reports
    assert json.loads(result.stdout)["epochs"] == 2
    resumed = json.loads((tmp_path / "parallel" / "summary.json").read_text())
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    os.chdir(tmp_path)
    assert main(["train", *common, "--epochs", "2", "--out", "single"]) == 0
    single, parallel = _weights(tmp_path / "single"), _weights(tmp_path / "parallel")
    for name in single:  # float32: the reduced sums round differently
        assert torch.allclose(single[name], parallel[name], rtol=1e-5, atol=1e-6), name


def test_the_shards_of_a_batch_are_the_batch_in_order():
    inputs, labels = torch.randn(5, 11, 3), torch.arange(11)
    regression = torch.randn(5, 11, 2)
    for world in (1, 2, 3, 4):
        shards = [DataParallel(rank, world).shard(inputs, labels, regression=False) for rank in range(world)]
        assert torch.equal(torch.cat([x for x, _ in shards], dim=1), inputs)
        assert torch.equal(torch.cat([y for _, y in shards]), labels)
        parts = [DataParallel(rank, world).shard(inputs, regression, regression=True)[1] for rank in range(world)]
        assert torch.equal(torch.cat(parts, dim=1), regression)
        weights = []
        for rank in range(world):
            parallel = DataParallel(rank, world)
            parallel.shard(inputs, labels, regression=False)
            weights.append(parallel.weight)
        assert sum(weights) == pytest.approx(1.0)


def test_a_batch_too_small_to_share_is_refused_before_training():
    with pytest.raises(ValueError, match="a batch of 1 samples cannot be shared by 2 processes"):
        DataParallel(0, 2).check_batches(samples=33, batch_size=8)
    DataParallel(0, 2).check_batches(samples=34, batch_size=8)  # a last batch of 2 is enough
    with pytest.raises(ValueError, match="a batch of 2 samples"):
        DataParallel(0, 4).check_batches(samples=100, batch_size=2)


def test_one_process_has_no_data_parallel_run(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert DataParallel.from_environment(torch.device("cpu")) is None


# A gradient rule whose updates process 1 drops on every other segment (what a `gate` does to a shard
# whose gradient is below its threshold): the processes decide each step together.
SKIPPING_DRIVER = textwrap.dedent("""
    import sys
    import torch
    import torch.distributed as dist
    from driver import toy_task
    from neuroplastic.rules import Transform, chain
    from neuroplastic.rules.bptt import TruncatedBPTT
    from neuroplastic.training.distributed import end_process_group
    from neuroplastic.training.fit import fit
    from neuroplastic.training.problem import GradientMethod

    class DropOnProcessOne(Transform):
        def transform(self, info, updates, params):
            skip = dist.is_initialized() and dist.get_rank() == 1 and info.start % 10 == 0
            return None if skip else updates

    method = GradientMethod(chain(TruncatedBPTT(5), DropOnProcessOne()), name="skipping")
    summary = fit(toy_task(), method, epochs=1, out=sys.argv[1], hidden=(16,), batch_size=12, progress=False)
    network = torch.load(f"{sys.argv[1]}/checkpoint.pt", weights_only=True)["network"]
    if dist.is_initialized():
        received = [None] * dist.get_world_size()
        dist.all_gather_object(received, network)
        if dist.get_rank() == 0:
            torch.save(received, f"{sys.argv[1]}/every_process.pt")
    end_process_group()
""")


def test_a_step_skipped_on_one_process_only_is_taken_by_all_with_zeros_for_its_shard(tmp_path):
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "skipping.py").write_text(SKIPPING_DRIVER)
    _torchrun("skipping.py", str(tmp_path / "two"), cwd=tmp_path)  # gloo's mismatch error before
    first, second = torch.load(tmp_path / "two" / "every_process.pt", weights_only=True)
    for name in first:
        assert torch.equal(first[name], second[name]), name  # one model on every process
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["updates"] > 0


def test_a_resumed_run_continues_each_processs_own_running_state(tmp_path):
    """ETL's threshold follows each shard's trigger rate: process 1's differs from process 0's, and a
    resumed run must continue both (it gave every process process 0's)."""
    _toy_npz(tmp_path / "toy.npz")
    common = ["--data", "toy.npz", "--hidden", "16", "--batch-size", "8", "--rule", "etl"]
    _torchrun("-m", "neuroplastic", "train", *common, "--epochs", "2", "--out", "straight", cwd=tmp_path)
    _torchrun("-m", "neuroplastic", "train", *common, "--epochs", "1", "--out", "resumed", cwd=tmp_path)
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert len(saved["learners"]) == 2 and saved["learner"] == saved["learners"][0]
    _torchrun("-m", "neuroplastic", "train", *common, "--epochs", "2", "--out", "resumed", "--resume", cwd=tmp_path)
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


@pytest.mark.parametrize("finished", [True, False])
def test_ending_the_process_group_meets_at_a_barrier_only_when_every_process_finished(monkeypatch, finished):
    """A barrier after an error would wait for processes that never come; without one after a finished
    run, gloo's threads may still release gathered tensors while Python shuts down (an abort at exit)."""
    from neuroplastic.training import distributed

    calls = []
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    distributed.end_process_group(finished=finished)
    assert calls == (["barrier", "destroy"] if finished else ["destroy"])
