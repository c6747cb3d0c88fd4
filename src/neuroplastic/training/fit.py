"""Train a task end to end with a method, with checkpoints, resumption, figures and a summary.

``fit`` is what ``neuroplastic train`` and ``neuroplastic run`` call, and the entry point for code of
one's own: the task, the method, the network, the optimizer, the loss and the evaluation may each be
given as an object instead of a name or a default. Everything it writes goes to ``out``:
``checkpoint.pt`` (after every epoch, atomically), ``learning_curve.png``, ``raster.png`` and
``summary.json``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from neuroplastic.devices import parse_device
from neuroplastic.fused import extension
from neuroplastic.progress import progress_bar
from neuroplastic.report.training import plot_learning_curve, plot_raster
from neuroplastic.tasks import Task, load_task
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.training.distributed import DataParallel
from neuroplastic.training.methods import as_method
from neuroplastic.training.objectives import LossFunction, Objective, objective_for
from neuroplastic.training.problem import Problem
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.training.trainer import Trainer, peak_memory_mb
from neuroplastic.validation import require_count

__all__ = ["fit", "fingerprint"]


def fit(task: str | Task, rule="bptt", *, network=None, optimizer=None, loss=None, evaluate: Callable | None = None,
        device=None, recipe: str | None = None, epochs: int | None = None, seed: int = 0,
        out="neuroplastic-out/train", resume: bool = False,
        rule_options: dict | None = None, task_options: dict | None = None, progress: bool = True,
        **recipe_changes) -> dict:
    """Train, evaluate after every epoch, and return the summary (also written to summary.json).

    ``task``: a task's name (built with ``seed`` and ``task_options``) or a :class:`Task`. ``rule``: a
    method's name (with ``rule_options``), a gradient :class:`~neuroplastic.rules.Rule`, or a method
    object (:mod:`~neuroplastic.training.problem`). ``network``: default the task's recipe
    (``recipe_changes`` change it), or a module, or a function of the task that makes one (with a
    ``fingerprint``, the string recorded for it in the checkpoint's config, so a resumed run is refused
    another). ``optimizer``: an optimizer over the network's parameters, or a
    function of them; default AdamW with the recipe's rate and a cosine schedule. ``loss``: an
    :class:`~neuroplastic.training.objectives.Objective` or a function ``(readout, targets) -> loss``;
    default the task's. ``evaluate``: ``(readout, targets) -> dict`` of metrics, the first reported as
    ``test_<name>``; default the objective's. ``device``: where to train (default the CPU). ``recipe``:
    a recipe's name (:mod:`~neuroplastic.training.recipes`), default the task's; its ``task_options``
    apply to a task given by name, under the caller's.
    """
    out = Path(out)
    if device is None and isinstance(network, torch.nn.Module):  # a network of one's own trains where it is
        device = next(itertools.chain(network.parameters(), network.buffers()), torch.empty(0)).device
    device = parse_device(device)
    parallel = DataParallel.from_environment(device)  # under torchrun: this process's shard of each batch
    if parallel is not None:
        device = parallel.device
    given = not isinstance(task, str)
    if recipe is not None and not given:
        task_options = {**dict(recipe_for(task, recipe).task_options), **(task_options or {})}
    task = _task(task, seed, task_options)
    recipe = recipe_for(task.name, recipe, epochs=epochs, **recipe_changes)
    require_count("epochs", recipe.epochs)
    method = as_method(rule, **(rule_options or {}))
    objective = loss if isinstance(loss, Objective) else objective_for(task) if loss is None else LossFunction(loss)
    evaluate = objective.evaluate if evaluate is None else evaluate
    own = {name: getattr(value, "fingerprint", type(value).__name__) for name, value in
           (("network", network), ("optimizer", optimizer), ("loss", loss)) if value is not None}
    if given:  # a Task of one's own: resuming checks its data as well as its name
        own["task_data"] = fingerprint(task)
    config = json.loads(json.dumps({  # as stored: JSON types only
        "task": task.name, "rule": method.name, "rule_options": rule_options or {}, "seed": seed,
        "task_options": task_options or {}, **({"own": own} if own else {}),
        "recipe": {k: v for k, v in dataclasses.asdict(recipe).items() if k != "epochs"}}))
    checkpoint = load_checkpoint(out / "checkpoint.pt") if resume else None
    if checkpoint is not None and checkpoint["config"] != config:
        raise ValueError(f"the checkpoint in {out} was made with {checkpoint['config']}, not {config}")
    torch.manual_seed(seed)
    if network is None:  # a method with a network of its own kind builds it (eqprop: an energy network)
        network = getattr(method, "build_network", build_network)(task, recipe, seed=seed)
    elif not isinstance(network, torch.nn.Module):  # a function of the task (a NIR graph's importer)
        network = network(task)
    network.to(device)
    optimizer, scheduler = _optimizer(optimizer, network, recipe, getattr(method, "momentum", True))
    problem = Problem(network, objective, task.dt, recipe.rate_target_hz, recipe.rate_weight,
                      generator=torch.Generator().manual_seed(seed + 1), parallel=parallel)
    trainer = Trainer(task, network, method.learner(problem), optimizer, evaluate=evaluate,
                      batch_size=recipe.batch_size, device=device, parallel=parallel)
    writes = parallel is None or parallel.writes  # one process writes the files of a data-parallel run
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before training, not after
    history, wall, counted = [], 0.0, {"updates": 0, "synops": 0}  # counts of earlier runs (resume)
    if checkpoint is not None:
        network.load_state_dict(checkpoint["network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:  # the rate of the epoch reached, on this run's schedule (it may be longer)
            scheduler.load_state_dict(checkpoint["scheduler"])
            for group, base, rate in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * rate(scheduler.last_epoch)
        generator.set_state(checkpoint["generator"])
        if checkpoint.get("rng") is not None:  # dropout and whatever else draws from the global generator
            torch.set_rng_state(checkpoint["rng"])
        if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
        learner_state = checkpoint.get("learner")
        if parallel is not None:  # each process its own running state, when there are as many
            learner_state = parallel.own_state(checkpoint.get("learners"), learner_state)
        if learner_state is not None:
            trainer.learner.load_state_dict(learner_state)
        history, wall = checkpoint["history"], checkpoint["wall_time_s"]
        counted = checkpoint.get("counts", counted)
    if parallel is not None:
        parallel.same_start(network)
    if device.type == "cpu":
        extension.prepare()  # a first run's kernel build before the clock starts, not in its first epoch
    batches = -(-len(task.train) // recipe.batch_size)
    bar = progress_bar(batches * (recipe.epochs - len(history)), desc=f"{task.name}/{method.name}", unit="batch",
                       enabled=progress and writes, every=0, leave=False)  # off a terminal: a line an epoch
    metrics = None
    for epoch in range(len(history) + 1, recipe.epochs + 1):
        _anneal(network, (epoch - 1) / max(recipe.epochs - 1, 1))
        if parallel is not None:
            parallel.reseed(seed, epoch)
        start = time.perf_counter()
        train_loss = trainer.train_epoch(generator, bar)
        if scheduler is not None:
            scheduler.step()
        wall += time.perf_counter() - start
        metrics = trainer.evaluate("test")
        history.append({"epoch": epoch, "train_loss": train_loss, _metric(metrics): metrics[_name(metrics)]})
        if task.validation is not None:
            history[-1][f"validation_{_name(metrics)}"] = trainer.evaluate("validation")[_name(metrics)]
        bar.milestone(f"epoch {epoch}/{recipe.epochs}", {k: v for k, v in history[-1].items() if k != "epoch"})
        counts = _counts(counted, trainer)  # every process: a data-parallel count is a reduction
        learner_state = trainer.learner.state_dict() if hasattr(trainer.learner, "state_dict") else None
        learners = None if parallel is None else parallel.gather(learner_state)  # every process's
        if writes:
            save_checkpoint(out / "checkpoint.pt", {
                "config": config, "network": network.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "generator": generator.get_state(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "learner": learner_state, "learners": learners,
                "history": history, "wall_time_s": wall, "counts": counts})
    bar.close()
    if metrics is None:  # nothing left to train after resuming: evaluate the checkpoint's network
        metrics = trainer.evaluate("test")
    metric = _metric(metrics)
    summary = {
        "task": task.name, "rule": method.name, "epochs": recipe.epochs, "seed": seed,
        metric: history[-1][metric], "test_loss": metrics.get("loss"), "wall_time_s": wall,
        "ms_per_sample": 1e3 * wall / max(1, len(history) * len(task.train)),  # training time per sample seen
        "peak_memory_mb": peak_memory_mb(), "spikes_per_sample": metrics["spikes_per_sample"],
        **({"peak_gpu_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20} if device.type == "cuda" else {}),
        "bits_per_sample": metrics["bits_per_sample"], "neurobench": metrics["neurobench"],
        **_counts(counted, trainer),
        "out": str(out),
        "figures": [str(out / "learning_curve.png"), str(out / "raster.png")],
        "history": history,
    }
    if writes:
        plot_learning_curve(history, metric, out / "learning_curve.png")
        _raster(task, network, device, out / "raster.png")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    trainer.close()
    if parallel is not None:
        parallel.finish()
    return summary


def _task(task, seed, options) -> Task:
    if isinstance(task, Task):
        if options:
            raise ValueError("task_options apply to a task given by name")
        return task
    if not isinstance(task, str):
        raise ValueError(f"task must be a task's name or a Task, got {task!r}")
    return load_task(task, seed=seed, **(options or {}))


def fingerprint(task: Task) -> list:
    """The sizes of a task's splits and the sums of their inputs and targets."""
    def total(tensor):
        return float((tensor.coalesce().values() if tensor.is_sparse else tensor).double().sum())
    return [[len(split), total(split.inputs), total(split.targets)] for split in task.splits.values()] + [
        list(task.train.inputs.shape[1:]), task.n_outputs, task.dt, str(task.dtype)]


