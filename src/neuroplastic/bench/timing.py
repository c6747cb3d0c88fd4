"""What one benchmark process measures: the passes it times, and the peak memory of one pass.

**Passes.** ``fwd`` is the forward pass as in training, recording the graph; ``fwd_bwd`` the forward,
``loss = spikes.sum()`` and ``loss.backward()``. Each call is timed once by :func:`elapsed_ms`; the
parent asks every process in turn (:mod:`~neuroplastic.bench.suite`) and takes medians.

**Memory.** ``peak_mb`` is the peak of the tensor memory a forward+backward pass allocates on top
of what existed before it (weights, input): intermediate tensors, the graph's saved tensors and the
weight gradient. It comes from ``torch.profiler`` with ``profile_memory=True``, whose trace records
torch's CPU allocator's running total after every allocation and free ("Total Allocated", counting
only blocks allocated while profiling). It is exact and independent of the C allocator. The resident
memory is not: glibc keeps freed blocks under 32 MB for reuse, so ``rss_peak_mb`` (``ru_maxrss``,
the high-water mark, after an unprofiled pass minus the resident memory just before it) also counts
what the allocator holds back, and varies with the allocation pattern; it is reported as what the
machine saw. ``tracemalloc`` does not see torch's allocations at all. Both are measured first thing in
a fresh process, after a pass over two steps paid the one-time costs (thread pools, lazily loaded
libraries: 7 to 20 MB resident), so no earlier pass's high-water mark hides this one's.

**GEMM floor.** The matrix work every dense implementation of the layer does: the forward product
``(T·B × N) @ (N × N)`` and the weight gradient ``(N × T·B) @ (T·B × N)``, as
``nn.functional.linear`` and its backward call them. The input gradient is not part of it: the
input is data, so no library computes it. An event-driven implementation (neuroplastic's, where the
input is spikes: :func:`~neuroplastic.fused.spike_linear`) adds a row of weights per spike instead
and can run below it. **Matrix-product peak**: a large square product
(``2 n³`` FLOPs), what this machine's BLAS reaches with these threads.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

from neuroplastic import fused
from neuroplastic.fused.calibration import caches, cpu_info, generation
from neuroplastic.fused.extension import instruction_set

__all__ = ["describe_machine", "elapsed_ms", "gemm_passes", "machine", "machine_record", "memory", "peak_rss_mb",
           "rounds", "rss_mb", "tensor_peak_mb", "training_passes"]


def machine() -> dict:
    """The CPU the numbers were measured on: its model, family and model numbers (``generation``: a
    virtual machine may name two generations alike), cores, data caches, and the vector instructions
    that decide the kernels' and the BLAS's speed (from ``/proc/cpuinfo`` and ``/sys``; empty where there
    are none); the instruction set the fused kernels run (``kernels``: ``NEUROPLASTIC_ISA`` can hold them
    to another machine's) and PyTorch's own (``aten``: ``ATEN_CPU_CAPABILITY`` can)."""
    fields = cpu_info()
    flags = set(fields.get("flags", "").split())
    return {"cpu": fields.get("model name", platform.processor() or platform.machine()),
            "generation": generation(fields),
            "caches": caches(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "vector": [flag for flag in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                       if flag in flags],
            "kernels": instruction_set(), "aten": torch.backends.cpu.get_cpu_capability()}


def describe_machine(record: dict) -> str:
    """:func:`machine`'s record in words, as the benchmarks' tables name their CPU."""
    caches = ", ".join(f"{level} {size}" for level, size in record["caches"].items())
    vector = "/".join(record["vector"]) or "no vector flags read"
    return (f"{record['cpu']} ({record['generation']}; {caches or 'caches not read'}), {record['cores']} cores, "
            f"{vector}; kernels {record['kernels']}, ATen {record['aten']}")


def machine_record() -> str:
    """One JSON line naming where a benchmark runs — :func:`machine`, the same in words, PyTorch's version
    and its threads — which every script in ``benchmarks/`` prints before its figures, so that a table
    copied from its output can name the CPU model and flags it came from."""
    record = machine()
    return json.dumps({"machine": {**record, "described": describe_machine(record)}, "torch": torch.__version__,
                       "threads": torch.get_num_threads()})


def elapsed_ms(fn) -> float:
    """Wall time of one call ``fn()`` in ms; where the process has used CUDA, from an idle GPU to the
    end of the work ``fn`` queued there."""
    _synchronize()
    start = time.perf_counter()
    fn()
    _synchronize()
    return 1e3 * (time.perf_counter() - start)


def rounds(ways: dict, repeats: int, bar=None) -> tuple[dict, dict]:
    """``(median, min)`` ms of each of ``ways`` (name → function) over ``repeats`` rounds after a
    warm-up round; in a round every way runs once, in turn, so that a busy spell of a shared machine
    slows one round of every way rather than every round of one. ``bar`` advances once per round."""
    times = {name: [] for name in ways}
    if bar is not None:
        bar.reset(total=repeats + 1)
    for round_ in range(repeats + 1):
        for name, fn in ways.items():
            elapsed = elapsed_ms(fn)
            if round_:
                times[name].append(elapsed)
        if bar is not None:
            bar.set_postfix_str(f"round {round_}/{repeats}")
            bar.update()
    return ({name: statistics.median(values) for name, values in times.items()},
            {name: min(values) for name, values in times.items()})


def _synchronize() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def training_passes(workload, x: torch.Tensor) -> dict:
    """``{"fwd": ..., "fwd_bwd": ...}``: the two timed passes of ``workload`` over ``x`` (or a slice)."""

    def forward(inputs=x):
        with torch.enable_grad():
            return workload.forward(inputs)

    def forward_backward(inputs=x):
        for parameter in workload.parameters:
            parameter.grad = None
        forward(inputs).sum().backward()

    return {"fwd": forward, "fwd_bwd": forward_backward}


def memory(workload, x: torch.Tensor) -> dict:
    """``peak_mb`` and ``rss_peak_mb`` of a forward+backward pass: call first in a fresh process."""
    forward_backward = training_passes(workload, x)["fwd_bwd"]
    forward_backward(x[:2])  # one-time costs (thread pools, lazy libraries) before the baselines
    _zero_grad(workload)  # each pass counts its weight gradient
    before = rss_mb()
    forward_backward()
    result = {"rss_peak_mb": max(0.0, peak_rss_mb() - before)}
    _zero_grad(workload)
    result["peak_mb"] = tensor_peak_mb(forward_backward, x.device)
    _zero_grad(workload)
    return result


def _zero_grad(workload):
    for parameter in workload.parameters:
        parameter.grad = None


def rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far (MB; Linux counts ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def tensor_peak_mb(fn, device="cpu") -> float:
    """Peak of the tensor memory allocated by ``fn()`` on ``device`` and not yet freed, in MB (on the
    CPU ``torch.profiler``'s count, on CUDA the caching allocator's peak statistics). The fused layers'
    workspace is emptied first, so that ``fn`` allocates, and counts, the buffers it would otherwise
    take from an earlier pass."""
    fused.empty_cache()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - before) / 2**20
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        fn()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        profiler.export_chrome_trace(path)
        with open(path) as trace:
            events = json.load(trace)["traceEvents"]
    memory_events = [event["args"] for event in events if event.get("name") == "[memory]"]
    if not memory_events:
        return 0.0
    # The profiler's running total carries blocks an earlier profiled call allocated and that were
    # freed unprofiled (it never learns of those frees): count from the total before fn's first block.
    start = memory_events[0]["Total Allocated"] - memory_events[0]["Bytes"]
    return max(0, *(args["Total Allocated"] - start for args in memory_events)) / 2**20


def gemm_passes(size: int, steps: int, batch: int, peak_size: int, *, max_delay: int = 0, seed: int = 0,
                device: str = "cpu") -> dict:
    """``fwd``: the forward product; ``fwd_bwd``: it and the weight gradient (the GEMM floor);
    ``peak``: a ``peak_size²`` square product; ``delay_floor`` (``max_delay`` > 0): a causal
    ``(max_delay + 1)``-tap convolution over the sequence and its weight gradient, the floor of the
    synapses with learned delays (:mod:`~neuroplastic.bench.workloads`)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(steps * batch, size).bernoulli_(0.2, generator=generator).to(device)
    weight = torch.empty(size, size).uniform_(-1.0, 1.0, generator=generator).to(device)
    grad = torch.empty(steps * batch, size).normal_(generator=generator).to(device)
    a = torch.empty(peak_size, peak_size).normal_(generator=generator).to(device)
    b = torch.empty(peak_size, peak_size).normal_(generator=generator).to(device)
    passes = {"fwd": lambda: torch.nn.functional.linear(x, weight),
              "fwd_bwd": lambda: (torch.nn.functional.linear(x, weight), grad.T @ x),
              "peak": lambda: a @ b}
    if max_delay:
        sequence = torch.empty(batch, size, steps + max_delay).bernoulli_(0.2, generator=generator).to(device)
        kernel = torch.empty(size, size, max_delay + 1).uniform_(-1.0, 1.0, generator=generator).to(device)
        kernel.requires_grad_()
        grad_currents = torch.empty(batch, size, steps).normal_(generator=generator).to(device)

        def delay_floor():
            currents = torch.nn.functional.conv1d(sequence, kernel)
            return torch.autograd.grad(currents, kernel, grad_currents)
        passes["delay_floor"] = delay_floor
    return passes
