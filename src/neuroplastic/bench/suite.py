"""The whole benchmark run: the cases taking turns, and the summary.

**Turns.** For each N, every library's process and the GEMM process start (each measures its memory
first), then run one warm-up round and ``repeats`` timed rounds; in a round each process in turn times
one forward pass (the GEMM process: the forward product), then each one forward+backward pass (the
GEMM process: the GEMM floor), then the GEMM process one square product.
Before every turn the parent waits ``SETTLE_S`` (50 ms): after its last parallel region a process's
OpenMP threads keep spinning for a while (libgomp's default wait policy), and with as many threads as
cores they would take a core from the next case's first parallel regions, a cost that depends on
who ran before and that no single training process pays. Measured on the standard workload (2 cores):
neuroplastic's forward+backward 46.9 ms without the wait, 33.4 ms without it but with
``OMP_WAIT_POLICY=PASSIVE`` in every process, 33.6 ms with it (a 2-thread process burns 8-10 ms of
CPU spinning after a parallel region, 0.1 ms when passive). Every case pays the same small price
for it: its own threads have gone to sleep, so its first parallel region wakes them. (Intel's
OpenMP runtime spins 200 ms by default; no case here loads it.)
A case's time is the median over the rounds (``*_min_ms``: the least disturbed round). On a machine
shared with other jobs, a busy spell then slows one round of every case instead of all the rounds
of one case, and the ratios between cases stay meaningful.

**Utilization.** The layer's forward+backward does two matrix products of ``2·T·B·N²`` FLOPs each:
the forward product and the weight gradient (no input gradient: the input is data). Its achieved
FLOP/s, ``2 × 2·T·B·N² / fwd_bwd_ms``, over the matrix-product peak of the same run is the fraction of
the machine's matrix throughput the layer turns into useful work; the recurrence counts as overhead.
These are dense-equivalent FLOPs: where the input is spikes neuroplastic's synapses are event-driven
(one addition per spike and output instead of a multiply-add per synapse), do less work than that,
and can exceed 100%.

**Learned delays** (``delays``, the smallest N): neuroplastic's layer with learned delays
(:mod:`~neuroplastic.bench.workloads`) takes its turns as a case of its own, and the GEMM process
times the delays' floor (``delay_floor``) in every round; the summary's ``delays`` gives the
layer's fwd+bwd over the plain layer's, and over the floor plus the plain layer.

**Memory growth.** neuroplastic's peak tensor memory of forward+backward at ``T/5``, ``T`` and ``4T``
steps (the smallest N), measured by its process before the timed rounds. Activations grow linearly in T; the slope between the
shortest and the longest run, in units of one ``(B, N)`` float32 tensor, is the number of tensors the
pass keeps per step: ``(peak(T₂) − peak(T₁)) / ((T₂ − T₁)·B·N·4 bytes)``. The input (one more per step)
exists before the pass and is not counted.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections import defaultdict

from neuroplastic.bench.peers import Case
from neuroplastic.bench.timing import machine
from neuroplastic.bench.workloads import DELAYED, MAX_DELAY, PEERS, installed

__all__ = ["default_peers", "default_threads", "run"]

GEMMS = 2  # forward product and weight gradient; the input gradient is not computed
KINDS = ("fwd", "fwd_bwd")
SETTLE_S = 0.05  # seconds between turns (module docstring)


def default_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))


def default_peers() -> list[str]:
    """The peer libraries installed here."""
    return [name for name in PEERS if installed(name)]


def run(sizes, steps, batch, repeats, peers, threads, *, peak_size=2048, delays=True, bar=None,
        device: str = "cpu") -> dict:
    """Runs the benchmark on ``device``. ``delays``: the case with learned delays too (at the smallest
    N); ``bar``: a progress bar (:func:`neuroplastic.progress.progress_bar`) or None, advanced once per
    process start and per round."""
    load_before = os.getloadavg()[0]
    names = ["gemm", "neuroplastic", *peers]
    memory_steps = [max(1, steps // 5), steps, 4 * steps]
    extra_steps = [t for t in memory_steps if t != steps]
    if bar is not None:
        bar.reset(total=len(sizes) * (len(names) + repeats + 1) + int(delays))
    times, infos = defaultdict(list), {}

    def advance(label):
        if bar is not None:
            bar.set_postfix_str(label)
            bar.update()

    for size in sizes:
        with contextlib.ExitStack() as stack:
            growth = {"neuroplastic": extra_steps} if size == min(sizes) else {}
            delayed = delays and size == min(sizes)
            cases = {name: stack.enter_context(Case(name, size, steps, batch, threads, peak_size=peak_size,
                                                    growth_steps=growth.get(name, ()),
                                                    delay_floor=delayed and name == "gemm", device=device))
                     for name in names + [DELAYED] * delayed}
            for name, case in cases.items():  # they start side by side; no timing runs yet
                advance(f"start {name} N={size}")
                infos[name, size, steps] = case.info
            for round_ in range(repeats + 1):  # round 0 warms up
                advance(f"round {round_}/{repeats} N={size}")
                for kind in KINDS:
                    for name, case in cases.items():
                        time.sleep(SETTLE_S)
                        times[name, size, kind].append(case.time(kind))
                time.sleep(SETTLE_S)
                times["peak", size, "peak"].append(cases["gemm"].time("peak"))
                if delayed:
                    time.sleep(SETTLE_S)
                    times["delay_floor", size, "fwd_bwd"].append(cases["gemm"].time("delay_floor"))
    timed = {key: sorted(values[1:]) for key, values in times.items()}  # without the warm-up round
    cases = [_case(infos[name, size, steps], timed, size) for size in sizes for name in names[1:]
             + [DELAYED] * (delays and size == min(sizes))]
    floors = {size: statistics.median(timed["gemm", size, "fwd_bwd"]) for size in sizes}
    peak_ms = statistics.median([t for size in sizes for t in timed["peak", size, "peak"]])
    peak = 2.0 * peak_size**3 / (peak_ms * 1e-3) / 1e9
    return {
        "case": "feedforward",
        "gemm_floor_ms": {str(size): floors[size] for size in sizes},
        "gemm_floor_min_ms": {str(size): timed["gemm", size, "fwd_bwd"][0] for size in sizes},
        "gemm_forward_ms": {str(size): statistics.median(timed["gemm", size, "fwd"]) for size in sizes},
        "matmul_peak_gflops": peak,
        "matmul_peak_size": peak_size,
        "cases": cases,
        "ratios": {str(size): _ratios(cases, size, floors[size], "") for size in sizes},
        "ratios_min": {str(size): _ratios(cases, size, timed["gemm", size, "fwd_bwd"][0], "_min")
                       for size in sizes},
        "memory_growth": _memory_growth(infos, min(sizes), memory_steps, batch),
        **({"delays": _delays(cases, timed, min(sizes))} if delays else {}),
        "utilization": {str(size): _utilization(cases, size, steps, batch, peak) for size in sizes},
        "backend": infos["neuroplastic", sizes[0], steps]["backend"],
        "threads": threads,
        "device": device,
        "steps": steps,
        "batch": batch,
        "repeats": repeats,
        "load_average": [load_before, os.getloadavg()[0]],
        "machine": machine(),
    }


def _case(info, timed, size):
    name = info["name"]
    case = {key: info[key] for key in ("name", "N", "peak_mb", "rss_peak_mb", "version")}
    for kind in KINDS:
        case[f"{kind}_ms"] = statistics.median(timed[name, size, kind])
        case[f"{kind}_min_ms"] = timed[name, size, kind][0]
    return case


def _find(cases, name, size):
    return next(case for case in cases if case["name"] == name and case["N"] == size)


def _ratios(cases, size, floor, suffix):
    """neuroplastic's fwd+bwd over the GEMM floor, and each peer's times over neuroplastic's."""
    ours = _find(cases, "neuroplastic", size)
    ratios = {"neuroplastic_fwd_bwd_over_floor": ours[f"fwd_bwd{suffix}_ms"] / floor}
    for case in cases:
        if case["N"] == size and case is not ours:
            for kind in (f"fwd{suffix}", f"fwd_bwd{suffix}"):
                ratios[f"{case['name']}_{kind}_over_neuroplastic"] = case[f"{kind}_ms"] / ours[f"{kind}_ms"]
    return ratios


