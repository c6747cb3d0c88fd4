"""Fuzzed command lines (issue 18 §3): every command with awkward option values — NaN and infinity
spelled out, zero, negatives, huge numbers, empty strings, unknown names.

The contract: exit code 0, or exit code 2 with exactly one line on stderr (``neuroplastic: error: …``),
nothing on stdout and no file written — never a traceback, a hang or NaN in a report. The long
commands (train, compare, meta, evolve, search, bench, tour, reproduce, export) are fuzzed with
invalid values only, so that nothing starts training; ``neuron`` and ``fi`` with any value, on
durations short enough to run.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from neuroplastic.cli import arguments
from neuroplastic.cli.main import main

HUNT = int(os.environ.get("NEUROPLASTIC_FUZZ_EXAMPLES", "0"))  # as in test_fuzz_models


def fuzz(examples: int):
    return settings(max_examples=HUNT or examples, derandomize=not HUNT, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def invoke(argv: list[str]) -> tuple[int, str, str, list[str]]:
    """``main(argv)`` run in a fresh empty folder: its exit code, stdout, stderr and the files it left."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as stop:  # argparse's own errors
                    code = stop.code
        finally:
            os.chdir(here)
        written = sorted(str(path.relative_to(folder)) for path in Path(folder).rglob("*"))
    return code, out.getvalue(), err.getvalue(), written


def assert_clean_exit(argv: list[str], *, may_succeed: bool) -> tuple[int, str]:
    code, out, err, written = invoke(argv)
    assert code in ((0, 2) if may_succeed else (2,)), f"{argv}: exit {code}; stderr {err[-500:]!r}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("neuroplastic: error:"), f"{argv}: stderr {err!r}"
        assert out == "", f"{argv}: stdout {out!r}"
        assert written == [], f"{argv}: wrote {written}"
    return code, out


# option values ------------------------------------------------------------------------------------------

AWKWARD = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1e999", "", " ", "abc", "1e", "--", "0x10",
           "1,2", "None", "1\n2", "é"]
not_positive = st.one_of(
    st.sampled_from(AWKWARD + ["0", "-0", "-1", "-1e-300", "-5e-324", "0.0"]),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (x > 0 and math.isfinite(x))).map(repr),
)
not_counts = st.one_of(
    st.sampled_from(AWKWARD + ["1.5", "1e3", "2.0", str(10**30), str(-(10**30)), str(2**63)]),
    st.integers(max_value=0).map(str),
)
not_seeds = st.one_of(st.sampled_from(["-1", str(10**30), str(-(10**30)), "1.5", "abc", "", "nan"]),
                      st.integers(max_value=-1).map(str))
not_devices = st.sampled_from(["cuda:99", "cuda:-1", "tpu", "", "gpu", "cuda:x", "mps:3", "cpu cpu", "\n"])


def not_names(*registries) -> st.SearchStrategy:
    taken = {name for registry in registries for name in registry}
    return st.one_of(st.sampled_from(["", " ", "none ", "\n", "a\nb", "LIF", "-x", "0"]),
                     st.text(max_size=8)).filter(lambda name: name not in taken)


