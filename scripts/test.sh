#!/usr/bin/env bash
# Set up and run the test suite: the CPU build of torch first (a plain `torch` pulls a CUDA build),
# then the package with its test extra, then pytest (the `slow` reproductions are left out).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e '.[test]'
python -m pytest -q "$@"
