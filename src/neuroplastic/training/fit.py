"""Train a task end to end with a rule, with checkpoints, resumption, figures and a summary.

``fit`` is what ``neuroplastic train`` and ``neuroplastic run`` call. Everything it writes goes to
``out``: ``checkpoint.pt`` (after every epoch, atomically), ``learning_curve.png``, ``raster.png``
and ``summary.json``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from neuroplastic.report.training import plot_learning_curve, plot_raster
from neuroplastic.tasks import load_task
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.training.methods import is_online, make_method
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.training.trainer import OnlineTrainer, Trainer, peak_memory_mb
from neuroplastic.validation import require_count

__all__ = ["fit"]


def fit(task_name: str, rule_name: str = "bptt", *, epochs: int | None = None, seed: int = 0,
        out="neuroplastic-out/train", resume: bool = False, rule_options: dict | None = None,
        task_options: dict | None = None, progress: bool = True, **recipe_changes) -> dict:
    """Train, evaluate after every epoch, and return the summary (also written to summary.json)."""
    out = Path(out)
    recipe = recipe_for(task_name, epochs=epochs, **recipe_changes)
    require_count("epochs", recipe.epochs)
    rule = make_method(rule_name, **(rule_options or {}))
    config = json.loads(json.dumps({  # as stored: JSON types only
        "task": task_name, "rule": rule_name, "rule_options": rule_options or {}, "seed": seed,
        "task_options": task_options or {},
        "recipe": {k: v for k, v in dataclasses.asdict(recipe).items() if k != "epochs"}}))
    checkpoint = load_checkpoint(out / "checkpoint.pt") if resume else None
    if checkpoint is not None and checkpoint["config"] != config:
        raise ValueError(f"the checkpoint in {out} was made with {checkpoint['config']}, not {config}")
    task = load_task(task_name, seed=seed, **(task_options or {}))
    torch.manual_seed(seed)
    network = build_network(task, recipe, seed=seed)
    # event-driven methods (DECOLLE, error-triggered) without momentum: only what their rule updates moves
    betas = (0.9 if getattr(rule, "momentum", True) else 0.0, 0.999)
    optimizer = torch.optim.AdamW(network.parameters(), lr=recipe.lr, betas=betas, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(  # cosine decay, recomputed from the epoch on resume
        optimizer, lambda epoch: 0.5 * (1.0 + math.cos(math.pi * min(epoch, recipe.epochs) / recipe.epochs)))
    if is_online(rule_name):
        trainer = OnlineTrainer(task, network, rule, optimizer, batch_size=recipe.batch_size,
                                rate_target_hz=recipe.rate_target_hz, rate_weight=recipe.rate_weight,
                                generator=torch.Generator().manual_seed(seed + 1))
    else:
        trainer = Trainer(task, network, rule, optimizer, batch_size=recipe.batch_size,
                          rate_target_hz=recipe.rate_target_hz, rate_weight=recipe.rate_weight)
    generator = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before training, not after
    history, wall, counted = [], 0.0, {"updates": 0, "synops": 0}  # counts of earlier runs (resume)
    if checkpoint is not None:
        network.load_state_dict(checkpoint["network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        generator.set_state(checkpoint["generator"])
        history, wall = checkpoint["history"], checkpoint["wall_time_s"]
        counted = checkpoint.get("counts", counted)
    metric = "test_accuracy" if task.kind == "classification" else "test_nmse"
    batches = -(-len(task.train) // recipe.batch_size)
    bar = tqdm(total=batches * (recipe.epochs - len(history)), desc=f"{task_name}/{rule_name}",
               unit="batch", disable=None if progress else True, leave=False)
    metrics = None
    for epoch in range(len(history) + 1, recipe.epochs + 1):
        start = time.perf_counter()
        train_loss = trainer.train_epoch(generator, bar)
        scheduler.step()
        wall += time.perf_counter() - start
        metrics = trainer.evaluate("test")
        history.append({"epoch": epoch, "train_loss": train_loss,
                        metric: metrics["accuracy" if task.kind == "classification" else "nmse"]})
        save_checkpoint(out / "checkpoint.pt", {
            "config": config, "network": network.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
            "history": history, "wall_time_s": wall, "counts": _counts(counted, trainer)})
    bar.close()
    if metrics is None:  # nothing left to train after resuming: evaluate the checkpoint's network
        metrics = trainer.evaluate("test")
    summary = {
        "task": task_name, "rule": rule_name, "epochs": recipe.epochs, "seed": seed,
        metric: history[-1][metric], "test_loss": metrics["loss"], "wall_time_s": wall,
        "peak_memory_mb": peak_memory_mb(), "spikes_per_sample": metrics["spikes_per_sample"],
        **_counts(counted, trainer),
        "out": str(out),
        "figures": [str(plot_learning_curve(history, metric, out / "learning_curve.png")),
                    str(_raster(task, network, out / "raster.png"))],
        "history": history,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _counts(earlier: dict, trainer) -> dict:
    """Weight updates applied and synaptic operations of training, this run and the earlier ones."""
    return {"updates": earlier["updates"] + trainer.updates_applied, "synops": earlier["synops"] + trainer.synops}


@torch.no_grad()
def _raster(task, network, path):
    inputs, target = next(task.batches("test", 1, shuffle=False))
    output = network(inputs)
    label = f"target {target.item()}" if task.kind == "classification" else "regression target"
    return plot_raster(inputs[:, 0], [z[:, 0] for z in output.spikes], output.readout[:, 0], task.dt, path,
                       title=f"{task.name}: one test sample ({label})")
