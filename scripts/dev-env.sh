#!/usr/bin/env bash
# Create (or refresh) .venv with regcache's pinned runtime and test dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { echo "dev-env: python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
fi
stamp=.venv/.regcache-deps
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -r requirements-test.txt
  echo "$want" > "$stamp"
fi
