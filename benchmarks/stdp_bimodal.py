"""Speed of the Song–Miller–Abbott STDP network (``neuroplastic reproduce stdp-bimodal``) against
biological real time, and against Brian2 on the same network when a Brian2 interpreter is given.

    python benchmarks/stdp_bimodal.py                                   # ours, 3 repeats: the machine record, then JSON
    python benchmarks/stdp_bimodal.py --brian-python /path/to/env/bin/python

Network: 1000 Poisson inputs at 15 Hz → 1 conductance-based LIF neuron, additive pair STDP with
hard bounds, dt = 0.1 ms, 100 s of biological time, one thread. Ours is the event-driven fast path
(tested equal to the step-by-step reference); the time includes drawing the input spikes. Brian2
(needs numpy < 2 today, so it lives in its own environment) runs its own example script in its own
process, with the ``numpy`` target (no compiler needed) or ``cython`` when available; its time
excludes the import and includes code generation, as a user would see it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

BRIAN = r"""
import sys, time, json
from brian2 import *
prefs.codegen.target = sys.argv[1]
set_device('runtime')
N = 1000; taum = 10*ms; taupre = 20*ms; taupost = taupre; Ee = 0*mV; vt = -54*mV; vr = -60*mV
El = -74*mV; taue = 5*ms; F = 15*Hz; gmax = .01; dApre = .01
dApost = -dApre * taupre / taupost * 1.05; dApost *= gmax; dApre *= gmax
defaultclock.dt = 0.1*ms
eqs = '''dv/dt = (ge * (Ee-v) + El - v) / taum : volt
dge/dt = -ge / taue : 1'''
start = time.perf_counter()
inp = PoissonGroup(N, rates=F)
neurons = NeuronGroup(1, eqs, threshold='v>vt', reset='v = vr', method='euler')
S = Synapses(inp, neurons, '''w : 1
dApre/dt = -Apre / taupre : 1 (event-driven)
dApost/dt = -Apost / taupost : 1 (event-driven)''',
             on_pre='''ge += w
Apre += dApre
w = clip(w + Apost, 0, gmax)''',
             on_post='''Apost += dApost
w = clip(w + Apre, 0, gmax)''')
S.connect()
S.w = 'rand() * gmax'
spikes = SpikeMonitor(neurons)
run(100*second)
wall = time.perf_counter() - start
w = S.w[:] / gmax
late = sum(1 for t in spikes.t[:] if t > 90*second) / 10.0
print(json.dumps({"wall_s": wall, "below": float((w < 0.1).mean()), "above": float((w > 0.9).mean()),
                  "rate_hz": late}))
"""


def ours(repeats: int) -> dict:
    import torch

    from neuroplastic.experiments.stdp_bimodal import run

    walls, last = [], None
    for seed in range(repeats):
        start = time.perf_counter()
        last = run(seed=seed, progress=False)
        walls.append(time.perf_counter() - start)
    best = min(walls)
    m = last.measured
    return {"wall_s": walls, "best_wall_s": best, "realtime_factor": 100.0 / best,
            "below": m["fraction_below_0.1_gmax"], "above": m["fraction_above_0.9_gmax"],
            "rate_hz": m["output_rate_hz"]}


def brian(python: str, target: str) -> dict:
    done = subprocess.run([python, "-c", BRIAN, target], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--brian-python", help="a Python interpreter with brian2 installed")
    parser.add_argument("--brian-target", default="numpy", help="Brian2 code-generation target (numpy, cython)")
    args = parser.parse_args()
    import torch

    from neuroplastic.bench.timing import machine_record

    torch.set_num_threads(1)  # the Song network runs on one thread
    print(machine_record(), flush=True)
    result = {"ours": ours(args.repeats)}
    if args.brian_python:
        result["brian2"] = brian(args.brian_python, args.brian_target)
        if "wall_s" in result["brian2"]:
            result["speedup_vs_brian2"] = result["brian2"]["wall_s"] / result["ours"]["best_wall_s"]
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
