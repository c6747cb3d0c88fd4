"""``neuroplastic bench``: time and size a LIF layer under BPTT against snnTorch, Norse and SpikingJelly
(``--case feedforward``, the default); recurrent ALIF and LIF layers against their floor and snnTorch
(``--case recurrent``: :mod:`neuroplastic.bench.recurrent`); the online rules' training steps against a
forward pass and BPTT (``--case online``: :mod:`neuroplastic.bench.online`).

The feed-forward workload, what each library runs and how it is measured are in
:mod:`neuroplastic.bench`. With ``--json`` the last line is one object: ``gemm_floor_ms``,
``matmul_peak_gflops``, ``cases`` (``name``, ``N``, ``fwd_ms``, ``fwd_bwd_ms``, ``peak_mb``, …),
``ratios``, ``memory_growth``, ``utilization``, ``backend``, ``threads``, ``machine`` (CPU model,
cores, vector instructions) and the run's settings and load average; for the other cases, their
``median_ms`` per way and the ratios their modules describe.
"""
from __future__ import annotations

from neuroplastic.bench import online, recurrent, suite
from neuroplastic.bench.timing import describe_machine
from neuroplastic.bench.workloads import PEERS, installed
from neuroplastic.cli.common import UsageError, device, emit
from neuroplastic.progress import progress_bar
from neuroplastic.validation import require_count

DEFAULTS = {"sizes": "512,4096", "steps": 500, "batch": 16, "repeats": 5, "peak_size": 2048}
QUICK = {"sizes": "64", "steps": 20, "batch": 4, "repeats": 1, "peak_size": 256}
ONE_LAYER = {"recurrent": recurrent, "online": online}  # cases of one size, timed in this process
INSTALL = {
    "snntorch": "pip install snntorch",
    "spikingjelly": "pip install --no-deps spikingjelly && pip install 'loguru>=0.7,<1'",
    "norse": "pip install nir nirtorch && pip install --no-deps norse",
}


def main(args):
    defaults = QUICK if args.quick else DEFAULTS
    if args.case in ONE_LAYER and not args.quick:
        defaults = {**defaults, "sizes": "512", "repeats": 5 if args.case == "recurrent" else 3}
    sizes = _sizes(defaults["sizes"] if args.sizes is None else args.sizes)
    steps = require_count("--steps", defaults["steps"] if args.steps is None else args.steps)
    batch = require_count("--batch", defaults["batch"] if args.batch is None else args.batch)
    repeats = require_count("--repeats", defaults["repeats"] if args.repeats is None else args.repeats)
    threads = require_count("--threads", suite.default_threads() if args.threads is None else args.threads)
    peers = suite.default_peers() if args.peers is None else _peers(args.peers)
    where = device(args)
    if where.type == "mps":
        raise UsageError("bench times the CPU and CUDA devices; on Apple's MPS, time training with "
                         "benchmarks/devices.py")
    where = str(where)
    if args.case in ONE_LAYER:
        _one_layer(args.case, sizes, steps, batch, repeats, threads, peers, where, args)
        return
    with progress_bar(desc="bench", unit="step", enabled=not args.quiet, every=1) as bar:
        summary = suite.run(sizes, steps, batch, repeats, peers, threads, peak_size=defaults["peak_size"],
                            delays=not args.no_delays, bar=bar, device=where)
    emit(summary, args.json, _table(summary))


def _one_layer(case, sizes, steps, batch, repeats, threads, peers, where, args):
    if len(sizes) != 1:
        raise UsageError(f"--case {case} times one layer width: give one --sizes value, got {len(sizes)}")
    if case == "recurrent" and steps < 2:
        raise UsageError("--case recurrent needs --steps ≥ 2 (memory per step is a slope over two lengths)")
    if args.no_delays:
        raise UsageError(f"--no-delays is an option of --case feedforward, not of --case {case}")
    others = [name for name in peers if name != "snntorch" or case == "online"] if args.peers is not None else []
    if others:
        raise UsageError(f"--case {case} has no {', '.join(others)} case: "
                         + ("the online rules are neuroplastic's own" if case == "online" else
                            "only snnTorch's RLeaky computes these recurrent equations"))
    if where != "cpu":
        raise UsageError(f"--case {case} runs on the CPU (its fused kernels are CPU kernels); time "
                         f"{where} with --case feedforward")
    module = ONE_LAYER[case]
    options = {"peers": [name for name in peers if name == "snntorch"]} if case == "recurrent" else {}
    with progress_bar(desc=f"bench {case}", unit="round", enabled=not args.quiet, every=1) as bar:
        summary = module.run(sizes[0], steps, batch, repeats, threads, bar=bar, **options)
    emit(summary, args.json, module.table(summary))


