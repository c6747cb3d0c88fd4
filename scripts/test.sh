#!/usr/bin/env bash
# Set up and run the test suite: the CPU build of torch first (a plain `torch` pulls a CUDA build),
# then the package with its test, bench, interop and evolve extras, then the peers the tests compare against
# (installed apart, without their own requirements: SpikingJelly and Norse would pull torchvision and
# another torch; NeuroBench pins old versions of what it needs; Tonic (GPL-3.0) is a test-time peer,
# never a dependency of the library), then pytest (the `slow` reproductions are left out).
set -euo pipefail
cd "$(dirname "$0")/.."
pip() { python -m pip install --quiet --disable-pip-version-check "$@"; }
pip torch==2.13.0
pip -e '.[test,bench,interop,evolve]'
pip snntorch==1.0.0 nir==1.0.8 nirtorch==2.6  # the versions whose exporter and importer bugs tests/test_nir.py shows
pip --no-deps spikingjelly==2.0.0 norse==1.1.0 neurobench==2.3.0
pip tonic==1.7.0
python -m pytest -q "$@"
