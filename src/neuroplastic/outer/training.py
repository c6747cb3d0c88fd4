"""Meta-train on a meta-dataset's episodes, with checkpoints, resumption, a figure and a summary:
what ``neuroplastic meta`` calls.

``meta_fit`` builds the network of the ``double-digits`` recipe (:mod:`~neuroplastic.training.recipes`)
with ``ways`` outputs, meta-learns it (:class:`~neuroplastic.outer.MetaLearner`) with Adam on
``meta_batch`` training episodes per iteration, reports the accuracy on a fixed set of meta-validation
episodes every ``validate_every`` iterations (and checkpoints then, atomically), and at the end
scores the meta-test episodes against the baseline the issue names: the same network freshly
initialized and trained on each support set by the same inner loop, the same number of steps at the
same rate (``inner_lr``; with ``learn_rates`` the meta-learned network adapts at its learned rates).
Accuracies are means over episodes with a 95% interval ``1.96 · sd / √episodes``.
Everything it writes goes to ``out``: ``checkpoint.pt``, ``meta_curve.png``, ``summary.json``.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import torch

from neuroplastic.devices import parse_device
from neuroplastic.outer.inner import make_inner
from neuroplastic.outer.maml import MetaLearner
from neuroplastic.progress import progress_bar
from neuroplastic.report.meta import plot_meta_curve
from neuroplastic.tasks import load_meta_dataset
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.training.recipes import build_network, recipe_for
from neuroplastic.validation import require_count, require_positive

__all__ = ["meta_fit", "meta_network", "interval"]


class NetworkShape(NamedTuple):
    """What :func:`~neuroplastic.training.recipes.build_network` reads of a task."""

    n_inputs: int
    n_outputs: int
    dt: float
    dtype: torch.dtype


def interval(accuracies: torch.Tensor) -> tuple[float, float]:
    """The mean of per-episode accuracies and the half-width of its 95% interval."""
    values = accuracies.double()
    return float(values.mean()), 1.96 * float(values.std()) / math.sqrt(values.numel())


def meta_fit(dataset: str = "double-digits", *, ways: int = 5, shots: int = 1, queries: int = 15,
             inner: str = "bptt", inner_steps: int = 5, inner_lr: float = 0.1, first_order: bool = False,
             learn_rates: bool = False, meta_batch: int = 8, iterations: int = 500, meta_lr: float = 3e-3,
             validate_every: int = 50, validation_episodes: int = 100, test_episodes: int = 600,
             seed: int = 0, device=None, out="neuroplastic-out/meta", resume: bool = False, progress: bool = True,
             dataset_options: dict | None = None) -> dict:
    """Meta-train and return the summary (also written to summary.json). ``inner``: ``bptt``,
    ``eprop`` or ``decolle`` (:func:`~neuroplastic.outer.make_inner`); ``dataset_options`` change the
    recipe's (10 steps of 1 ms)."""
    require_count("ways", ways, minimum=2)
    for name, value in (("shots", shots), ("queries", queries), ("meta_batch", meta_batch),
                        ("iterations", iterations), ("validate_every", validate_every),
                        ("validation_episodes", validation_episodes), ("test_episodes", test_episodes)):
        require_count(name, value)
    require_positive("meta_lr", meta_lr)
    if test_episodes < 2 or validation_episodes < 2:
        raise ValueError("an interval over episodes needs at least 2 test and validation episodes")
    device = parse_device(device)
    out = Path(out)
    data = load_meta_dataset(dataset, seed=seed, **{**dict(recipe_for(dataset).task_options), **(dataset_options or {})})
    for split in ("train", "validation", "test"):  # ways, shots and queries fit every split
        data.episode_index(split, ways=ways, shots=shots, queries=queries, count=1, generator=torch.Generator())
    config = json.loads(json.dumps({
        "dataset": dataset, "dataset_options": dataset_options or {}, "ways": ways, "shots": shots,
        "queries": queries, "inner": inner, "inner_steps": inner_steps, "inner_lr": inner_lr,
        "first_order": first_order, "learn_rates": learn_rates, "meta_batch": meta_batch, "meta_lr": meta_lr,
        "validate_every": validate_every, "validation_episodes": validation_episodes, "seed": seed}))
    checkpoint = load_checkpoint(out / "checkpoint.pt") if resume else None
    if checkpoint is not None and checkpoint["config"] != config:
        raise ValueError(f"the checkpoint in {out} was made with {checkpoint['config']}, not {config}")
    meta = _learner(data, ways, inner, inner_steps, inner_lr, first_order, learn_rates, seed, device)
    optimizer = torch.optim.Adam(meta.parameters(), lr=meta_lr)
    generator = torch.Generator().manual_seed(seed)
    validation = _episodes(data, "validation", ways, shots, queries, validation_episodes, seed + 1, device)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before training, not after
    history, wall, done, losses, accuracies = [], 0.0, 0, [], []
    if checkpoint is not None:
        history, wall, done = checkpoint["history"], checkpoint["wall_time_s"], checkpoint["iteration"]
        if done > iterations:
            raise ValueError(f"the checkpoint in {out} holds {done} meta-iterations, more than the {iterations} asked for")
        meta.load_state_dict(checkpoint["meta"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        generator.set_state(checkpoint["generator"])
        if history and history[-1]["iteration"] % validate_every:  # the last run's end, off the grid: go on
            history.pop()
            losses, accuracies = ([torch.tensor(v, device=device) for v in values] for values in checkpoint["pending"])
    bar = progress_bar(iterations, initial=done, desc=f"{dataset}/{inner}", unit="it", enabled=progress,
                       every=0, leave=False)  # a line per block of validate_every iterations, from milestone
    start = time.perf_counter()
    for iteration in range(done + 1, iterations + 1):
        episodes = _episodes(data, "train", ways, shots, queries, meta_batch, generator, device)
        loss, accuracy = meta(episodes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        accuracies.append(accuracy.mean())
        bar.update(1)
        if iteration % validate_every == 0 or iteration == iterations:
            wall += time.perf_counter() - start
            train_loss = float(torch.stack(losses).mean())
            if not math.isfinite(train_loss):
                raise ValueError(f"meta-training diverged by iteration {iteration} (mean query loss {train_loss}): "
                                 f"lower the inner or meta rate; the last checkpoint in {out} is kept")
            history.append({"iteration": iteration, "train_loss": train_loss,
                            "train_accuracy": float(torch.stack(accuracies).mean()),
                            "validation_accuracy": interval(meta.evaluate(validation))[0]})
            bar.set_postfix(validation=f"{history[-1]['validation_accuracy']:.3f}")
            bar.milestone(f"iteration {iteration}/{iterations}",
                          {key: value for key, value in history[-1].items() if key != "iteration"})
            on_grid = iteration % validate_every == 0  # else a resumed run folds these into its next entry
            save_checkpoint(out / "checkpoint.pt", {
                "config": config, "meta": meta.state_dict(), "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(), "history": history, "wall_time_s": wall,
                "iteration": iteration, "pending": [[] if on_grid else [float(v) for v in values]
                                                    for values in (losses, accuracies)]})
            start = time.perf_counter()
            if on_grid:
                losses, accuracies = [], []
    bar.close()
    test = _episodes(data, "test", ways, shots, queries, test_episodes, seed + 2, device)
    accuracy, ci = interval(meta.evaluate(test))
    scratch = _learner(data, ways, inner, inner_steps, inner_lr, True, False, seed + 1, device)
    scratch_accuracy, scratch_ci = interval(scratch.evaluate(test))  # first order: the same updates, cheaper
    summary = {
        **{k: config[k] for k in ("dataset", "ways", "shots", "inner", "inner_steps", "first_order", "learn_rates",
                                  "seed")},
        "iterations": iterations, "test_accuracy": accuracy, "test_accuracy_ci95": ci,
        "scratch_accuracy": scratch_accuracy, "scratch_accuracy_ci95": scratch_ci, "test_episodes": test_episodes,
        "wall_time_s": wall, "out": str(out), "history": history,
    }
    summary["figures"] = [str(plot_meta_curve(summary, out / "meta_curve.png"))]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def meta_network(data, ways: int, *, seed: int = 0):
    """The network of ``data``'s recipe (``double-digits``: 128 discrete LIF) with ``ways`` outputs."""
    torch.manual_seed(seed)
    return build_network(NetworkShape(data.n_inputs, ways, data.dt, torch.float32), recipe_for(data.name), seed=seed)


def _learner(data, ways, inner, steps, inner_lr, first_order, learn_rates, seed, device) -> MetaLearner:
    network = meta_network(data, ways, seed=seed).to(device)  # where an online rule's feedback is drawn
    return MetaLearner(network, make_inner(inner, steps, first_order), inner_lr=inner_lr, learn_rates=learn_rates,
                       generator=torch.Generator().manual_seed(seed + 3))


def _episodes(data, split, ways, shots, queries, count, generator, device):
    """``count`` episodes of ``split`` (``generator``: a generator, or a seed for a fixed set) on ``device``."""
    if not isinstance(generator, torch.Generator):
        generator = torch.Generator().manual_seed(generator)
    episodes = data.episodes(split, ways=ways, shots=shots, queries=queries, count=count, generator=generator)
    return type(episodes)(*(part.to(device) for part in episodes))

