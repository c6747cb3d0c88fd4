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
from neuroplastic.fused.extension import instruction_set
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import ALIF
from neuroplastic.spikes import FastSigmoid
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)  # the recurrent backward's dense product, not a timed choice
results = {"instruction_set": instruction_set()}
for dtype in (torch.float32, torch.float64):
    generator = torch.Generator().manual_seed(0)
    lif = ALIF(beta=0.0, t_ref=0.0, v_th=1.0, surrogate=FastSigmoid(10.0))
    alif = ALIF(beta=0.2, t_ref=2.0, v_th=1.0, surrogate=FastSigmoid(10.0))
    network = SpikingNetwork([SpikingLayer(40, 300, lif, scale=3.0, generator=generator),
                              SpikingLayer(300, 100, alif, recurrent=True, scale=3.0, generator=generator)],
                             LeakyReadout(100, 5, generator=generator)).to(dtype)
    # graded spikes (payloads) into the first layer; 25 × 16 rows: more than one block of the gradient's
    x = (torch.rand(25, 16, 40, generator=generator) < 0.2) * torch.rand(25, 16, 40, generator=generator)
    out = network(x.to(dtype))
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


def _widest():
    capabilities = torch.cpu.get_capabilities()
    return "avx512f" if capabilities.get("avx512_f") else "avx2" if capabilities.get("avx2") else "x86-64"


@pytest.mark.skipif(not X86 or backend() != "cpp", reason="instruction sets are chosen among x86-64 clones")
def test_every_instruction_set_gives_the_same_bits(tmp_path):
    reference = _run_pass("auto", tmp_path / "auto.pt")
    assert reference.pop("instruction_set") == _widest()
    others = [isa for isa, flag in (("avx2", "avx2"), ("x86-64", None))
              if flag is None or torch.cpu.get_capabilities().get(flag)]
    for isa in others:
        results = _run_pass(isa, tmp_path / f"{isa}.pt")
        assert results.pop("instruction_set") == isa  # the kernels were built for it
        for dtype, values in reference.items():
            for name, value in values.items():
                got = results[dtype][name]
                same = all(map(torch.equal, got, value)) if isinstance(value, list) else torch.equal(got, value)
                assert same, f"{isa}, {dtype}: {name} differs from the loader's own clone"
    assert all(s.sum() > 0 for s in reference["torch.float32"]["spikes"])  # both layers fired


def test_the_instruction_set_is_checked(monkeypatch):
    monkeypatch.delenv("NEUROPLASTIC_FUSED", raising=False)
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx9")
    with pytest.raises(ValueError, match="NEUROPLASTIC_ISA must be auto or one of"):
        backend()
    monkeypatch.setattr(extension.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    extension._flags_of.cache_clear()
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx512f")
    with pytest.raises(ValueError, match="NEUROPLASTIC_ISA=avx512f: this machine .* cannot run"):
        extension._isa_flags()
    monkeypatch.setenv("NEUROPLASTIC_ISA", "avx2")
    assert extension._isa_flags() == ("-DNP_ISA=256",)
    extension._flags_of.cache_clear()


@pytest.mark.skipif(not X86 or backend() != "cpp", reason="clones are chosen on x86-64")
def test_the_loaded_kernels_run_the_machines_widest_instruction_set(monkeypatch):
    chosen = os.environ.get("NEUROPLASTIC_ISA", "auto")
    assert extension.instruction_set() == (_widest() if chosen == "auto" else chosen)
    monkeypatch.setenv("NEUROPLASTIC_FUSED", "torch")
    assert extension.instruction_set() == "none"


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
