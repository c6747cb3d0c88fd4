"""The fused kernels give the same bits whatever instruction set runs them (the clone the loader picks
on another machine, held here by ``NEUROPLASTIC_ISA``), and that choice is checked."""
import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from neuroplastic.fused import backend, extension

X86 = platform.machine() in ("x86_64", "AMD64")

# A network of every event-driven and fused kernel (a feed-forward LIF layer fed by spikes, whose widths
# leave partial column tiles; a recurrent ALIF layer; a leaky readout), forward and backward, each
# result saved: what the kernels compute on one instruction set.
PASS = """
import sys, torch
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF
from neuroplastic.spikes import FastSigmoid
torch.set_num_threads(1)
results = {}
for dtype in (torch.float32, torch.float64):
    generator = torch.Generator().manual_seed(0)
    lif = ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0))
    alif = ALIF(beta=0.2, t_ref=2.0, v_th=1.0, surrogate=FastSigmoid(10.0))
    network = SpikingNetwork([SpikingLayer(40, 300, lif, scale=3.0, generator=generator),
                              SpikingLayer(300, 100, alif, recurrent=True, scale=3.0, generator=generator)],
                             LeakyReadout(100, 5, generator=generator)).to(dtype)
    x = (torch.rand(25, 8, 40, generator=generator) < 0.2).to(dtype)
    out = network(x)
    (out.readout.square().sum() + sum(s.sum() for s in out.spikes)).backward()
    results[str(dtype)] = {"readout": out.readout.detach(), "spikes": [s.detach() for s in out.spikes],
                           **{name: p.grad for name, p in network.named_parameters()}}
torch.save(results, sys.argv[1])
"""


def _run_pass(isa, path):
    env = {"NEUROPLASTIC_ISA": isa, "NEUROPLASTIC_CALIBRATION": "off", "NEUROPLASTIC_FUSED": "cpp",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PASS, str(path)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return torch.load(path)


@pytest.mark.skipif(not X86 or backend() != "cpp", reason="instruction sets are chosen among x86-64 clones")
def test_every_instruction_set_gives_the_same_bits(tmp_path):
    reference = _run_pass("auto", tmp_path / "auto.pt")
    capabilities = torch.cpu.get_capabilities()
    others = [isa for isa, flag in (("avx2", "avx2"), ("x86-64", None)) if flag is None or capabilities.get(flag)]
    for isa in others:
        results = _run_pass(isa, tmp_path / f"{isa}.pt")
        for dtype, values in reference.items():
            for name, value in values.items():
                got = results[dtype][name]
                same = all(map(torch.equal, got, value)) if isinstance(value, list) else torch.equal(got, value)
                assert same, f"{isa}, {dtype}: {name} differs from the loader's own clone"
    assert any(s.sum() > 0 for s in reference["torch.float32"]["spikes"])  # the layers did fire


def test_the_instruction_set_is_checked(monkeypatch):
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx9")
    with pytest.raises(ValueError, match="NEUROPLASTIC_ISA must be auto or one of"):
        backend()
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx512f")
    monkeypatch.setattr(extension.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    with pytest.raises(ValueError, match="NEUROPLASTIC_ISA=avx512f: this machine .* cannot run"):
        extension.instruction_set()
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx2")
    assert extension.instruction_set() == "avx2"


def test_without_a_choice_the_kernels_run_the_machines_widest_clone(monkeypatch):
    monkeypatch.delenv("NEUROPLASTIC_ISA", raising=False)
    monkeypatch.setattr(extension.platform, "machine", lambda: "x86_64")
    for capabilities, expected in (({"avx512_f": True, "avx2": True}, "avx512f"), ({"avx2": True}, "avx2"),
                                   ({}, "x86-64")):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda c=capabilities: c)
        assert extension.instruction_set() == expected
    monkeypatch.setattr(extension.platform, "machine", lambda: "aarch64")
    assert extension.instruction_set() == "aarch64"


@pytest.mark.skipif(not sys.platform.startswith("linux") or backend() != "cpp", reason="reads /proc/self/maps")
def test_the_kernels_share_pytorchs_openmp_runtime():
    """The kernels' libgomp is PyTorch's (the same soname), not a second OpenMP thread pool spinning
    beside it: a fresh process that loads them maps one runtime. (Other libraries may bring their
    own: scikit-learn's wheel does, under another soname.)"""
    code = ("import json, os, torch; from neuroplastic.fused import backend; assert backend() == 'cpp'; "
            "files = {line.split()[-1] for line in open('/proc/self/maps')}; "
            "print(json.dumps(sorted(f for f in files if 'omp' in os.path.basename(f))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runtimes = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(runtimes) == 1 and "torch" in runtimes[0], runtimes
