#!/usr/bin/env bash
# Set up .venv/ (idempotent) and run the main job: a reinforced and a ground-truth GSM8K bank built
# with the embedded model, then a many-shot evaluation of both. Extra arguments go to `manyshot run`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec "$root/.venv/bin/manyshot" run "$@"
