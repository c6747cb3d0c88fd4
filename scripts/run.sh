#!/usr/bin/env bash
# Set up and run the main job (`neuroplastic run`, arguments passed on). The set-up (scripts/setup.sh):
# the active virtual or conda environment, else the project's .venv (created on first use, the system's
# site-packages visible); a torch>=2.1 already there is kept, else the CPU build of torch==2.13.0 is
# installed; then the package, editable.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
np_setup
exec "$NP_PYTHON" -m neuroplastic run "$@"