def _sizes(text):
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--sizes must be comma-separated positive integers, got {text!r}") from None
    return list(dict.fromkeys(require_count("--sizes", size) for size in sizes))


def _peers(text):
    names = [] if text.strip() == "none" else [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in PEERS:
            raise UsageError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}, or 'none'")
        if not installed(name):
            raise UsageError(f"peer {name!r} is not installed; install it with: {INSTALL[name]}")
    return list(dict.fromkeys(names))


def _table(summary):
    """The summary as a readable table: per N the GEMM floor and each case, with its ratio."""
    load = summary["load_average"]
    lines = [
        (f"Linear(N→N) + LIF, B={summary['batch']}, T={summary['steps']}, float32 on {summary['device']}, "
         f"{summary['threads']} threads, "
         f"neuroplastic backend {summary['backend']}; ms: median (min) of {summary['repeats']} rounds; "
         f"load {load[0]:.1f}→{load[1]:.1f}; {describe_machine(summary['machine'])}"),
        f"{'N':>6}  {'':20}{'forward ms':>16}{'fwd+bwd ms':>18}{'peak MB':>9}  fwd+bwd median ratio",
    ]
    for size, floor in summary["gemm_floor_ms"].items():
        ratios = summary["ratios"][size]
        lines.append(f"{size:>6}  {'GEMM floor':20}{summary['gemm_forward_ms'][size]:16.1f}"
                     f"{floor:10.1f} ({summary['gemm_floor_min_ms'][size]:5.0f})")
        for case in (c for c in summary["cases"] if str(c["N"]) == size):
            name = case["name"]
            ratio = (f"{ratios['neuroplastic_fwd_bwd_over_floor']:.2f}× floor" if name == "neuroplastic"
                     else f"{ratios[name + '_fwd_bwd_over_neuroplastic']:.2f}× neuroplastic")
            lines.append(f"{size:>6}  {name:20}{case['fwd_ms']:8.1f} ({case['fwd_min_ms']:5.0f})"
                         f"{case['fwd_bwd_ms']:10.1f} ({case['fwd_bwd_min_ms']:5.0f}){case['peak_mb']:9.1f}  {ratio}")
    use = ", ".join(f"N={size} {u['achieved_gflops']:.1f} GFLOP/s "
                    f"({100 * u['fraction_of_peak']:.0f}%, dense-equivalent)"
                    for size, u in summary["utilization"].items())
    growth = summary["memory_growth"]
    steps = "/".join(map(str, growth["steps"]))
    peaks = "/".join(f"{peak:.1f}" for peak in growth["peak_mb"])
    lines += [
        (f"matmul peak {summary['matmul_peak_gflops']:.1f} GFLOP/s ({summary['matmul_peak_size']}² product); "
         f"neuroplastic fwd+bwd achieves {use}"),
        (f"activation memory, N={growth['N']}: {growth['activation_tensors_per_step']:.2f} (B,N) float32 tensors "
         f"per step (peak MB at T={steps}: {peaks})"),
    ]
    if "delays" in summary:
        d = summary["delays"]
        lines.append(f"learned delays, N={d['N']}, D={d['max_delay']}: fwd+bwd {d['fwd_bwd_ms']:.1f} ms = "
                     f"{d['over_plain']:.2f}× the plain layer; floor (the dense {d['max_delay'] + 1}-tap convolution "
                     f"{d['floor_ms']:.1f} ms + the plain layer) {d['floor_plus_plain_over_plain']:.2f}×")
    return lines
