"""``neuroplastic export --checkpoint run/checkpoint.pt --nir model.nir``: a trained network as a NIR
graph (:mod:`neuroplastic.nir`), for other simulators and chips.

The network is rebuilt as ``fit`` built it (the task and recipe in the checkpoint's ``config``; for a
run on data of one's own, from its file, ``--data``; for a run started from a NIR graph, from that
graph, ``--init``), its weights loaded, and the graph written to a temporary file renamed into place:
on any error nothing is written.

NIR cannot say everything a network here does: the discrete LIF's reset by subtraction one step late,
a reset by subtraction, an integrator other than the model's own travel in metadata only this library
reads. ``export`` names such layers: other simulators will run them with NIR's plain reset and their
own time step, so only neuroplastic reproduces them exactly.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from neuroplastic.cli.common import UsageError, emit
from neuroplastic.nir import from_nir, require_nir, to_nir
from neuroplastic.tasks import Task, load_task
from neuroplastic.training.checkpoint import load_checkpoint
from neuroplastic.training.fit import fingerprint
from neuroplastic.training.methods import as_method
from neuroplastic.training.recipes import Recipe, build_network


def main(args):
    _require_nir()
    import nir

    path = Path(args.nir)
    if path.is_dir() or not path.parent.is_dir():
        raise UsageError(f"--nir {path}: " + ("is a folder" if path.is_dir() else f"no folder {path.parent}"))
    checkpoint = load_checkpoint(args.checkpoint)
    network = network_of(checkpoint, data=args.data, init=args.init)
    graph = to_nir(network)
    temporary = path.with_name(path.name + ".partial")
    try:
        nir.write(temporary, graph)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sizes = [network.layers[0].synapses.n_in, *(layer.size for layer in network.layers), network.readout.size]
    private = sorted(name for name, node in graph.nodes.items()
                     if any(key.startswith("neuroplastic_") for key in (getattr(node, "metadata", None) or {})))
    note = (f"only neuroplastic reproduces {', '.join(private)} exactly: their reset, discrete map or "
            "integrator travels in metadata other simulators ignore") if private else None
    emit({"checkpoint": str(args.checkpoint), "nir": str(path), "sizes": [int(n) for n in sizes],
          "nodes": sorted(graph.nodes), "note": note}, args.json,
         [f"wrote {path}: a NIR graph of {len(graph.nodes)} nodes, layer sizes {' → '.join(map(str, sizes))}",
          *([f"note: {note}"] if note else [])])


def network_of(checkpoint: dict, *, data=None, init=None):
    """The network of a ``fit`` checkpoint, with its weights: rebuilt from its task and recipe, the task
    read from ``data`` for a run on data of one's own, the network from the NIR graph ``init`` for a
    run that started from one."""
    config = checkpoint.get("config") or {}
    own = config.get("own", {})
    if "network" in own and init is None:
        raise UsageError("the run started from a network of its own: give the NIR graph it started from "
                         "(--init), or export it in Python with neuroplastic.nir.to_nir(network)")
    if init is not None and own.get("network") != GraphInit(init).fingerprint:
        raise UsageError(f"--init {init} is not the NIR graph the run started from")
    if "task_data" in own and data is None:
        raise UsageError("the run trained on data of its own: give its file (--data)")
    try:
        recipe = dict(config["recipe"])
        recipe["hidden"] = tuple(recipe["hidden"])
        recipe["task_options"] = tuple(tuple(pair) for pair in recipe["task_options"])
        task = (Task.from_file(data, name=config["task"]) if data is not None
                else load_task(config["task"], seed=config["seed"], **config["task_options"]))
        method = as_method(config["rule"], **config["rule_options"])
    except (KeyError, TypeError) as error:
        raise UsageError(f"the checkpoint's config lacks what rebuilds its network ({error})") from None
    if data is not None and own.get("task_data") != fingerprint(task):
        raise UsageError(f"--data {data} is not the data the run trained on")
    if init is not None:
        network = initial_network(init, task)
    else:
        network = getattr(method, "build_network", build_network)(task, Recipe(**recipe), seed=config["seed"])
    try:
        network.load_state_dict(checkpoint["network"])
    except (KeyError, RuntimeError) as error:
        raise UsageError(f"the checkpoint's weights do not fit its network ({type(error).__name__})") from None
    return network.eval()


@dataclass(frozen=True)
class GraphInit:
    """``train --init``: ``fit``'s network as a function of the task, read from the NIR graph at
    ``path``; its ``fingerprint`` (the file's SHA-256) goes into the run's config, so that a resumed run
    or an export is refused another graph."""

    path: str

    def __call__(self, task: Task):
        return initial_network(self.path, task)

    @property
    def fingerprint(self) -> str:
        return "nir:" + hashlib.sha256(Path(self.path).read_bytes()).hexdigest()


def initial_network(path, task: Task):
    """The network of the NIR graph at ``path`` for ``task`` (``train --init``, as ``fit``'s network: a
    function of the task it loads): stepping by the task's ``dt``, its sizes checked against the task's."""
    _require_nir()
    network = from_nir(path, dt=task.dt)
    sizes = (network.layers[0].synapses.n_in, network.readout.size)
    if sizes != (task.n_inputs, task.n_outputs):
        raise UsageError(f"--init {path} takes {sizes[0]} inputs and gives {sizes[1]} outputs; task {task.name} has "
                         f"{task.n_inputs} inputs and {task.n_outputs} outputs")
    return network.to(task.dtype)


def _require_nir():
    try:
        require_nir()
    except ImportError as error:
        raise UsageError(str(error)) from None