# per command: the argv an example starts from (valid and cheap, were it to run) and the options
# fuzzed, each with values that must be refused before anything starts
COMMANDS = {
    "train": (["train", "--task", "cue", "--epochs", "1", "--quiet"], {
        "--task": not_names(arguments.TASKS), "--rule": not_names(arguments.METHODS), "--epochs": not_counts,
        "--lr": not_positive, "--batch-size": not_counts, "--max-delay": not_counts, "--truncation": not_counts,
        "--hidden": st.sampled_from(["0", "-1", ",", "1,,2", "1.5", "a", "1,0", str(10**30), "nan"]),  # "": default
        "--rule-option": st.sampled_from(["x", "=1", "1=2", "a b=1", "nope=1", "steps", ""]),
        "--recipe": not_names(arguments.RECIPES), "--seed": not_seeds, "--device": not_devices,
        "--data": st.sampled_from(["missing.npz", ".", "", "/dev/null"]),
    }),
    "run": (["run", "--epochs", "1", "--quiet"], {"--epochs": not_counts, "--seed": not_seeds,
                                                  "--device": not_devices}),
    "compare": (["compare", "--task", "cue", "--rules", "bptt", "--epochs", "1", "--quiet"], {
        "--rules": st.one_of(not_names(arguments.METHODS), st.sampled_from([",", "bptt,bptt", "bptt,nope", " , "])),
        "--task": not_names(arguments.TASKS), "--epochs": not_counts, "--device": not_devices,
    }),
    "meta": (["meta", "--iterations", "1", "--quiet"], {
        **{flag: not_counts for flag in ("--ways", "--shots", "--queries", "--inner-steps", "--meta-batch",
                                         "--iterations", "--validate-every", "--validation-episodes",
                                         "--test-episodes")},
        "--meta-lr": not_positive, "--task": not_names(arguments.META_DATASETS),
        "--inner": not_names(arguments.INNER_LOOPS), "--seed": not_seeds, "--device": not_devices,
    }),
    "evolve": (["evolve", "--generations", "1", "--population", "4", "--quiet"], {
        "--population": not_counts, "--generations": not_counts, "--sigma": not_positive, "--lr": not_positive,
        "--workers": st.sampled_from(["-1", "1.5", "abc", "", str(-(10**30))]),
        "--strategy": not_names(arguments.STRATEGIES), "--task": not_names(arguments.EVOLUTION_TASKS),
        "--option": st.sampled_from(["x", "=1", "nope=1", "hidden=0", "hidden=-1", "hidden=nan", "batch=0"]),
        "--seed": not_seeds,
    }),
    "search": (["search", "--budget-s", "1", "--iterations", "1", "--quiet"], {
        "--budget-s": not_positive, "--iterations": not_counts, "--nodes": not_counts, "--width": not_counts,
        "--retrain-epochs": not_counts, "--method": not_names(arguments.SEARCHES), "--task": not_names(arguments.TASKS),
        "--seed": not_seeds, "--device": not_devices,
    }),
    "bench": (["bench", "--quick", "--quiet", "--peers", "none"], {
        "--sizes": st.sampled_from(["0", "-5", "a,b", "", "1,,2", "64,0", "nan", str(10**30), "1.5"]),
        "--steps": not_counts, "--batch": not_counts, "--repeats": not_counts, "--threads": not_counts,
        "--peers": st.sampled_from(["nope", "snntorch,nope", "None", "NONE"]), "--device": not_devices,
    }),
    "tour": (["tour", "--quiet"], {"--device": not_devices}),
    "reproduce": (["reproduce", "stdp-window", "--quick", "--quiet"], {
        "name": not_names(arguments.EXPERIMENTS),
        "--plot": st.sampled_from(["x.txt", "x", ".png/", "x.PNG.txt", "x.jpg"]),  # (an empty one: the default)
    }),
    "export": (["export", "--checkpoint", "missing.pt", "--nir", "x.nir"], {
        "--checkpoint": st.sampled_from(["missing.pt", "", ".", "/dev/null"]),
        "--nir": st.sampled_from(["x.nir", "", ".", "out/x.nir"]),
    }),
}


def command_line(command: str, option: str, value: str) -> list[str]:
    base, _ = COMMANDS[command]
    if option == "name":  # the positional argument
        return [base[0], value, *base[2:]]
    if command == "train" and option == "--data":  # data of one's own instead of a task
        base = [part for part in base if part not in ("--task", "cue")]
    argv = [*base, f"{option}={value}"]
    if command in ("train", "run", "compare", "meta", "evolve", "search", "tour", "reproduce"):
        argv.append("--out=out")
    return argv


@fuzz(600)
@given(st.data())
def test_long_commands_refuse_bad_values_before_starting(data):
    command = data.draw(st.sampled_from(sorted(COMMANDS)), label="command")
    option = data.draw(st.sampled_from(sorted(COMMANDS[command][1])), label="option")
    value = data.draw(COMMANDS[command][1][option], label="value")
    code, _ = assert_clean_exit(command_line(command, option, value), may_succeed=False)
    event(f"exit {code}")  # (--hypothesis-show-statistics counts them)


