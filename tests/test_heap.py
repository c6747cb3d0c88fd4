"""The command line keeps freed memory in glibc's heap (``devices.keep_freed_memory``): the large tensors
of a training step are written without page faults at the next step, the setting is refused when
misspelt, and ``NEUROPLASTIC_HEAP=release`` keeps glibc's way. Each case in a process of its own."""
import json
import os
import platform
import subprocess
import sys

import pytest

from neuroplastic.devices import HEAP_ENV

PROBE = """
import json, resource
import torch
from neuroplastic.devices import keep_freed_memory
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF
kept = keep_freed_memory()
generator = torch.Generator().manual_seed(0)
network = SpikingNetwork([SpikingLayer(40, 100, ALIF(), recurrent=True, generator=generator)],
                         LeakyReadout(100, 2, generator=generator))
x = (torch.rand(2000, 64, 40, generator=generator) < 0.02).float()  # (T, B, N) tensors of 51 MB
faults = []
for _ in range(10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    network(x).readout.sum().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""
PAGES = 2000 * 64 * 100 * 4 // 4096  # one (T, B, N) float32 tensor


def probe(setting):
    env = dict(os.environ, **{HEAP_ENV: setting})
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_kept_and_reused_without_page_faults():
    """A recurrent layer's training step over a long sequence, ten times: with glibc's default every
    step faults its (T, B, N) tensors in afresh (four of them); kept, most steps after the first two
    fault almost nothing (the freed blocks reused), now and then one tensor's pages where a freed block
    was split and the heap grew (here at most 3 of 8 steps, 2 tensors each)."""
    kept, released = probe("keep"), probe("release")
    assert kept["kept"] and not released["kept"]
    assert min(released["faults"][2:]) > 3 * PAGES
    assert sum(kept["faults"][2:]) < sum(released["faults"][2:]) / 4
    assert sorted(kept["faults"][2:])[len(kept["faults"][2:]) // 2] < PAGES // 10  # the median step


def test_a_misspelt_heap_setting_exits_2_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, **{HEAP_ENV: "hold"})
    done = subprocess.run([sys.executable, "-m", "neuroplastic.cli.main", "train", "--task", "digits", "--epochs",
                           "1", "--out", str(out)], capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and HEAP_ENV in done.stderr
    assert not out.exists()
