#!/usr/bin/env bash
# Set up .venv/ (idempotent) and run the whole test suite, real-engine end-to-end tests included.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
export MANYSHOT_DATA_DIR="${MANYSHOT_DATA_DIR:-$(cd "$root/.." && pwd)/shared/data}"
# -m "" lifts the fast-suite default of pyproject.toml (not engine, not server): this runs everything.
exec "$root/.venv/bin/python" -m pytest -m "" "$@"
