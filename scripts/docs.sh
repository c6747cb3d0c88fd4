#!/usr/bin/env bash
# Build the documentation site (MkDocs, Material theme, API reference by mkdocstrings) in strict mode:
# a broken link, cross-reference or snippet fails the build. Installs the package with its docs extra
# first. Arguments pass through to mkdocs build (e.g. --site-dir DIR); `bash scripts/docs.sh serve`
# previews the site at http://127.0.0.1:8000 instead. Output: site/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
export NO_MKDOCS_2_WARNING=1  # Material's banner about its successor, printed on every build
if [[ "${1:-}" == "serve" ]]; then
    shift
    exec python -m mkdocs serve --strict "$@"
fi
exec python -m mkdocs build --strict "$@"
