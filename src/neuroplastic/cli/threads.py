"""How many threads a command runs on: the cores that other work leaves free when it starts.

PyTorch starts one OpenMP thread per core, and a thread that ends a parallel region spins, waiting for
the next one. Where another process takes one of the cores, a team's threads keep waiting for the one
that is not running, at every small region of every step: on 2 cores beside a job that kept one busy,
one epoch of ``neuroplastic train --task cue`` took 19.5 s on 2 threads and 7.8 s on one (idle: 5.5
and 7.2 s), 5 epochs of digits 2.4–3.0 s against 0.71 s (idle: 0.6–0.8 against 0.45–0.5; beside
heavier load, 3 epochs took 16.7–26.3 s on 2 threads and 0.44–0.49 s on one). Letting the threads
sleep instead (``OMP_WAIT_POLICY=PASSIVE``) bounded the loss but made cue's idle epoch 2.2× slower
(BENCHMARKS.md). The command line therefore measures, before torch loads, how busy the processors it
may run on are over :data:`WINDOW_S` (``/proc/stat``), and sets ``OMP_NUM_THREADS`` to those left free,
at least one and at most one per physical core (PyTorch's own choice on an idle machine). A value the
user set, in ``OMP_NUM_THREADS``, is kept; so is any choice where torch is loaded already (its runtime
has read its settings). Imports nothing but the standard library.
"""
from __future__ import annotations

import os
import sys
import time

__all__ = ["choose_threads", "busy_cores", "free_threads", "WINDOW_S"]

WINDOW_S = 0.1  # how long the cores' use is watched before a command starts


def choose_threads(window_s: float = WINDOW_S) -> int | None:
    """Sets ``OMP_NUM_THREADS`` to the processors this process may run on that other work leaves free
    (:func:`free_threads` of :func:`busy_cores`) and returns it; None where it sets nothing: the user's
    own value, torch loaded already, a single processor, or no ``/proc/stat`` to read."""
    if "OMP_NUM_THREADS" in os.environ or "torch" in sys.modules or not hasattr(os, "sched_getaffinity"):
        return None
    processors = sorted(os.sched_getaffinity(0))
    if len(processors) < 2:
        return None
    try:
        before = _cpu_times(processors)
        time.sleep(window_s)
        busy = busy_cores(before, _cpu_times(processors))
    except (OSError, ValueError, KeyError):
        return None
    threads = free_threads(len(processors), _physical_cores(processors), busy)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return threads


def busy_cores(before: dict[int, list[int]], after: dict[int, list[int]]) -> float:
    """How many cores were busy between two readings of ``/proc/stat``'s per-CPU lines (CPU → its
    counters: user, nice, system, idle, iowait, irq, softirq, steal, …): for each CPU, the share of its
    time not idle nor waiting for I/O (time stolen by other virtual machines counts as busy), summed."""
    total = 0.0
    for cpu, counters in after.items():
        spent = [now - then for now, then in zip(counters[:8], before[cpu][:8])]
        elapsed = sum(spent)
        if elapsed > 0:
            total += 1.0 - (spent[3] + spent[4]) / elapsed
    return total


def free_threads(processors: int, physical_cores: int, busy: float) -> int:
    """The ``processors`` left by ``busy`` processors' worth of other work, rounded to the nearest, at
    least one and at most ``physical_cores`` (two hardware threads of one core share its vector units)."""
    return max(1, min(physical_cores, round(processors - busy)))


def _physical_cores(processors: list[int]) -> int:
    """How many physical cores ``processors`` lie on (``/sys``' topology); their number where unread."""
    cores = set()
    for cpu in processors:
        topology = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{topology}/physical_package_id") as package, open(f"{topology}/core_id") as core:
                cores.add((package.read().strip(), core.read().strip()))
        except OSError:
            return len(processors)
    return len(cores)


def _cpu_times(cores: list[int]) -> dict[int, list[int]]:
    with open("/proc/stat") as stat:
        lines = [line.split() for line in stat if line.startswith("cpu") and line[3:4].isdigit()]
    times = {int(fields[0][3:]): [int(value) for value in fields[1:]] for fields in lines}
    return {cpu: times[cpu] for cpu in cores if cpu in times}
