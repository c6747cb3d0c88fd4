"""Train, export to NIR, import again: the same network, bit for bit.

NIR (the Neuromorphic Intermediate Representation, Pedersen et al. 2024) is the exchange format of
snnTorch, Norse, SpikingJelly, Lava and several chips. A network trained here for 2 epochs on the
digits task (``fit`` trains the module it is given, in place) is written to a ``.nir`` file, read
back as the library's own layers, and run on the test split: the spikes and readouts are identical,
because what NIR cannot say (the discrete LIF's reset, one step late) travels in the nodes' metadata.
Needs the optional ``nir`` package: ``pip install 'neuroplastic[interop]'``.
"""
import tempfile
from pathlib import Path

import nir
import torch

from neuroplastic.nir import from_nir, to_nir
from neuroplastic.tasks import load_task
from neuroplastic.training.fit import fit
from neuroplastic.training.recipes import build_network, recipe_for

task = load_task("digits", seed=0)
network = build_network(task, recipe_for("digits", hidden=(64,)), seed=0)  # 64 → 64 LIF → 10
with tempfile.TemporaryDirectory() as out:
    summary = fit(task, "bptt", network=network, epochs=2, out=out, progress=False)
    path = Path(out) / "digits.nir"
    nir.write(path, to_nir(network))
    graph = nir.read(path)
    back = from_nir(path)
    size = path.stat().st_size

print(f"trained: test accuracy {summary['test_accuracy']:.3f}; {path.name}: {size / 1024:.0f} KiB")
print("NIR nodes:", ", ".join(f"{name} ({type(node).__name__})" for name, node in sorted(graph.nodes.items())))
with torch.no_grad():
    x = task.test.inputs.transpose(0, 1)  # time first: (T, B, 64)
    ours, theirs = network(x), back(x)
same_spikes = all(torch.equal(a, b) for a, b in zip(ours.spikes, theirs.spikes))
print(f"{x.shape[1]} test samples: identical spikes {same_spikes}, identical readout "
      f"{torch.equal(ours.readout, theirs.readout)}")
assert same_spikes and torch.equal(ours.readout, theirs.readout)
