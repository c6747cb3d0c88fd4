"""The command line runs on the processors that other work leaves free (``cli.threads``): the share of
busy time read from ``/proc/stat``'s counters, the rule that turns it into a thread count, and what GNU
OpenMP itself reports at load (``OMP_DISPLAY_ENV=VERBOSE``) in processes of their own, each running a
command that loads torch and then refuses its arguments (exit 2)."""
import os
import subprocess
import sys

import pytest

from neuroplastic.cli.threads import busy_cores, choose_threads, free_threads

#           user nice system idle iowait irq softirq steal
BEFORE = {0: [100, 0, 10, 500, 5, 0, 0, 0], 1: [50, 0, 5, 700, 0, 0, 0, 0], 2: [0, 0, 0, 100, 0, 0, 0, 0]}


def test_busy_time_is_counted_per_processor_and_summed():
    after = {0: [180, 0, 30, 500, 5, 0, 0, 0],  # busy all through: user and system
             1: [50, 0, 5, 750, 50, 0, 0, 0],  # idle or waiting for I/O
             2: [0, 0, 0, 125, 0, 5, 0, 20]}  # a quarter idle; irq and time stolen by other machines are busy
    assert busy_cores(BEFORE, after) == pytest.approx(1.0 + 0.0 + 0.5)


@pytest.mark.parametrize("processors, physical, busy, threads", [
    (2, 2, 0.1, 2), (2, 2, 0.9, 1), (2, 2, 2.0, 1), (2, 2, 1.6, 1),
    (16, 8, 1.0, 8), (16, 8, 10.2, 6), (16, 16, 3.4, 13)])
def test_the_free_processors_at_least_one_and_at_most_a_thread_per_core(processors, physical, busy, threads):
    assert free_threads(processors, physical, busy) == threads


def reported_threads(env_update: dict, busy_processor: int | None = None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.update(OMP_DISPLAY_ENV="VERBOSE", **env_update)
    busy = None
    if busy_processor is not None:  # a job that keeps one processor busy while the command starts
        busy = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{busy_processor}}})\n"
                                 "while True: pass"])
    try:
        done = subprocess.run([sys.executable, "-m", "neuroplastic", "train", "--task", "digits", "--epochs", "0"],
                              capture_output=True, text=True, env=env)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    assert done.returncode == 2 and "--epochs must be" in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip().startswith("OMP_NUM_THREADS")]
    if not lines:
        pytest.skip("this OpenMP runtime is not GNU's, or does not display its settings")
    return lines[0].split("=", 1)[1].strip().strip("'")


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two processors")
def test_a_busy_processor_is_left_to_its_job():
    processors = sorted(os.sched_getaffinity(0))
    threads = int(reported_threads({}, busy_processor=processors[-1]))
    assert 1 <= threads <= len(processors) - 1


def test_the_users_own_thread_count_is_kept():
    assert reported_threads({"OMP_NUM_THREADS": "1"}) == "1"


def test_nothing_is_set_where_torch_is_loaded_already(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert "torch" in sys.modules  # this test process: the runtime has read its settings
    assert choose_threads() is None and "OMP_NUM_THREADS" not in os.environ
