"""Input-validation defects a fuzzing pass found, each one clear error now (the contract of
``test_fuzz_cli``: exit code 2 with one line on stderr and nothing written; a ``ValueError`` naming the
problem in the library): non-finite chip parameters, negative seeds and unbounded step counts of
``neuron`` and ``fi``, and non-finite changes handed to ``apply_changes``."""
from __future__ import annotations

import math

import pytest
import torch
from test_fuzz_cli import assert_clean_exit, invoke

from neuroplastic.cli import common
from neuroplastic.networks import LeakyReadout, SpikingLayer, SpikingNetwork
from neuroplastic.neurons import DPI
from neuroplastic.physical import ChipSpec, PhysicalNetwork, calibrate
from neuroplastic.rules import apply_changes


def refused(argv: list[str]) -> str:
    """The one line of stderr of ``argv``, which must be refused (exit 2, nothing written)."""
    assert_clean_exit(argv, may_succeed=False)
    return invoke(argv)[2].strip()


# 1. chip parameters ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["pat", "twin"])
@pytest.mark.parametrize("flag", ["--mismatch", "--noise"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_chip_flags_refuse_non_finite_values_naming_the_flag(rule, flag, value):
    """NaN is never equal to itself: it used to be reported as '--mismatch and --rule-option mismatch=
    disagree'."""
    message = refused(["train", "--task", "cue", "--rule", rule, f"{flag}={value}", "--epochs", "1", "--quiet",
                       "--out", "out"])
    assert flag in message and "finite" in message, message


def test_compare_refuses_a_non_finite_chip_flag():
    message = refused(["compare", "--task", "cue", "--rules", "pat,bptt", "--mismatch=nan", "--epochs", "1",
                       "--quiet", "--out", "out"])
    assert "--mismatch" in message and "finite" in message, message


@pytest.mark.parametrize("field", ["mismatch", "noise"])
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_chip_spec_refuses_non_finite_values(field, value):
    with pytest.raises(ValueError, match=f"{field} must be finite"):
        ChipSpec(**{field: value})


def test_calibration_refuses_an_infinite_span():
    """An infinite span made every fitted gain NaN, silently."""
    generator = torch.Generator().manual_seed(0)
    twin = SpikingNetwork([SpikingLayer(4, 6, DPI(), scale=15.0, generator=generator)],
                          LeakyReadout(6, 3, generator=generator)).double()
    network = PhysicalNetwork(twin, ChipSpec(mismatch=0.2)).double()
    inputs = (torch.rand(10, 2, 4, generator=generator) < 0.3).double()
    before = [gain.clone() for gain in network.twin.buffers()]
    for span in (math.inf, math.nan):
        with pytest.raises(ValueError, match="calibration span must be finite"):
            calibrate(network, inputs, span=span)
    assert all(torch.equal(a, b) for a, b in zip(before, network.twin.buffers()))


# 2. seeds of neuron and fi --------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["neuron", "lif"], ["fi", "lif", "--currents", "1"]])
@pytest.mark.parametrize("seed", ["-1", str(-(10**30)), str(2**63)])
def test_neuron_and_fi_refuse_a_seed_that_is_not_a_non_negative_integer(command, seed):
    message = refused([*command, "--duration", "5", "--noise", "1", f"--seed={seed}"])
    assert "--seed" in message, message


@pytest.mark.parametrize("command", [["neuron", "lif"], ["fi", "lif", "--currents", "1"]])
def test_neuron_and_fi_take_seed_zero(command):
    assert assert_clean_exit([*command, "--duration", "5", "--noise", "1", "--seed=0"], may_succeed=True)[0] == 0


# 3. the number of steps of neuron and fi ------------------------------------------------------------

@pytest.mark.parametrize("command", [["neuron", "lif"], ["fi", "lif", "--currents", "1,2"]])
def test_neuron_and_fi_cap_the_steps(command, monkeypatch):
    """At most ``MAX_STEPS`` steps of ``--dt``: one more, through --duration or --dt, is refused naming
    both (checked with a small cap, so that the runs are short)."""
    monkeypatch.setattr(common, "MAX_STEPS", 100)
    assert assert_clean_exit([*command, "--duration", "10", "--dt", "0.1"], may_succeed=True)[0] == 0  # 100 steps
    for argv in ([*command, "--duration", "10.1", "--dt", "0.1"], [*command, "--duration", "10", "--dt", "0.09"]):
        message = refused(argv)
        assert "--duration" in message and "--dt" in message and "100" in message, message


@pytest.mark.parametrize("command", [["neuron", "lif"], ["fi", "lif", "--currents", "1"]])
def test_neuron_and_fi_refuse_more_than_max_steps_at_once(command):
    from neuroplastic.cli.common import MAX_STEPS

    assert MAX_STEPS <= 10**7
    for duration, dt in (((MAX_STEPS + 1) * 0.1, 0.1), (1e9, 0.1), (200.0, 1e-9), (1e300, 1e-300)):
        message = refused([*command, f"--duration={duration!r}", f"--dt={dt!r}"])
        assert "--duration" in message and "--dt" in message, message


# 4. apply_changes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("index", [0, 1])
def test_apply_changes_refuses_a_non_finite_change_before_changing_anything(bad, index):
    params = (torch.ones(2, 3), torch.zeros(4))
    changes = [torch.full((2, 3), 0.5), torch.full((4,), 0.25)]
    changes[index] = changes[index].clone()
    changes[index].view(-1)[1] = bad
    with pytest.raises(ValueError, match=f"non-finite change to parameter {index}"):
        apply_changes(params, changes)
    assert torch.equal(params[0], torch.ones(2, 3)) and torch.equal(params[1], torch.zeros(4))  # nothing applied


def test_apply_changes_still_adds_finite_changes():
    params = (torch.ones(2, 3), torch.zeros(4))
    apply_changes(params, (torch.full((2, 3), 0.5), 0.25))
    assert torch.equal(params[0], torch.full((2, 3), 1.5)) and torch.equal(params[1], torch.full((4,), 0.25))
    apply_changes(params, None)
    apply_changes((), ())
    assert torch.equal(params[0], torch.full((2, 3), 1.5))


def test_apply_changes_takes_finite_changes_whose_sum_overflows():
    """The check sums the changes; a finite change whose sum overflows float32 is looked at closer and applied."""
    params = (torch.zeros(4), torch.zeros(2))
    apply_changes(params, (torch.full((4,), 3e38), torch.full((2,), 3e38)))
    assert bool(torch.isfinite(params[0]).all()) and float(params[1][0]) == pytest.approx(3e38)


@pytest.mark.parametrize("values", [
    torch.tensor([1.0, -2.0, 0.0]), torch.tensor([1.0, float("nan")]), torch.tensor([float("inf"), 1.0]),
    torch.tensor([float("inf"), float("-inf")]),  # their sum is NaN
    torch.tensor([3e38, 3e38, -1.0]),  # finite values whose sum overflows: read element by element
    torch.tensor([3e38, 3e38, float("nan")]), torch.zeros(0), torch.tensor([1, 2, 3]),
    torch.tensor([1 + 2j, float("nan")]), torch.tensor([60000.0, 60000.0], dtype=torch.float16),
])
def test_all_finite_answers_as_isfinite_all(values):
    from neuroplastic.validation import all_finite

    assert all_finite(values) == bool(torch.isfinite(values).all())
