"""The README's set-up (scripts/setup.sh, sourced by scripts/run.sh and scripts/test.sh).

Its decisions are checked with pip's installs stubbed out (which environment, whether the installed torch
is kept, where a missing one comes from, what happens to one that is too old); the whole path of a fresh
Debian/Ubuntu machine is checked for real: a system Python marked externally managed (PEP 668), no
environment active, `bash scripts/run.sh` in a copy of the project must create .venv, keep the system's
torch, install the package there and run. `.ci/run` itself runs both scripts on CI's clean checkout.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup.sh"
SCRIPTS = [ROOT / "scripts" / "setup.sh", ROOT / "scripts" / "run.sh", ROOT / "scripts" / "test.sh", ROOT / ".ci" / "run"]
STUB_PIP = 'np_pip_raw() { echo "pip $*" >>"$CALLS"; }'  # records what would be installed


def clean_env(**extra):
    """This process's environment with no Python environment active and no set-up overrides."""
    drop = {"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "PYTHONPATH", "NEUROPLASTIC_TORCH_INDEX_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def source_and_run(body, cwd, env, timeout=120):
    """Runs `body` in bash after sourcing scripts/setup.sh, as the scripts do (set -euo pipefail)."""
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\nsource {SETUP}\n{body}"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )


def make_env(path, *, pip=False, torch=None):
    """A virtual environment made without pip (fast); `pip` lends it this interpreter's pip (a .pth to
    its folder), `torch` puts a stand-in torch of that version (a package and its metadata) into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip())
    if pip:
        import pip as this_pip

        (site / "lent-pip.pth").write_text(f"{Path(this_pip.__file__).parent.parent}\n")
    if torch:
        (site / "torch").mkdir()
        (site / "torch" / "__init__.py").write_text(f"__version__ = {torch!r}\n")
        dist = site / f"torch-{torch}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {torch}\n")
    return python, site


def test_the_scripts_parse_and_share_one_setup():
    for script in SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)
    for name in ("run.sh", "test.sh"):
        code = "\n".join(line for line in (ROOT / "scripts" / name).read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "source scripts/setup.sh" in code and "np_setup" in code
        assert "pip install" not in code and not re.search(r"\btorch\b", code)  # no install logic of their own
    assert ".venv/" in (ROOT / ".gitignore").read_text().split()


def test_where_a_missing_torch_comes_from(tmp_path):
    # pip's own configuration is left out (PIP_CONFIG_FILE=/dev/null loads no pip.conf at all)
    env = {k: v for k, v in clean_env(PIP_CONFIG_FILE=os.devnull).items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}
    body = f"NP_PYTHON={sys.executable}; np_torch_source"

    def source(**extra):
        result = source_and_run(body, tmp_path, {**env, **extra})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    if sys.platform.startswith("linux"):
        assert source() == "https://download.pytorch.org/whl/cpu"  # PyPI's Linux torch is a CUDA build
    for told in ({"PIP_INDEX_URL": "https://mirror.invalid/simple"}, {"PIP_EXTRA_INDEX_URL": "https://mirror.invalid/simple"},
                 {"PIP_FIND_LINKS": str(tmp_path)}, {"PIP_NO_INDEX": "1"}):
        assert source(**told) == ""  # pip was told where to look: its sources as they are
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.invalid/simple\n")
    assert source(PIP_CONFIG_FILE=str(conf)) == ""
    assert source(PIP_CONFIG_FILE=str(conf), NEUROPLASTIC_TORCH_INDEX_URL="https://x.invalid/cpu") == "https://x.invalid/cpu"
    assert source(NEUROPLASTIC_TORCH_INDEX_URL="") == ""


def test_the_cpu_index_falls_back_to_pip_own_index_when_it_cannot_be_used(tmp_path):
    calls = tmp_path / "calls"
    body = (
        f"NP_PYTHON={sys.executable}\n"
        'np_torch_source() { echo https://cpu.invalid/whl; }\n'
        'np_pip_raw() { echo "pip $*" >>"$CALLS"; case "$*" in *--index-url*) return 1;; esac; }\n'
        "np_install_torch\n"
    )
    result = source_and_run(body, tmp_path, clean_env(CALLS=str(calls)))
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == ["pip --index-url https://cpu.invalid/whl torch==2.13.0", "pip torch==2.13.0"]
    assert "could not be used" in result.stderr
    # an index the user named is not second-guessed
    calls.unlink()
    result = source_and_run(body, tmp_path, clean_env(CALLS=str(calls), NEUROPLASTIC_TORCH_INDEX_URL="https://cpu.invalid/whl"))
    assert result.returncode == 1 and "could not install torch from https://cpu.invalid/whl" in result.stderr
    assert len(calls.read_text().splitlines()) == 1


@pytest.mark.parametrize("active", [None, "VIRTUAL_ENV", "CONDA_PREFIX"])
def test_what_happens_to_the_installed_torch(tmp_path, active):
    calls = tmp_path / "calls"
    env = clean_env(CALLS=str(calls))
    if active:
        env[active] = str(tmp_path / "user-env")  # only read by np_ensure_torch to tell whose env it is

    def ensure(torch):
        root = tmp_path / f"env-{torch}"
        python, site = make_env(root, torch=torch)
        # after a stubbed install of torch 2.13.0, the environment has it
        install = f'sed -i "s/^Version: .*/Version: 2.13.0+cpu/" {site}/torch-*.dist-info/METADATA' if torch else (
            f'mkdir -p {site}/torch {site}/torch-2.13.0+cpu.dist-info && touch {site}/torch/__init__.py && '
            f'printf "Name: torch\\nVersion: 2.13.0+cpu\\n" >{site}/torch-2.13.0+cpu.dist-info/METADATA')
        body = (
            f"NP_PYTHON={python}\nnp_torch_source() {{ echo; }}\n"
            f'np_pip_raw() {{ echo "pip $*" >>"$CALLS"; case "$*" in *torch==2.13.0*) {install};; esac; }}\n'
            'np_ensure_torch\nnp_pip -e ".[test]"\n'
        )
        if calls.exists():
            calls.unlink()
        result = source_and_run(body, tmp_path, env)
        return result, calls.read_text().splitlines() if calls.exists() else []

    # a compatible torch, whatever its build, is kept and pinned in every later install
    result, pips = ensure("2.5.0a0+872d972e41.nv24.08")
    assert result.returncode == 0, result.stderr
    assert "keeping the installed torch 2.5.0a0+872d972e41.nv24.08" in result.stderr
    assert pips == ["pip -e .[test] torch==2.5.0a0+872d972e41.nv24.08"]

    # none: the CPU build of 2.13.0, then pinned
    result, pips = ensure(None)
    assert result.returncode == 0, result.stderr
    assert pips == ["pip torch==2.13.0", "pip -e .[test] torch==2.13.0+cpu"]

    # too old: replaced in the project's .venv; an environment of the user's own is left alone
    result, pips = ensure("1.13.1")
    if active:
        assert result.returncode == 1 and pips == []
        assert "torch 1.13.1 in the active environment is older than the 2.1 neuroplastic needs" in result.stderr.strip().splitlines()[-1]
    else:
        assert result.returncode == 0, result.stderr
        assert "older than 2.1: installing torch==2.13.0 into .venv" in result.stderr
        assert pips == ["pip torch==2.13.0", "pip -e .[test] torch==2.13.0+cpu"]


def test_which_environment_is_used(tmp_path):
    user_env, _ = make_env(tmp_path / "user-env", pip=True)
    project = tmp_path / "project"
    project.mkdir()
    body = 'np_pick_env; echo "$NP_PYTHON"'
    for var, word in (("VIRTUAL_ENV", "virtual"), ("CONDA_PREFIX", "conda")):
        result = source_and_run(body, project, clean_env(**{var: str(tmp_path / "user-env")}))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(user_env)
        assert result.stderr.strip() == f"neuroplastic setup: installing into the active {word} environment {tmp_path / 'user-env'}"
    assert not (project / ".venv").exists()
    # none active and a .venv there already: that one, said in one line
    venv_python, _ = make_env(project / ".venv", pip=True)
    result = source_and_run(body, project, clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(venv_python)
    assert result.stderr.strip() == f"neuroplastic setup: no active environment: using the project's virtual environment {project / '.venv'}"


def fake_system_python(tmp_path, *, ensurepip=True, site_dirs=()):
    """A copy of this Python's interpreter that takes itself for a system Python of its own (Linux only):
    its prefix is tmp_path/system, its standard library the real one linked entry by entry, with
    EXTERNALLY-MANAGED beside it (PEP 668: pip refuses to install into it), and its site-packages empty
    but for a .pth naming `site_dirs` (the packages a system would have installed: torch among them)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the stand-in system Python is built the Linux way")
    stdlib = Path(sysconfig.get_path("stdlib"))  # in a virtual environment, its base's
    binary = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    prefix = tmp_path / "system"
    lib = prefix / "lib" / stdlib.name
    (prefix / "bin").mkdir(parents=True)
    lib.mkdir(parents=True)
    shutil.copy2(binary, prefix / "bin" / "python3")
    for shared in stdlib.parent.glob("libpython*"):  # for an interpreter that finds it as $ORIGIN/../lib
        (prefix / "lib" / shared.name).symlink_to(shared)
    for entry in stdlib.iterdir():
        if entry.name not in ("site-packages", "dist-packages", "EXTERNALLY-MANAGED") and (ensurepip or entry.name != "ensurepip"):
            (lib / entry.name).symlink_to(entry)
    (lib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\nError=the test's stand-in system Python (PEP 668)\n")
    python = prefix / "bin" / "python3"
    probe = subprocess.run(
        [python, "-c", "import site, sys, sysconfig; print(sys.prefix); print(sysconfig.get_path('stdlib')); print(site.getsitepackages()[0])"],
        env=clean_env(), capture_output=True, text=True,
    )
    lines = probe.stdout.split()
    if probe.returncode or lines[:2] != [str(prefix), str(lib)]:
        pytest.skip(f"this Python cannot be copied elsewhere: {probe.stderr.strip()[-200:]}")
    site = Path(lines[2])
    site.mkdir(parents=True, exist_ok=True)
    if site_dirs:
        (site / "system-packages.pth").write_text("".join(f"{d}\n" for d in site_dirs))
    return python


def copy_project(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so")
    for name in ("src", "scripts"):
        shutil.copytree(ROOT / name, project / name, ignore=ignore)
    return project


def test_no_venv_module_gives_one_line_saying_what_to_install(tmp_path):
    python = fake_system_python(tmp_path, ensurepip=False)  # Debian/Ubuntu without python3-venv
    project = copy_project(tmp_path)
    path = f"{python.parent}:/usr/bin:/bin"
    if shutil.which("virtualenv", path=path):
        pytest.skip("virtualenv is installed here: the set-up would use it")
    result = subprocess.run(["bash", "scripts/run.sh", "--help"], cwd=project, env=clean_env(PATH=path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("neuroplastic setup: no active environment: creating the project's virtual environment")
    assert len(lines) == 2 and "python3-venv" in lines[1] and "virtualenv" in lines[1]
    assert not (project / ".venv").exists()  # the half-made one is removed


def test_virtualenv_stands_in_for_a_missing_venv_module(tmp_path):
    python = fake_system_python(tmp_path, ensurepip=False)
    project = tmp_path / "project"
    project.mkdir()
    tools = tmp_path / "tools"
    tools.mkdir()
    # a virtualenv command that records how it is called and makes the environment with pip lent to it
    maker = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_setup_scripts as t; t.make_env(__import__('pathlib').Path(sys.argv[1]), pip=True)"
    (tools / "virtualenv").write_text(f'#!/bin/sh\necho "$@" >{tmp_path}/args\nfor d; do :; done\nexec {sys.executable} -c "{maker}" "$d"\n')
    (tools / "virtualenv").chmod(0o755)
    env = clean_env(PATH=f"{python.parent}:{tools}:/usr/bin:/bin")
    result = source_and_run('np_pick_env; echo "$NP_PYTHON"', project, env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "args").read_text().split() == ["--quiet", "--python", str(python), "--system-site-packages", str(project / ".venv")]
    assert result.stdout.strip() == str(project / ".venv" / "bin" / "python")


def test_run_sh_on_an_externally_managed_python(tmp_path):
    """Debian/Ubuntu today: `pip install` into the system Python is refused (PEP 668); torch is already
    installed there (here: this environment's packages, listed in the stand-in's site-packages)."""
    torch_dir = Path(__import__("importlib.util").util.find_spec("torch").origin).parent.parent
    site_dirs = [torch_dir] + [Path(p) for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p) != torch_dir]
    python = fake_system_python(tmp_path, site_dirs=[str(d) for d in site_dirs])
    env = clean_env(PATH=f"{python.parent}:{os.environ['PATH']}")
    refused = subprocess.run([python, "-m", "pip", "install", "--dry-run", "--no-index", "pip"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr  # the stand-in is one

    project = copy_project(tmp_path)
    result = subprocess.run(["bash", "scripts/run.sh", "--help"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "usage: neuroplastic run" in result.stdout
    venv = project / ".venv"
    assert result.stderr.splitlines()[0] == f"neuroplastic setup: no active environment: creating the project's virtual environment {venv} (system site-packages visible)"
    assert "keeping the installed torch" in result.stderr
    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import importlib.util as u; print(u.find_spec('neuroplastic').origin); print(u.find_spec('torch').origin)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(project / "src")  # the package from this copy, installed in .venv
    assert Path(where[1]).is_relative_to(torch_dir)  # the system's torch, not a second one in .venv
    # a second run reuses .venv
    again = subprocess.run(["bash", "scripts/run.sh", "--help"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.splitlines()[0] == f"neuroplastic setup: no active environment: using the project's virtual environment {venv}"
