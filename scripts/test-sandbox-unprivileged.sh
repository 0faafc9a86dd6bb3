#!/usr/bin/env bash
# Run the sandbox escape tests (tests/unit/test_sandbox.py) as an unprivileged user, the way
# Covey runs for most people; CI runs the rest of the suite as root. Needs root, to switch.
#
#   scripts/test-sandbox-unprivileged.sh [pytest args]
# Environment: COVEY_PYTHON (default .venv/bin/python), SANDBOX_USER (default nobody),
# PYTHONPATH (passed on). Nothing is written into the checkout: no cache, no bytecode,
# pytest's temporary files and the test home go to a fresh directory under /tmp.
#
# When the interpreter or the checkout lies under a directory the user cannot enter (pyenv in
# /root), the run happens in a private mount namespace where that directory is an empty
# tmpfs with only those paths bound back in: the rest of it stays hidden, nothing changes
# outside the namespace.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${COVEY_PYTHON:-$ROOT/.venv/bin/python}"
RUN_AS="${SANDBOX_USER:-nobody}"
log() { echo "test-sandbox-unprivileged: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (to switch to $RUN_AS)"; exit 1; }

work="$(mktemp -d /tmp/covey-unprivileged-XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir "$work/home"
chown "$RUN_AS" "$work/home"

# Paths the user must reach: the checkout, the venv, the interpreter's installation.
base_prefix="$("$PY" -c 'import sys; print(sys.base_prefix)')"
venv="$(cd "$(dirname "$PY")/.." && pwd)"
needed=("$ROOT" "$venv" "$base_prefix")
IFS=: read -r -a extra <<< "${PYTHONPATH:-}"
needed+=("${extra[@]}")

can_enter() { runuser -u "$RUN_AS" -- test -x "$1"; }
# For each needed path, the outermost ancestor the user cannot enter (if any).
hidden=()
for path in "${needed[@]}"; do
  [ -n "$path" ] || continue
  dir=""
  IFS=/ read -r -a parts <<< "${path#/}"
  for part in "${parts[@]}"; do
    dir="$dir/$part"
    if ! can_enter "$dir"; then hidden+=("$dir|$path"); break; fi
  done
done

cat > "$work/run.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
work="$1"; shift
mapfile -t HIDDEN <<< "$HIDDEN_LIST"
i=0
for pair in "${HIDDEN[@]}"; do    # stage every needed path before any tmpfs hides it
  [ -n "$pair" ] || continue
  mkdir -p "$work/stage/$i"; mount --bind "${pair#*|}" "$work/stage/$i"; i=$((i + 1))
done
declare -A covered=()
for pair in "${HIDDEN[@]}"; do
  [ -n "$pair" ] || continue
  top="${pair%%|*}"
  [ -n "${covered[$top]:-}" ] || { mount -t tmpfs -o mode=755,size=1m tmpfs "$top"; covered[$top]=1; }
done
i=0
for pair in "${HIDDEN[@]}"; do
  [ -n "$pair" ] || continue
  mkdir -p "${pair#*|}"; mount --bind "$work/stage/$i" "${pair#*|}"; i=$((i + 1))
done
exec "$@"
EOF
chmod 755 "$work/run.sh"

cmd=(runuser -u "$RUN_AS" -- env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8
     HOME="$work/home" COVEY_TEST_HOME="$work/home/covey" PYTHONDONTWRITEBYTECODE=1
     PYTHONPATH="${PYTHONPATH:-}"
     "$PY" -m pytest tests/unit/test_sandbox.py -p no:cacheprovider
     --basetemp "$work/home/pytest" -q "$@")
cd "$ROOT"
log "as $RUN_AS: tests/unit/test_sandbox.py (unprivileged user namespaces: $(
  runuser -u "$RUN_AS" -- unshare -rn true 2>/dev/null && echo allowed || echo refused))"
if [ "${#hidden[@]}" -eq 0 ]; then
  "${cmd[@]}"
else
  log "exposing to $RUN_AS in a private mount namespace: ${hidden[*]#*|}"
  HIDDEN_LIST="$(printf '%s\n' "${hidden[@]}")" \
    unshare --mount --propagation private "$work/run.sh" "$work" "${cmd[@]}"
fi
