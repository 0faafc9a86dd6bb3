#!/usr/bin/env bash
# Build the VS Code extension into editor-ext/covey.vsix (offline once npm ci has run).
#   scripts/build-extension.sh          # install deps if needed, package; prints the .vsix path
#   scripts/build-extension.sh --check  # also typecheck, lint and unit-test first
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../editor-ext"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
if [ "${1:-}" = "--check" ]; then
  npm run --silent lint >&2   # tsc --noEmit (strict) + eslint
  npm test >&2
fi
npm run --silent package >/dev/null
echo "$PWD/covey.vsix"