def _delays(cases, timed, size):
    """The layer with learned delays against the plain layer, and against its floor: the delays'
    dense convolution (with its weight gradient) plus the plain layer."""
    plain, delayed = _find(cases, "neuroplastic", size), _find(cases, DELAYED, size)
    floor = statistics.median(timed["delay_floor", size, "fwd_bwd"])
    return {"N": size, "max_delay": MAX_DELAY, "fwd_bwd_ms": delayed["fwd_bwd_ms"], "floor_ms": floor,
            "over_plain": delayed["fwd_bwd_ms"] / plain["fwd_bwd_ms"],
            "floor_plus_plain_over_plain": (floor + plain["fwd_bwd_ms"]) / plain["fwd_bwd_ms"],
            "over_floor_plus_plain": delayed["fwd_bwd_ms"] / (floor + plain["fwd_bwd_ms"])}


def _utilization(cases, size, steps, batch, peak_gflops):
    flops = GEMMS * 2.0 * steps * batch * size**2
    achieved = flops / (_find(cases, "neuroplastic", size)["fwd_bwd_ms"] * 1e-3) / 1e9
    return {"flops": flops, "achieved_gflops": achieved, "fraction_of_peak": achieved / peak_gflops}


def _memory_growth(infos, size, memory_steps, batch):
    info = infos["neuroplastic", size, memory_steps[1]]
    peaks = [info["peak_mb_by_steps"].get(str(t), info["peak_mb"]) for t in memory_steps]
    slope = (peaks[-1] - peaks[0]) * 2**20 / (memory_steps[-1] - memory_steps[0])  # bytes per step
    return {"N": size, "batch": batch, "steps": memory_steps, "peak_mb": peaks, "bytes_per_step": slope,
            "activation_tensors_per_step": slope / (batch * size * 4)}
