#!/usr/bin/env bash
# Set up everything the tests need (Python env, Neovim, code-server + Chromium, the
# extension's node modules, two real code tokenizers), then run lint, the Python suite and the extension's tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "test: $*" >&2; }

scripts/setup.sh
. .venv/bin/activate

if ! command -v nvim >/dev/null 2>&1; then
  log "apt-get install neovim"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends neovim >/dev/null
fi
scripts/install-code-server.sh
scripts/build-extension.sh
scripts/fetch-test-tokenizers.sh

log "ruff"
ruff check .
log "layers: imports point one way, no cycles"
python scripts/check_layers.py
log "extension: lint, unit tests"
(cd editor-ext && npm run --silent lint && npm test --silent)
log "pytest"
python -m pytest "$@"
if [ "$(id -u)" -eq 0 ]; then
  log "sandbox escape tests as an unprivileged user"
  scripts/test-sandbox-unprivileged.sh
fi
