"""Search a cell within a wall-time budget, then retrain it: what ``neuroplastic search`` calls.

``search`` loads the task, moves ``validation_fraction`` of its training samples to a validation
split (what DARTS' architecture weights and random search's scores see; never the test split), and
advances the chosen searcher (:data:`SEARCHES`) one unit at a time — a DARTS step, a cell scored at
initialization, a cell trained briefly — while ``budget_s`` seconds of wall time allow: it stops
before a unit that, at the mean duration so far, would overrun the budget (the first unit always
runs). The cell it picks is retrained from fresh weights by :func:`~neuroplastic.training.fit`, the
trainer of ``neuroplastic train`` (BPTT, the task's recipe, its epochs), so every method's pick is
scored the same way, on the test split. Classification tasks only: cells are scored by accuracy.

Everything it writes goes to ``out``: ``checkpoint.pt`` (the searcher's state, atomically, at least
every ``checkpoint_every_s`` seconds and at the end of the search), ``retrain/`` (fit's checkpoint,
curve and summary), ``cell.png`` and ``summary.json``. ``resume`` continues both phases; a search
resumed with a larger budget or more ``iterations`` goes on where it stopped.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import time
from pathlib import Path

from neuroplastic.devices import parse_device
from neuroplastic.outer.search.darts import Darts
from neuroplastic.outer.search.random import RandomSearch, build_cell
from neuroplastic.outer.search.snasnet import SnasnetSearch
from neuroplastic.outer.search.space import Cell, SearchSpace
from neuroplastic.progress import progress_bar
from neuroplastic.report.search import plot_cell
from neuroplastic.tasks import TASKS, Task, load_task
from neuroplastic.training.checkpoint import load_checkpoint, save_checkpoint
from neuroplastic.training.fit import fingerprint, fit
from neuroplastic.training.recipes import recipe_for
from neuroplastic.validation import lookup, require_count, require_positive

__all__ = ["search", "SEARCHES", "CellBuilder"]

SEARCHES = {"darts": Darts, "snasnet": SnasnetSearch, "random": RandomSearch}


@dataclasses.dataclass(frozen=True)
class CellBuilder:
    """``fit``'s network: the cell with fresh weights drawn from ``seed``, for the task it is given."""

    cell: Cell
    seed: int

    @property
    def fingerprint(self) -> str:
        return json.dumps(self.cell.to_json())

    def __call__(self, task: Task):
        return build_cell(task, self.cell, recipe_for(task.name), self.seed)


