#!/usr/bin/env bash
# Set up and run the test suite (arguments passed on to pytest). The set-up (scripts/setup.sh): the
# active virtual or conda environment, else the project's .venv (created on first use, the system's
# site-packages visible); a torch>=2.1 already there is kept, else the CPU build of torch==2.13.0 is
# installed (a plain `torch` pulls a CUDA build); then the package with its test, bench, interop, evolve
# and docs extras, then the peers the tests compare against (installed apart, without their own
# requirements: SpikingJelly and Norse would pull torchvision and another torch; NeuroBench pins old
# versions of what it needs; Tonic (GPL-3.0) is a test-time peer, never a dependency of the library),
# then pytest (the `slow` reproductions are left out). Every install keeps the environment's torch.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
np_setup '[test,bench,interop,evolve,docs]'
np_pip snntorch==1.0.0 nir==1.0.8 nirtorch==2.6  # the versions whose exporter and importer bugs tests/test_nir.py shows
np_pip --no-deps spikingjelly==2.0.0 norse==1.1.0 neurobench==2.3.0
np_pip tonic==1.7.0
exec "$NP_PYTHON" -m pytest -q "$@"
