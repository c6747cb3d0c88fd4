"""Small rules that build bigger ones (after optax's ``chain`` and ``multi_transform``).

``chain(source, *transforms)`` runs ``source`` and passes its updates through each transform as the
signal ``updates``; a transform maps updates to updates (``None`` — nothing to apply — passes
through). For example, reward-modulated plasticity clipped to its bounds and applied every 10 steps::

    chain(every(10, stdp), scale(1e-3), bound(0.0, 1.0))

``partition`` gives each parameter group its own rule (a rule per layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from neuroplastic.rules.base import Rule
from neuroplastic.validation import require_count, require_finite, require_non_negative, require_positive

__all__ = ["Transform", "chain", "partition", "scale", "clip", "bound", "every", "gate"]


class Transform(Rule):
    """A rule that transforms the updates it receives (signal ``updates``) instead of making them."""

    def update(self, info, state, params, *, updates=None, **signals):
        if updates is None:
            return None, state
        return self.transform(info, updates, params), state

    def transform(self, info, updates, params):
        raise NotImplementedError


@dataclass(frozen=True)
class chain(Rule):  # noqa: N801 - named like the optax combinator it mirrors
    """``source`` then each transform in turn."""

    source: Rule
    transforms: tuple[Rule, ...]

    def __init__(self, source: Rule, *transforms: Rule):
        for rule in (source, *transforms):
            _require_rule(rule)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "transforms", transforms)

    @property
    def segment_steps(self):
        return self.source.segment_steps

    def init(self, params):
        return tuple(rule.init(params) for rule in (self.source, *self.transforms))

    def update(self, info, state, params, **signals):
        updates, first = self.source.update(info, state[0], params, **signals)
        states = [first]
        for rule, rule_state in zip(self.transforms, state[1:]):
            updates, rule_state = rule.update(info, rule_state, params, **{**signals, "updates": updates})
            states.append(rule_state)
        return updates, tuple(states)


@dataclass(frozen=True)
class partition(Rule):  # noqa: N801
    """A rule per parameter group: ``labels[i]`` names the rule (a key of ``rules``) of ``params[i]``.
    Each rule sees only its own parameters; groups with no update this time get ``None`` → zeros."""

    rules: dict
    labels: tuple[str, ...]

    def __post_init__(self):
        for rule in self.rules.values():
            _require_rule(rule)
        unknown = sorted(set(self.labels) - set(self.rules))
        if unknown:
            raise ValueError(f"partition: labels {unknown} have no rule (rules: {sorted(self.rules)})")

    @property
    def segment_steps(self):
        """The rules' common segment length (they run in one loop, so they must agree)."""
        lengths = {rule.segment_steps for rule in self.rules.values()}
        if len(lengths) > 1:
            raise ValueError(f"partition: its rules cut sequences differently ({sorted(map(str, lengths))})")
        return lengths.pop()

    def _groups(self, params):
        if len(params) != len(self.labels):
            raise ValueError(f"partition: {len(self.labels)} labels for {len(params)} parameters")
        return {name: [i for i, label in enumerate(self.labels) if label == name] for name in self.rules}

    def init(self, params):
        return {name: self.rules[name].init(tuple(params[i] for i in index))
                for name, index in self._groups(params).items()}

    def update(self, info, state, params, **signals):
        incoming = signals.pop("updates", None)
        merged, new_state, any_update = [None] * len(params), {}, False
        for name, index in self._groups(params).items():
            group = tuple(params[i] for i in index)
            group_in = None if incoming is None else tuple(incoming[i] for i in index)
            updates, new_state[name] = self.rules[name].update(info, state[name], group, updates=group_in,
                                                               **signals)
            if updates is not None:
                any_update = True
                for i, u in zip(index, updates):
                    merged[i] = u
        if not any_update:
            return None, new_state
        return tuple(torch.zeros_like(p) if u is None else u for p, u in zip(params, merged)), new_state


@dataclass(frozen=True)
class scale(Transform):  # noqa: N801
    """Multiply the updates by ``factor`` (``scale(−η)`` turns a gradient into a change)."""

    factor: float

    def __post_init__(self):
        require_finite("scale factor", self.factor)

    def transform(self, info, updates, params):
        return tuple(u * self.factor for u in updates)


@dataclass(frozen=True)
class clip(Transform):  # noqa: N801
    """Scale the updates down so that their global L2 norm is at most ``max_norm``."""

    max_norm: float

    def __post_init__(self):
        require_positive("clip max_norm", self.max_norm)

    def transform(self, info, updates, params):
        norm = torch.sqrt(sum((u.double() ** 2).sum() for u in updates))
        factor = torch.clamp(self.max_norm / (norm + 1e-12), max=1.0)  # stays on the device
        return tuple(u * factor.to(u.dtype) for u in updates)


@dataclass(frozen=True)
class bound(Transform):  # noqa: N801
    """Keep ``params + updates`` inside ``[low, high]`` (for changes, not gradients): hard bounds."""

    low: float
    high: float

    def __post_init__(self):
        if not require_finite("bound low", self.low) < require_finite("bound high", self.high):
            raise ValueError(f"bound needs low < high, got [{self.low}, {self.high}]")

    def transform(self, info, updates, params):
        return tuple((p.detach() + u).clamp(self.low, self.high) - p.detach() for p, u in zip(params, updates))


@dataclass(frozen=True)
class every(Rule):  # noqa: N801
    """Sum the updates of ``rule`` over ``steps`` calls and emit the sum on the last of them (or on the
    last step of a sequence, ``info.last``); ``None`` in between."""

    steps: int
    rule: Rule

    def __post_init__(self):
        require_count("every steps", self.steps)
        _require_rule(self.rule)

    @property
    def segment_steps(self):
        return self.rule.segment_steps

    def init(self, params):
        return (self.rule.init(params), None, 0)

    def update(self, info, state, params, **signals):
        inner, total, count = state
        updates, inner = self.rule.update(info, inner, params, **signals)
        if updates is not None:
            total = updates if total is None else tuple(a + b for a, b in zip(total, updates))
        count += 1
        if count == self.steps or getattr(info, "last", False):
            return total, (inner, None, 0)
        return None, (inner, total, count)


@dataclass(frozen=True)
class gate(Transform):  # noqa: N801
    """Pass only the entries with ``|u| ≥ threshold`` (zero elsewhere; ``None`` when none passes);
    ``ternary`` replaces each passing entry by ``threshold · sign(u)``, a three-level update."""

    threshold: float
    ternary: bool = field(default=False)

    def __post_init__(self):
        require_non_negative("gate threshold", self.threshold)

    def transform(self, info, updates, params):
        masks = [u.abs() >= self.threshold for u in updates]
        if not any(bool(m.any()) for m in masks):
            return None
        if self.ternary:
            return tuple(self.threshold * torch.sign(u) * m for u, m in zip(updates, masks))
        return tuple(u * m for u, m in zip(updates, masks))


def _require_rule(rule) -> None:
    if not isinstance(rule, Rule):
        raise ValueError(f"expected a rule (with init/update), got {rule!r}")