def search(task: str | Task = "randman", method: str = "darts", budget_s: float = 60.0, *, seed: int = 0,
           space: SearchSpace | None = None, iterations: int | None = None, retrain_epochs: int | None = None,
           validation_fraction: float = 0.1, task_options: dict | None = None, method_options: dict | None = None,
           device=None, out="neuroplastic-out/search", resume: bool = False, progress: bool = True,
           checkpoint_every_s: float = 30.0) -> dict:
    """Search, retrain the pick and return the summary (also written to summary.json). ``task``: a
    task's name (built with ``seed`` and ``task_options``) or a :class:`~neuroplastic.tasks.Task`;
    ``method``: a key of :data:`SEARCHES`, with ``method_options`` for its constructor (DARTS:
    ``second_order``, ``xi``, ``arch_lr``; random: ``batches``; snasnet: ``batch_size``);
    ``iterations``: an upper bound on the units (default: the budget alone decides)."""
    searcher_class = lookup("search method", method, SEARCHES)
    budget_s = require_positive("budget_s", budget_s)
    require_count("seed", seed, minimum=0)
    if iterations is not None:
        require_count("iterations", iterations)
    if retrain_epochs is not None:
        require_count("retrain_epochs", retrain_epochs)
    space = SearchSpace() if space is None else space
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a SearchSpace, got {space!r}")
    options = dict(method_options or {})
    accepted = set(inspect.signature(searcher_class).parameters) - {"task", "space", "recipe", "seed", "device"}
    if set(options) - accepted:
        raise ValueError(f"search method {method!r} has no option {', '.join(sorted(set(options) - accepted))}; "
                         f"options: {', '.join(sorted(accepted))}")
    device = parse_device(device)
    own = {}
    if isinstance(task, str):
        lookup("task", task, TASKS)
        task = load_task(task, seed=seed, **(task_options or {}))
    elif not isinstance(task, Task) or task_options:
        raise ValueError("task must be a task's name (with task_options) or a Task")
    else:  # a Task of one's own: resuming checks its data as well as its name
        own = {"task_data": fingerprint(task)}
    if task.kind != "classification":
        raise ValueError(f"the searches score cells by accuracy: a classification task, not {task.name} ({task.kind})")
    task = task.with_validation(validation_fraction, seed=seed)
    recipe = recipe_for(task.name)
    out = Path(out)
    config = json.loads(json.dumps({"task": task.name, "task_options": task_options or {}, "method": method,
                                    "method_options": options, "seed": seed, "space": dataclasses.asdict(space),
                                    "validation_fraction": validation_fraction, **own}))
    checkpoint = load_checkpoint(out / "checkpoint.pt") if resume else None
    if checkpoint is not None and checkpoint["config"] != config:
        raise ValueError(f"the checkpoint in {out} was made with {checkpoint['config']}, not {config}")
    searcher = searcher_class(task, space, recipe, seed=seed, device=device, **options)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable folder before searching, not after
    history, elapsed = [], 0.0
    if checkpoint is not None:
        searcher.load_state_dict(checkpoint["searcher"])
        history, elapsed = checkpoint["history"], checkpoint["wall_time_s"]

    def finished() -> bool:
        if iterations is not None and len(history) >= iterations:
            return True
        return bool(history) and elapsed + elapsed / len(history) > budget_s

    bar = progress_bar(round(budget_s), initial=min(round(elapsed), round(budget_s)), unit="s",
                       desc=f"{task.name}/{method} search", enabled=progress, leave=False)  # else a line a tenth
    saved = time.perf_counter()
    while not finished():
        start = time.perf_counter()
        history.append({"unit": len(history) + 1, **searcher.advance()})
        elapsed += time.perf_counter() - start
        history[-1]["elapsed_s"] = elapsed
        scores = {key: value for key, value in history[-1].items() if isinstance(value, float) and key != "elapsed_s"}
        bar.set_postfix(units=len(history), **scores)
        bar.update(min(round(elapsed), round(budget_s)) - bar.n)
        if finished() or time.perf_counter() - saved >= checkpoint_every_s:
            save_checkpoint(out / "checkpoint.pt", {"config": config, "searcher": searcher.state_dict(),
                                                    "history": history, "wall_time_s": elapsed})
            saved = time.perf_counter()
    bar.close()
    cell = searcher.pick()
    retrain = out / "retrain"
    same_pick = checkpoint is not None and checkpoint.get("pick") == cell.to_json()
    save_checkpoint(out / "checkpoint.pt", {"config": config, "searcher": searcher.state_dict(), "history": history,
                                            "wall_time_s": elapsed, "pick": cell.to_json()})
    fitted = fit(task, "bptt", network=CellBuilder(cell, seed), epochs=retrain_epochs, seed=seed, device=device,
                 out=retrain, resume=same_pick and (retrain / "checkpoint.pt").is_file(), progress=progress)
    details = searcher.details()
    summary = {
        "task": task.name, "method": method, "seed": seed, "budget_s": budget_s, "search_wall_s": elapsed,
        "units": len(history), "cell": str(cell), "test_accuracy": fitted["test_accuracy"],
        "validation_accuracy": fitted["history"][-1]["validation_accuracy"],
        "retrain_epochs": fitted["epochs"], "retrain_wall_s": fitted["wall_time_s"], "out": str(out),
        "cell_graph": cell.to_json(), "details": details,
        "figures": [str(plot_cell(cell.to_json(), out / "cell.png", mixing=details.get("mixing"),
                                  title=f"{task.name}: the cell {method} found (seed {seed}; dashed: backward edges)")),
                    *fitted["figures"][:1]],
        "history": history,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
