"""One benchmark case in its own process: ``python -m neuroplastic.bench.peers NAME --size N ...``.

Each library runs in a fresh interpreter, so its peak memory is its own (``ru_maxrss`` only grows),
no library's imports, caches or thread pools change another's timings, and a crash of one names the
case instead of ending the run. ``NAME`` is a library of :data:`~neuroplastic.bench.workloads.NAMES`,
or ``gemm`` for the GEMM floor and the matrix-product peak.

The process builds its case, measures the memory of one pass first (not for ``gemm``; at other
sequence lengths too if asked: ``--growth-steps``), prints one JSON line describing the case, then times one pass for each line it reads on stdin (``fwd``,
``fwd_bwd``, or ``peak`` for ``gemm``) and answers with the milliseconds, until stdin closes. The
parent keeps every case's process alive and asks them in turn (:class:`Case`), so a busy spell on a
shared machine falls on all of them alike rather than on whichever case ran then.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from importlib import metadata

import torch

from neuroplastic.bench.timing import (
    elapsed_ms,
    gemm_passes,
    memory,
    tensor_peak_mb,
    training_passes,
)
from neuroplastic.bench.workloads import DELAYED, MAX_DELAY, NAMES, build

__all__ = ["Case"]


class Case:
    """A case's process, started at once (several start side by side): ``info`` is its JSON
    description, :meth:`time` one timed pass in ms."""

    def __init__(self, name: str, size: int, steps: int, batch: int, threads: int, *,
                 growth_steps: tuple[int, ...] = (), peak_size: int = 2048, delay_floor: bool = False,
                 device: str = "cpu"):
        self.label = f"{name} N={size} T={steps} on {device}"
        command = [sys.executable, "-m", "neuroplastic.bench.peers", name, "--size", str(size),
                   "--steps", str(steps), "--batch", str(batch), "--threads", str(threads),
                   "--peak-size", str(peak_size), "--device", device]
        if delay_floor:
            command.append("--delay-floor")
        if growth_steps:
            command += ["--growth-steps", ",".join(map(str, growth_steps))]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, text=True, env=env)
        self._info = None

    @property
    def info(self) -> dict:
        """The case's JSON description, memory included: waits for the process to get there."""
        if self._info is None:
            self._info = self._answer()
        return self._info

    def time(self, kind: str) -> float:
        """Milliseconds of one ``kind`` pass (``fwd``, ``fwd_bwd``; ``peak`` for ``gemm``)."""
        self._process.stdin.write(kind + "\n")
        self._process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _answer(self):
        line = self._process.stdout.readline()
        if not line:
            self._process.wait()
            self._stderr.seek(0)
            why = (self._stderr.read().strip().splitlines() or [f"exit code {self._process.returncode}"])[-1]
            raise RuntimeError(f"benchmark case {self.label} failed: {why}")
        return json.loads(line)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m neuroplastic.bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=(*NAMES, DELAYED, "gemm"))
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the square product (gemm)")
    parser.add_argument("--delay-floor", action="store_true", help="gemm: time the floor of learned delays too")
    parser.add_argument("--device", default="cpu", help="where the case runs (cpu, cuda, cuda:N)")
    parser.add_argument("--growth-steps", default="",
                        help="comma-separated sequence lengths at which to measure peak_mb as well")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    where = torch.device(args.device)
    if where.type == "cuda" and where.index is not None:  # the timings synchronise the current device
        torch.cuda.set_device(where)
    info = {"name": args.name, "N": args.size, "steps": args.steps, "batch": args.batch,
            "threads": torch.get_num_threads(), "device": args.device}
    if args.name == "gemm":
        passes = gemm_passes(args.size, args.steps, args.batch, args.peak_size,
                             max_delay=MAX_DELAY if args.delay_floor else 0, device=args.device)
    else:
        workload, x = build(args.name, args.size, args.steps, args.batch, device=args.device)
        info["version"] = _version(args.name)
        if args.name == "neuroplastic":
            from neuroplastic import fused

            info["backend"] = fused.backend(x)  # also builds or loads the C++ kernel before the measurement
        info.update(memory(workload, x))
        info["peak_mb_by_steps"] = {length: _tensor_peak(args.name, args.size, int(length), args.batch, args.device)
                                    for length in filter(None, args.growth_steps.split(","))}
        passes = training_passes(workload, x)
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        print(json.dumps(elapsed_ms(passes[line.strip()])), flush=True)


def _version(name: str) -> str:
    """The library's version: neuroplastic's own (also where it runs from a source tree, uninstalled),
    a peer's as installed."""
    if name in ("neuroplastic", DELAYED):
        import neuroplastic

        return neuroplastic.__version__
    return metadata.version(name)


def _tensor_peak(name, size, steps, batch, device):
    """``peak_mb`` of a forward+backward pass over ``steps``: allocator-independent, so it needs no
    fresh process (only ``rss_peak_mb`` would)."""
    workload, x = build(name, size, steps, batch, device=device)
    return tensor_peak_mb(training_passes(workload, x)["fwd_bwd"], device)


if __name__ == "__main__":
    main()
