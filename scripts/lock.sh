#!/usr/bin/env bash
# Regenerate the runtime locks from pyproject.toml's pins:
# - requirements.txt: the three dependencies and everything pip installs with them (the development venv);
# - requirements-image.txt: what the action image installs (pip --no-deps): the same pins, less what only
#   modules regcache never imports need. actions-toolkit requires PyGithub for actions_toolkit.github alone
#   (regcache imports actions_toolkit.command), and PyGithub brings PyJWT, PyNaCl, cryptography, cffi and
#   pycparser: 25 MB the image does not carry.
set -euo pipefail
cd "$(dirname "$0")/.."
LEAVE_OUT=PyGithub   # required by a dependency, imported only by its modules that regcache never imports
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
deps=$(python3 -c 'import tomllib;print("\n".join(tomllib.load(open("pyproject.toml","rb"))["project"]["dependencies"]))')
# shellcheck disable=SC2086
"$tmp/venv/bin/pip" install -q $deps
"$tmp/venv/bin/pip" freeze > "$tmp/freeze.txt"
{ echo "# Runtime lock: exact versions of the three dependencies in pyproject.toml and everything they pull in."
  echo "# Regenerate with: scripts/lock.sh (it writes requirements-image.txt too)."
  cat "$tmp/freeze.txt"; } > requirements.txt
# The image's set: the closure of the dependencies over Requires-Dist (extras left out) that does not enter
# LEAVE_OUT, in requirements.txt's pins.
# shellcheck disable=SC2086
image=$("$tmp/venv/bin/python" - "$tmp/freeze.txt" "$LEAVE_OUT" $deps <<'PY'
import importlib.metadata as md
import re
import sys


def name(requirement):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


freeze, leave_out, roots = sys.argv[1], {name(n) for n in sys.argv[2].split()}, sys.argv[3:]
todo, keep = [name(root) for root in roots], set()
while todo:
    package = todo.pop()
    if package not in keep and package not in leave_out:
        keep.add(package)
        todo += [name(req) for req in md.requires(package) or [] if "extra ==" not in req]
print("\n".join(line.strip() for line in open(freeze) if name(line) in keep))
PY
)
{ echo "# The action image's runtime lock, installed with pip --no-deps: requirements.txt's pins less"
  echo "# $LEAVE_OUT and what only it needs (scripts/lock.sh says why). Regenerate with: scripts/lock.sh"
  echo "$image"; } > requirements-image.txt
