"""The rule combinators against hand-computed results, and the two bridges (optimizer, changes)."""
from dataclasses import dataclass

import pytest
import torch

from neuroplastic.rules import (
    Rule,
    StepInfo,
    apply_changes,
    apply_updates,
    bound,
    chain,
    clip,
    count_changes,
    every,
    gate,
    partition,
    scale,
)


@dataclass(frozen=True)
class Counting(Rule):
    """Update t + 1 on step t (so sums over steps are easy to check)."""

    def update(self, info, state, params, **signals):
        return tuple(torch.full_like(p, info.t + 1.0) for p in params), state


def info(t, steps=6):
    return StepInfo(t, steps, 1.0, torch.zeros(1), torch.zeros(1))


def run(rule, params, steps=6):
    state, out = rule.init(params), []
    for t in range(steps):
        updates, state = rule.update(info(t, steps), state, params)
        out.append(updates)
    return out


def test_every_sums_k_steps_and_flushes_at_the_end_of_the_sequence():
    params = (torch.zeros(2),)
    out = run(every(4, Counting()), params)
    assert [u is None for u in out] == [True, True, True, False, True, False]
    torch.testing.assert_close(out[3][0], torch.full((2,), 1.0 + 2 + 3 + 4))
    torch.testing.assert_close(out[5][0], torch.full((2,), 5.0 + 6))


def test_chain_scales_then_bounds_changes_into_the_interval():
    params = (torch.tensor([0.0, 0.5, 0.95]),)
    rule = chain(Counting(), scale(0.1), bound(0.0, 1.0))
    (updates,), _ = rule.update(info(0), rule.init(params), params)
    torch.testing.assert_close(params[0] + updates, torch.tensor([0.1, 0.6, 1.0]))
    rule = chain(Counting(), scale(-1.0), bound(0.0, 1.0))
    (updates,), _ = rule.update(info(0), rule.init(params), params)
    torch.testing.assert_close(params[0] + updates, torch.zeros(3))


def test_clip_limits_the_global_norm_and_leaves_small_updates_alone():
    params = (torch.zeros(3), torch.zeros(4))  # update of ones: global norm √7
    updates, _ = chain(Counting(), clip(1.0)).update(info(0), (None, None), params)
    norm = torch.sqrt(sum((u**2).sum() for u in updates))
    assert norm.item() == pytest.approx(1.0)
    updates, _ = chain(Counting(), clip(10.0)).update(info(0), (None, None), params)
    torch.testing.assert_close(updates[0], torch.ones(3))


def test_gate_passes_large_entries_only_and_can_make_them_ternary():
    @dataclass(frozen=True)
    class Fixed(Rule):
        def update(self, info, state, params, **signals):
            return (torch.tensor([0.05, -0.3, 0.2, -0.01]),), state

    params = (torch.zeros(4),)
    (passed,), _ = chain(Fixed(), gate(0.1)).update(info(0), (None, None), params)
    torch.testing.assert_close(passed, torch.tensor([0.0, -0.3, 0.2, 0.0]))
    (ternary,), _ = chain(Fixed(), gate(0.1, ternary=True)).update(info(0), (None, None), params)
    torch.testing.assert_close(ternary, torch.tensor([0.0, -0.1, 0.1, 0.0]))
    assert count_changes((ternary,)) == 2
    nothing, _ = chain(Fixed(), gate(1.0)).update(info(0), (None, None), params)
    assert nothing is None


def test_partition_gives_each_group_its_own_rule():
    params = (torch.zeros(2), torch.zeros(3), torch.zeros(1))
    rule = partition({"fast": chain(Counting(), scale(2.0)), "slow": every(2, Counting())},
                     ("fast", "slow", "fast"))
    state = rule.init(params)
    first, state = rule.update(info(0), state, params)
    torch.testing.assert_close(first[0], torch.full((2,), 2.0))
    torch.testing.assert_close(first[1], torch.zeros(3))  # the slow group waits
    second, state = rule.update(info(1), state, params)
    torch.testing.assert_close(second[1], torch.full((3,), 3.0))
    torch.testing.assert_close(second[2], torch.full((1,), 4.0))
    with pytest.raises(ValueError, match="no rule"):
        partition({"a": Counting()}, ("a", "b"))
    with pytest.raises(ValueError, match="labels"):
        rule.init(params[:2])


def test_bridges_give_gradients_to_an_optimizer_and_add_changes():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    apply_updates(optimizer, (weight,), (torch.tensor([1.0, 0.0, -2.0]),))
    torch.testing.assert_close(weight.detach(), torch.tensor([0.5, 1.0, 2.0]))
    apply_changes((weight,), (torch.tensor([0.5, 0.0, 0.0]),))
    torch.testing.assert_close(weight.detach(), torch.tensor([1.0, 1.0, 2.0]))
    apply_updates(optimizer, (weight,), None)
    apply_changes((weight,), None)
    torch.testing.assert_close(weight.detach(), torch.tensor([1.0, 1.0, 2.0]))


def test_bad_combinator_arguments_are_refused():
    with pytest.raises(ValueError, match="low < high"):
        bound(1.0, 0.0)
    with pytest.raises(ValueError):
        clip(-1.0)
    with pytest.raises(ValueError):
        every(0, Counting())
    with pytest.raises(ValueError, match="expected a rule"):
        chain(Counting(), "scale")
    with pytest.raises(ValueError):
        scale(float("nan"))