def _optimizer(optimizer, network, recipe, momentum: bool):
    """The optimizer and its schedule: AdamW with a cosine decay of the rate, recomputed from the epoch
    on resume (event-driven methods without momentum: only what their rule updates moves; a parameter
    with an ``lr_scale`` attribute at that multiple of the rate), or the caller's (an optimizer, or a
    function of the parameters) without one."""
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer, None
    if optimizer is not None:
        if not callable(optimizer):
            raise ValueError(f"optimizer must be a torch optimizer or a function of the parameters, got {optimizer!r}")
        return optimizer(network.parameters()), None
    scales = {}  # parameters that carry an lr_scale (learned delay positions) train at that multiple
    for parameter in network.parameters():
        scales.setdefault(getattr(parameter, "lr_scale", 1.0), []).append(parameter)
    groups = [{"params": params, "lr": recipe.lr * scale} for scale, params in scales.items()]
    adamw = torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9 if momentum else 0.0, 0.999),
                              weight_decay=recipe.weight_decay)
    return adamw, torch.optim.lr_scheduler.LambdaLR(
        adamw, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch, recipe.epochs) / recipe.epochs)))


def _anneal(network, fraction: float) -> None:
    """Tells every module with a schedule (``anneal(fraction)``: the width of learned delays) how far
    training has come; computed from the epoch, so a resumed run continues the schedule."""
    for module in network.modules():
        if callable(getattr(module, "anneal", None)):
            module.anneal(fraction)


def _name(metrics: dict) -> str:
    """The metric a run reports: the first of the evaluation's."""
    return next(iter(metrics))


def _metric(metrics: dict) -> str:
    return f"test_{_name(metrics)}"


def _counts(earlier: dict, trainer) -> dict:
    """Weight updates applied and synaptic operations of training, this run and the earlier ones."""
    return {"updates": earlier["updates"] + trainer.updates_applied, "synops": earlier["synops"] + trainer.synops}


@torch.no_grad()
def _raster(task, network, device, path):
    network.eval()
    inputs, target = next(task.batches("test", 1, shuffle=False))
    output = network(inputs.to(device))
    label = f"target {target.item()}" if target.numel() == 1 else "regression target"
    return plot_raster(inputs[:, 0], [z[:, 0].cpu() for z in output.spikes], output.readout[:, 0].cpu(), task.dt,
                       path, title=f"{task.name}: one test sample ({label})")
