#!/usr/bin/env bash
# Regenerate requirements.txt (the action image's exact runtime lock) from pyproject.toml's pins.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
deps=$(python3 -c 'import tomllib;print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))')
# shellcheck disable=SC2086
"$tmp/venv/bin/pip" install -q $deps
{ echo "# Runtime lock for the action image: exact versions of the three dependencies in pyproject.toml"
  echo "# and everything they pull in. Regenerate with: scripts/lock.sh"
  "$tmp/venv/bin/pip" freeze; } > requirements.txt
