"""Benchmark of a feed-forward LIF layer under BPTT, against snnTorch, Norse and SpikingJelly.

The standard workload: ``Linear(N → N)`` without bias, then one LIF layer (``β = 0.9``, threshold 1,
reset by subtraction), batch 16, T = 500 steps, N = 512 and 4096, float32, ``loss = spikes.sum()``.
For each library (:mod:`~neuroplastic.bench.workloads` says how each is configured and where their
dynamics differ) it reports the forward and forward+backward time and the peak memory of the pass,
each case in a fresh process (:mod:`~neuroplastic.bench.peers`); in the same run, the GEMM floor (the
two matrix products no implementation avoids), the matrix-product peak of the machine and from it the
layer's hardware utilization, and how neuroplastic's memory grows with T
(:mod:`~neuroplastic.bench.suite`; the measurements themselves: :mod:`~neuroplastic.bench.timing`).

    neuroplastic bench --json                       # the standard workload, installed peers
    neuroplastic bench --case recurrent --threads 1  # recurrent ALIF/LIF: bench.recurrent
    neuroplastic bench --case online --threads 1     # the online rules' steps: bench.online
    python -m neuroplastic.bench.peers snntorch --size 512 --steps 500 --batch 16 --repeats 5 --threads 2
"""
from neuroplastic.bench.suite import default_peers, default_threads, run
from neuroplastic.bench.workloads import NAMES, PEERS

__all__ = ["NAMES", "PEERS", "default_peers", "default_threads", "run"]
