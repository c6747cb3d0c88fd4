# Set-up shared by scripts/run.sh and scripts/test.sh (sourced by both; it defines functions and runs
# nothing by itself). np_setup EXTRAS picks the Python environment, makes sure it has a torch, installs
# the package (editable, with EXTRAS such as '[test,bench]') and leaves the environment's interpreter in
# NP_PYTHON; np_pip installs further packages into the same environment.
#
# Which environment (one line on stderr says which):
#   - an active virtual environment (VIRTUAL_ENV) or conda environment (CONDA_PREFIX): everything is
#     installed into it, as with a plain `pip install` there;
#   - none: the project's own .venv, created on first use with `python3 -m venv --system-site-packages`
#     (or virtualenv where the venv module or its ensurepip is missing, as on Debian/Ubuntu without
#     python3-venv). pip then never writes into the system's Python, which PEP 668 forbids on
#     Debian/Ubuntu ("externally-managed-environment"), and the system's packages stay visible, so a
#     torch already installed there (a distribution's, or a CUDA build) is used as it is. The package's
#     editable install lives in .venv too: it cannot re-point one that another checkout made elsewhere.
#
# torch (the package needs torch>=2.1):
#   - an installed torch>=2.1 is kept, whatever its build (CUDA, ROCm, CPU), and every later pip command
#     of the set-up is given `torch==<that version>`, so no requirement can make pip swap it for another;
#   - none installed: torch==2.13.0, the CPU build (see np_torch_source for where it comes from);
#   - older than 2.1: in the project's .venv, torch==2.13.0 (CPU) is installed into .venv, shadowing the
#     system's without touching it; in an environment of the user's own it is left alone and the set-up
#     stops with a line saying what to do (pip would otherwise replace it with PyPI's newest torch, on
#     Linux a multi-GB CUDA build).

NP_TORCH_VERSION=2.13.0           # the torch installed where there is none (its CPU build)
NP_TORCH_MIN=2.1                  # as in pyproject.toml's dependencies
NP_TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
NP_PYTHON=
NP_TORCH_PIN=

np_say() { echo "neuroplastic setup: $*" >&2; }
np_die() { echo "neuroplastic setup: $*" >&2; exit 1; }

# The interpreter of the environment rooted at $1 (POSIX bin/python, or Windows' Scripts/python.exe).
np_env_python() {
    local p
    for p in "$1/bin/python" "$1/Scripts/python.exe" "$1/python.exe"; do
        if [ -x "$p" ]; then echo "$p"; return 0; fi
    done
    return 1
}

# Exit status 0 when interpreter $1 runs and is Python >= 3.10.
np_python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; }

# The Python to create .venv from: python3, else python, at least 3.10.
np_base_python() {
    local p
    for p in python3 python; do
        if command -v "$p" >/dev/null 2>&1 && np_python_ok "$p"; then command -v "$p"; return 0; fi
    done
    np_die "needs Python >= 3.10 as python3 on PATH (found: $(python3 --version 2>&1 || echo none))"
}

# Create the virtual environment $2 from interpreter $1, with the system's site-packages visible.
np_make_venv() {
    local py=$1 dir=$2
    "$py" -m venv --system-site-packages "$dir" >/dev/null 2>&1 && np_env_python "$dir" >/dev/null && return 0
    rm -rf "$dir"  # a half-made one: Debian's venv without ensurepip leaves a .venv with no pip
    if "$py" -m virtualenv --version >/dev/null 2>&1; then
        "$py" -m virtualenv --quiet --system-site-packages "$dir" >&2 && return 0
    elif command -v virtualenv >/dev/null 2>&1; then
        virtualenv --quiet --python "$py" --system-site-packages "$dir" >&2 && return 0
    fi
    rm -rf "$dir"
    local ver
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    np_die "cannot create $dir: '$py -m venv' does not work here and virtualenv is not installed; install the venv module (Debian/Ubuntu: sudo apt install python3-venv, or python$ver-venv) or virtualenv, or activate an environment of your own, then rerun"
}