# neuron and fi: any value, on runs short enough --------------------------------------------------------

MODEL_FIELDS = {"lif": ["tau_m", "e_l", "v_th", "resistance", "t_ref", "sigma"], "hh": ["c_m", "g_na", "v_init"],
                "izhikevich": ["a", "b", "c", "d", "v_peak"], "alif": ["tau_m", "tau_a", "v_th", "beta", "t_ref"],
                "coba": ["tau_e", "e_e", "sigma"], "dpi": ["tau_m", "v_th", "sigma"], "cuba": ["tau_s"],
                "adaptive": ["tau_m", "t_ref"]}
numbers = st.one_of(st.sampled_from(["0.5", "2", "10", "-65", "1", "1e3"] * 4 + AWKWARD
                                    + ["0", "-0", "-1", "5e-324", "1e-300", "1e30", "1e300", str(10**30)]),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))
# mostly valid (and short: at most 50 steps), so that many examples run
durations = st.sampled_from(["5", "0.05", "2", "1e300"] * 3 + ["nan", "inf", "-inf", "0", "-1", "5e-324", "1e-320",
                                                               "1e30", "abc", ""])
time_steps = st.sampled_from(["0.1", "1", "0.5", "1e300"] * 3 + ["nan", "inf", "-inf", "0", "-1", "5e-324", "1e-30",
                                                                "abc", ""])
models = st.sampled_from(sorted(MODEL_FIELDS) * 3 + ["", "nope", "a\nb", "LIF", "lif "])


@fuzz(400)
@given(models, st.data(), durations,
       time_steps, numbers, st.booleans())
def test_neuron_and_fi(model, data, duration, dt, value, fi):
    fields = MODEL_FIELDS.get(model, ["tau_m"]) + ["nope"]
    flag = data.draw(st.sampled_from(["--current", "--noise", "--param", "--seed", "--preset", "--plot", "none"]),
                     label="flag")
    argv = ["fi" if fi else "neuron", model, f"--duration={duration}", f"--dt={dt}", "--json"]
    if fi:
        argv.append(f"--currents={value},1")
    if flag == "--param":
        argv.append(f"--param={data.draw(st.sampled_from(fields), label='parameter')}={value}")
    elif flag == "--plot":
        argv.append(f"--plot={data.draw(st.sampled_from(['a.png', 'a.txt', '', 'a.svg/']), label='plot')}")
    elif flag == "--seed":
        argv.append(f"--seed={value}")
    elif flag == "--preset":
        argv.append(f"--preset={data.draw(st.sampled_from(['RS', 'FS', 'XY', '', 'rs']), label='preset')}")
    elif flag != "none" and not (fi and flag == "--current"):
        argv.append(f"{flag}={value}")
    code, out = assert_clean_exit(argv, may_succeed=True)
    event(f"{argv[0]}: exit {code}")
    if code == 0:
        summary = json.loads(out.strip().splitlines()[-1])  # emit refuses NaN: a report holds finite numbers
        assert summary["dt_ms"] > 0 and math.isfinite(summary["duration_ms"])


def test_neuron_and_fi_refuse_what_would_run_for_ever():
    """A duration of more steps than a 64-bit count holds is refused at once, not simulated."""
    for argv in (["neuron", "lif", "--duration=1e30"], ["neuron", "lif", "--dt=5e-324"],
                 ["fi", "lif", "--currents=1", "--duration=1e300", "--dt=1e-300"]):
        assert_clean_exit(argv, may_succeed=False)


def test_neuron_with_a_subnormal_duration():
    """A duration so short that the firing rate would overflow is one clear error (with spikes), a rate of
    0 without; never a division by zero or an infinite rate in the report."""
    for current in ("0", "1e30"):
        for report in ([], ["--json"]):
            assert_clean_exit(["neuron", "lif", "--duration=5e-324", "--dt=5e-324", f"--current={current}", *report],
                              may_succeed=True)
