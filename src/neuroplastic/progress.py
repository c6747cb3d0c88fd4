"""Progress of long work, on stderr: a tqdm bar on a terminal, plain lines anywhere else.

A bar needs a terminal: where stderr is a file or a pipe (a log, a CI job, ``neuroplastic run 2>&1 |
tee log``) tqdm would stay silent, or fill the log with carriage returns. There :func:`progress_bar`
prints instead one plain line, flushed, per unit of work that matters: an epoch of ``fit`` (from
:meth:`Lines.milestone`), a generation of ``evolve``, a tenth of a long simulation. Every object it
returns has tqdm's ``update``, ``set_postfix``, ``set_postfix_str``, ``reset``, ``close`` (and ``with``)
plus ``milestone(label, fields)``: one line on a terminal (above the bar) and elsewhere alike.
"""
from __future__ import annotations

import math
import sys
import time

from tqdm import tqdm

__all__ = ["Lines", "Silent", "progress_bar"]


def progress_bar(total=None, *, desc: str = "", unit: str = "it", enabled: bool = True, initial=0,
                 every=None, file=None, **options):
    """A progress display on ``file`` (stderr): a tqdm bar (``options`` are tqdm's, e.g. ``leave``)
    where it is a terminal, :class:`Lines` where it is not, :class:`Silent` where not ``enabled``.

    ``every``: off a terminal, a line each time another ``every`` units are done; ``None``: each tenth of
    ``total`` (each unit where the total is unknown); ``0``: no lines but those of ``milestone``."""
    file = sys.stderr if file is None else file
    if not enabled:
        return Silent(total, initial)
    if _is_terminal(file):
        return Bar(total=total, desc=desc, unit=unit, initial=initial, file=file, **options)
    return Lines(total, desc=desc, unit=unit, initial=initial, every=every, file=file)


def _is_terminal(file) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fields(fields: dict, sep: str) -> str:
    return ", ".join(f"{name}{sep}{_number(value)}" for name, value in fields.items())


def _milestone(desc: str, label: str, fields: dict, elapsed: float) -> str:
    named = ", ".join(f"{name.replace('_', ' ')} {_number(value)}" for name, value in fields.items())
    return f"{desc + ': ' if desc else ''}{label}{', ' + named if named else ''} ({elapsed:.1f} s)"


class Bar(tqdm):
    """tqdm's bar, with :meth:`milestone` printed above it."""

    def milestone(self, label: str, fields: dict | None = None, **more) -> None:
        elapsed = self.format_dict["elapsed"]
        self.write(_milestone(self.desc.rstrip(": "), label, {**(fields or {}), **more}, elapsed), file=self.fp)


class Lines:
    """A bar's stand-in off a terminal: one plain line per ``every`` units done, and per milestone."""

    def __init__(self, total=None, *, desc: str = "", unit: str = "it", initial=0, every=None, file=None):
        self.desc, self.unit, self.every, self.file = desc, unit, every, file
        self.postfix = ""
        self.reset(total, initial)

    def reset(self, total=None, initial=0) -> None:
        self.total, self.n, self._shown = total, initial, initial
        self._start = time.perf_counter()

    @property
    def step(self):
        """Units between two lines (0: none)."""
        if self.every is not None:
            return self.every
        return max(1, math.ceil(self.total / 10)) if self.total else 1

    def update(self, n=1) -> None:
        if not n:
            return
        self.n += n
        step = self.step
        if not step:
            return
        done = self.total is not None and self.n >= self.total > self._shown
        if self.n // step > self._shown // step or done:
            self._shown = self.n
            of = f"/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%, " if self.total else f" {self.unit} ("
            self.write(f"{self.desc + ': ' if self.desc else ''}{self.n}{of}{self.elapsed:.1f} s)"
                       + (f", {self.postfix}" if self.postfix else ""))

    def set_postfix(self, ordered_dict=None, refresh=True, **fields) -> None:
        self.postfix = _fields({**(ordered_dict or {}), **fields}, "=")

    def set_postfix_str(self, s="", refresh=True) -> None:
        self.postfix = str(s)

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or ""

    def milestone(self, label: str, fields: dict | None = None, **more) -> None:
        self.write(_milestone(self.desc, label, {**(fields or {}), **more}, self.elapsed))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def write(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Silent(Lines):
    """No progress at all (``--quiet``), with the same methods."""

    def __init__(self, total=None, initial=0):
        super().__init__(total, initial=initial, every=0)

    def write(self, text: str) -> None:
        pass