# Sets NP_PYTHON to the environment everything is installed into, creating .venv when none is active.
np_pick_env() {
    local venv="$PWD/.venv" created=
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        NP_PYTHON=$(np_env_python "$VIRTUAL_ENV") || np_die "VIRTUAL_ENV=$VIRTUAL_ENV has no Python interpreter"
        np_say "installing into the active virtual environment $VIRTUAL_ENV"
    elif [ -n "${CONDA_PREFIX:-}" ]; then
        NP_PYTHON=$(np_env_python "$CONDA_PREFIX") || np_die "CONDA_PREFIX=$CONDA_PREFIX has no Python interpreter"
        np_say "installing into the active conda environment $CONDA_PREFIX"
    else
        if [ -e "$venv" ]; then
            np_say "no active environment: using the project's virtual environment $venv"
        else
            np_say "no active environment: creating the project's virtual environment $venv (system site-packages visible)"
            local base
            base=$(np_base_python) || exit 1
            np_make_venv "$base" "$venv"
            created=1
        fi
        NP_PYTHON=$(np_env_python "$venv") || np_die "$venv has no Python interpreter: remove it (rm -rf .venv) and rerun"
    fi
    np_python_ok "$NP_PYTHON" || np_die "$NP_PYTHON is not Python >= 3.10"
    "$NP_PYTHON" -m pip --version >/dev/null 2>&1 \
        || np_die "$NP_PYTHON has no pip$([ -z "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ] && echo ': remove .venv (rm -rf .venv) and rerun')"
    # An editable install of a pyproject-only package needs pip >= 21.3 (PEP 660); Python 3.10.0's
    # ensurepip brings 21.2. Only a .venv made here is upgraded: an environment of the user's is theirs.
    if [ -n "$created" ] && ! "$NP_PYTHON" -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))' 2>/dev/null; then
        "$NP_PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=21.3'
    fi
}

# Is there a torch in NP_PYTHON's environment, and is it new enough? Prints one of
# "absent", "ok VERSION WHERE PIN", "old VERSION WHERE PIN" (WHERE: "env" inside sys.prefix, else
# "outside"; PIN: "pin" when VERSION is one pip can be given, else "nopin").
np_torch_state() {
    "$NP_PYTHON" - "$NP_TORCH_MIN" <<'EOF'
import importlib.metadata as md, importlib.util, os, sys
spec = importlib.util.find_spec("torch")
if spec is None:
    print("absent"); sys.exit()
try:
    version = md.version("torch")
except md.PackageNotFoundError:  # a torch without metadata (a source build on sys.path): ask it
    import torch
    version = torch.__version__.split()[0]
def at_least(version, minimum):
    """(version >= minimum, whether a requirement torch==version can be given to pip)"""
    import re
    numbers = lambda v: tuple(int(x) for x in re.findall(r"\d+", v)[:2])
    try:
        from pip._vendor.packaging.version import InvalidVersion, Version  # pip's copy, wherever pip is
    except ImportError:
        try:
            from packaging.version import InvalidVersion, Version
        except ImportError:  # neither: the leading numbers, and a plain PEP 440 form for the pin
            pep440 = r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[A-Za-z0-9]+(\.[A-Za-z0-9]+)*)?"
            return numbers(version) >= numbers(minimum), re.fullmatch(pep440, version) is not None
    try:
        return Version(version) >= Version(minimum), True
    except InvalidVersion:
        return numbers(version) >= numbers(minimum), False
ok, pin = at_least(version, sys.argv[1])
where = os.path.realpath(spec.origin or next(iter(spec.submodule_search_locations or [""])))
inside = where.startswith(os.path.realpath(sys.prefix) + os.sep)
print("ok" if ok else "old", version, "env" if inside else "outside", "pin" if pin else "nopin")
EOF
}

