#!/usr/bin/env python3
"""Point action.yml at a published image, pinned by digest, for a release commit.

    scripts/release_action.py ghcr.io/owner/regcache@sha256:<64 hex> [--action action.yml]

On the main branch action.yml says `image: Dockerfile`, so every job that uses a branch of this repository
builds the image first. A release commit names the pushed image instead, by digest, so jobs pull it, and
what runs is exactly what was built and pushed. Only the `image:` line of the top-level `runs:` mapping
changes; every other byte of the file (comments, quoting, line endings) stays as it was.

A tag before the digest is kept (`ghcr.io/owner/regcache:v1.2.3@sha256:...`): docker pulls by the digest
and the tag tells a reader which release it is. Standard library only (and regcache's image_ref, for the
reference grammar): the release workflow runs it with the runner's python3.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# A lowercase repository (optional registry host), an optional tag, and a sha256 digest.
from regcache.image_ref import PINNED_RE as PINNED_REF_RE  # noqa: E402

_TOP_KEY_RE = re.compile(r"^[^\s#]")                  # a line that starts a new top-level entry
_RUNS_RE = re.compile(r"^runs:[ \t]*(?:#[^\r\n]*)?\r?\n?$")
_KEY_RE = re.compile(r"^(?P<indent>[ \t]+)(?P<key>[A-Za-z_-]+):(?P<sep>[ \t]*)(?P<value>.*?)(?P<eol>\r?\n|\r)?$")
_COMMENT_RE = re.compile(r"[ \t]+#.*$")


def _lines(text: str) -> list[str]:
    """Lines with their endings; only "\n" ends a line (str.splitlines would also split on \x0c, \u2028...)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


class ReleaseError(Exception):
    """action.yml or the image reference cannot be used; the message says why."""


def check_pinned_ref(ref: str) -> str:
    ref = ref.strip().removeprefix("docker://")
    if not PINNED_REF_RE.match(ref):
        raise ReleaseError(f"{ref!r} is not an image reference pinned by digest: expected "
                           "REGISTRY/OWNER/NAME[:TAG]@sha256:<64 lowercase hex>, the repository in lowercase")
    return ref


def rewrite_runs_image(text: str, image: str) -> str:
    """Return ``text`` with the value of ``runs.image`` replaced by ``image``; nothing else changes.

    ``image`` is written as a plain YAML scalar, so it must be one (e.g. ``docker://host/repo@sha256:...``
    or ``Dockerfile``). A trailing comment on the line is kept.
    """
    if not image or image != image.strip() or any(c in image for c in "\n\r#'\"") or ": " in image:
        raise ReleaseError(f"{image!r} cannot be written as a plain YAML value")
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if _RUNS_RE.match(line)), None)
    if start is None:
        raise ReleaseError("action.yml has no top-level 'runs:' mapping")
    child_indent = None
    found: list[int] = []
    using = None
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if _TOP_KEY_RE.match(line):
            break
        m = _KEY_RE.match(line)
        if not m:
            continue
        if child_indent is None:
            child_indent = m.group("indent")
        if m.group("indent") != child_indent:
            continue  # nested deeper (e.g. under runs.env), not a key of runs itself
        value = _COMMENT_RE.sub("", m.group("value"))
        if m.group("key") == "using":
            using = value.strip("'\"")
        elif m.group("key") == "image":
            found.append(i)
    if using != "docker":
        raise ReleaseError(f"runs.using is {using!r}: only a docker container action has runs.image")
    if len(found) != 1:
        raise ReleaseError("runs.image is missing" if not found else "runs.image appears more than once")
    i = found[0]
    m = _KEY_RE.match(lines[i])
    assert m is not None
    comment = _COMMENT_RE.search(m.group("value"))
    old_value = m.group("value")[: comment.start()] if comment else m.group("value")
    if not old_value.strip() or old_value.strip()[0] in "|>":
        raise ReleaseError("runs.image must be a one-line value")
    lines[i] = (f"{m.group('indent')}image:{m.group('sep') or ' '}{image}"
                f"{comment.group(0) if comment else ''}{m.group('eol') or ''}")
    return "".join(lines)


def runs_image(text: str) -> str:
    """The current value of runs.image, unquoted (for messages and checks)."""
    lines = _lines(text)
    start = next((i for i, line in enumerate(lines) if _RUNS_RE.match(line)), None)
    if start is None:
        return ""
    for line in lines[start + 1:]:
        if _TOP_KEY_RE.match(line):
            break
        m = _KEY_RE.match(line)
        if m and m.group("key") == "image":
            return _COMMENT_RE.sub("", m.group("value")).strip().strip("'\"")
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", help="the pushed image, pinned: ghcr.io/owner/regcache@sha256:<digest>")
    parser.add_argument("--action", type=Path, default=Path(__file__).resolve().parents[1] / "action.yml",
                        help="the action.yml to rewrite in place [this repository's]")
    args = parser.parse_args(argv)
    try:
        ref = check_pinned_ref(args.image)
        raw = args.action.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ReleaseError(f"{args.action} is not UTF-8: {e}") from None
        before = runs_image(text)
        new = rewrite_runs_image(text, f"docker://{ref}")
    except (ReleaseError, OSError) as e:
        print(f"release_action: error: {e}", file=sys.stderr)
        return 2
    # newline="" keeps the file's own line endings.
    with open(args.action, "w", encoding="utf-8", newline="") as f:
        f.write(new)
    print(f"{args.action}: runs.image {before} -> docker://{ref}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
