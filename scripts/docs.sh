#!/usr/bin/env bash
# Build the documentation site (MkDocs, Material theme, API reference by mkdocstrings) in strict mode:
# a broken link, cross-reference or snippet fails the build. Installs the package with its docs extra
# first, in the environment scripts/setup.sh chooses (the active one, else the project's .venv). Arguments pass through to mkdocs build (e.g. --site-dir DIR); `bash scripts/docs.sh serve`
# previews the site at http://127.0.0.1:8000 instead. Output: site/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
np_setup '[docs]'
export NO_MKDOCS_2_WARNING=1  # Material's banner about its successor, printed on every build
if [[ "${1:-}" == "serve" ]]; then
    shift
    exec "$NP_PYTHON" -m mkdocs serve --strict "$@"
fi
exec "$NP_PYTHON" -m mkdocs build --strict "$@"
