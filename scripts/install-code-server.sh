#!/usr/bin/env bash
# Install what the VS Code end-to-end test needs: Debian's chromium and ripgrep,
# code-server 4.100.3 (the newest that runs on Node 20) and playwright-core.
# Idempotent: each step is skipped when its result is already there.
# Recipe and reasons: shared/TESTING.md, "VS Code through code-server".
#
# Usage: scripts/install-code-server.sh            # installs into $COVEY_CODE_SERVER_DIR
# Prints nothing else on success but "code-server: PATH".
set -euo pipefail

VERSION=4.100.3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${COVEY_CODE_SERVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/covey/code-server-$VERSION}"
BIN="$PREFIX/node_modules/.bin/code-server"

log() { echo "install-code-server: $*" >&2; }

# 1. System packages. libkrb5-dev and pkg-config let the kerberos module build from source.
need_apt=()
for pkg in chromium libkrb5-dev pkg-config ripgrep; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# 2. code-server. @vscode/ripgrep would download rg in its postinstall; seed its cache with
# Debian's rg so no download is attempted.
if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "^$VERSION "; then
  :
else
  cache="$(node -p 'require("os").tmpdir()')/vscode-ripgrep-cache-1.15.11"
  tarball="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$tarball" ]; then
    mkdir -p "$cache"
    tmp="$(mktemp -d)"; cp /usr/bin/rg "$tmp/rg"
    tar -C "$tmp" -czf "$tarball" rg; rm -rf "$tmp"
  fi
  log "npm install code-server@$VERSION into $PREFIX (a few minutes; argon2 builds from source)"
  mkdir -p "$PREFIX"
  [ -f "$PREFIX/package.json" ] || echo '{"name":"covey-code-server","private":true}' > "$PREFIX/package.json"
  ( cd "$PREFIX" && npm_config_yes=true npm_config_unsafe_perm=true npm_config_nodedir=/usr \
      npm install --no-audit --no-fund --foreground-scripts "code-server@$VERSION" >"$PREFIX/install.log" 2>&1 ) \
    || { log "npm install failed; see $PREFIX/install.log"; tail -20 "$PREFIX/install.log" >&2; exit 1; }
fi

# 3. The e2e driver's own dependencies (playwright-core; it never downloads a browser).
if [ ! -d "$ROOT/tests/editors/e2e_vscode/node_modules/playwright-core" ]; then
  log "npm ci in tests/editors/e2e_vscode"
  ( cd "$ROOT/tests/editors/e2e_vscode" && npm ci --no-audit --no-fund >/dev/null )
fi

echo "code-server: $BIN"
