#!/usr/bin/env bash
# Set up and run the main job (`neuroplastic run`), installing the CPU build of torch first.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check torch==2.13.0
python -m pip install --quiet --disable-pip-version-check -e .
neuroplastic run "$@"
