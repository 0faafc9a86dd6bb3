#!/usr/bin/env bash
# Fetch the cross-file eval's held-out repositories: the source distribution of exactly the
# versions in covey_eval.repo.HELD_OUT_PACKAGES (sources and tests), unpacked into DEST/NAME,
# so that `covey eval run --suite repo --repo DEST/NAME --holes cross-file` reproduces the
# figures. Training never reads these packages (covey_training.packages.DEFAULT_EXCLUDE).
#   scripts/fetch-heldout-repos.sh .covey-home/heldout
# PYTHON picks the interpreter (default: the project's .venv, where covey is installed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:?usage: scripts/fetch-heldout-repos.sh DEST   (e.g. .covey-home/heldout)}"
python="${PYTHON:-$here/.venv/bin/python}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

packages="$("$python" -c 'from covey_eval.repo import HELD_OUT_PACKAGES as P
for name, held in P.items(): print(name, held.version)')"
while read -r name version; do
  "$python" -m pip download --quiet --no-deps --no-binary :all: -d "$tmp/$name" \
    "$name==$version" >&2
  archive="$(ls "$tmp/$name"/*)"
  mkdir -p "$tmp/$name/unpacked"
  case "$archive" in
    *.zip) "$python" -m zipfile -e "$archive" "$tmp/$name/unpacked" ;;
    *) tar -xf "$archive" -C "$tmp/$name/unpacked" ;;
  esac
  rm -rf "${dest:?}/$name"
  mv "$tmp/$name/unpacked"/* "$dest/$name"   # the sdist's one top folder, NAME-VERSION
  sha="$(sha256sum "$archive" | cut -d' ' -f1)"
  echo "$dest/$name  $name $version  $(basename "$archive") sha256:$sha"
done <<< "$packages"