# Where the CPU build of torch comes from. Prints the index URL to pass as --index-url, or nothing for
# pip's own sources. In this order:
#   - NEUROPLASTIC_TORCH_INDEX_URL, when set: that index (set but empty: pip's own sources);
#   - pip told where to look (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, or
#     index-url / extra-index-url / find-links / no-index in a pip.conf: `pip config list` shows both):
#     pip's own sources, so a mirror, a proxy or an offline wheel house is honoured as it is (a mirror of
#     PyPI gives PyPI's build, on Linux the CUDA one: set NEUROPLASTIC_TORCH_INDEX_URL to choose);
#   - Linux with pip's defaults: PyTorch's CPU index, since PyPI's Linux torch is the CUDA build (with
#     ~3 GB of NVIDIA libraries); on macOS and Windows PyPI's torch already is a CPU build.
np_torch_source() {
    local config
    config=$("$NP_PYTHON" -m pip config list 2>/dev/null) || config=
    if [ -n "${NEUROPLASTIC_TORCH_INDEX_URL+set}" ]; then
        echo "$NEUROPLASTIC_TORCH_INDEX_URL"
    elif grep -qE '(^|\.)(index-url|extra-index-url|find-links|no-index)=' <<<"$config"; then
        echo ""
    elif [ "$(uname -s)" = Linux ]; then
        echo "$NP_TORCH_CPU_INDEX"
    else
        echo ""
    fi
}

np_pip_raw() { "$NP_PYTHON" -m pip install --quiet --disable-pip-version-check "$@"; }

# pip install into NP_PYTHON's environment, the torch there pinned (a requirement it already satisfies).
np_pip() { np_pip_raw "$@" ${NP_TORCH_PIN:+"$NP_TORCH_PIN"}; }

np_install_torch() {
    local index
    index=$(np_torch_source)
    if [ -n "$index" ]; then
        np_say "installing torch==$NP_TORCH_VERSION, the CPU build, from $index"
        np_pip_raw --index-url "$index" "torch==$NP_TORCH_VERSION" && return 0
        [ -n "${NEUROPLASTIC_TORCH_INDEX_URL+set}" ] && np_die "could not install torch from $index"
        np_say "$index could not be used: installing torch==$NP_TORCH_VERSION from pip's own index instead (on Linux a CUDA build)"
    else
        np_say "installing torch==$NP_TORCH_VERSION from pip's configured sources"
    fi
    np_pip_raw "torch==$NP_TORCH_VERSION"
}

np_ensure_torch() {
    local state version where pin
    read -r state version where pin < <(np_torch_state) || true
    case "$state" in
        ok)
            np_say "keeping the installed torch $version"
            ;;
        absent)
            np_install_torch
            ;;
        old)
            if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
                np_die "torch $version in the active environment is older than the $NP_TORCH_MIN neuroplastic needs: upgrade it there (the build for your hardware, see pytorch.org), or deactivate the environment to use the project's .venv"
            fi
            np_say "torch $version is older than $NP_TORCH_MIN: installing torch==$NP_TORCH_VERSION into .venv ($([ "$where" = env ] && echo 'replacing it' || echo 'the system'"'"'s stays as it is'))"
            np_install_torch
            ;;
        *)
            np_die "could not inspect torch with $NP_PYTHON"
            ;;
    esac
    read -r state version where pin < <(np_torch_state) || true
    [ "$state" = ok ] || np_die "no usable torch after installing it ($state $version)"
    if [ "$pin" = pin ]; then NP_TORCH_PIN="torch==$version"; fi
}

# np_setup [EXTRAS]: environment, torch, then the package itself (editable) with EXTRAS, e.g. '[test]'.
# The environment's bin folder goes first on PATH, as activation would put it, for the commands that the
# job or the tests start by name (console scripts installed there, such as torchrun with a torch in .venv).
np_setup() {
    np_pick_env
    np_ensure_torch
    np_pip -e ".${1:-}"
    PATH="$(dirname "$NP_PYTHON"):$PATH"
    export PATH
}
