#!/usr/bin/env python3
"""Point action.yml at a published image, pinned by digest, for a release commit.

    scripts/release_action.py ghcr.io/owner/regcache@sha256:<64 hex> [--action action.yml]

On the main branch action.yml says `image: Dockerfile`, so every job that uses a branch of this repository
builds the image first. A release commit names the pushed image instead, by digest, so jobs pull it, and
what runs is exactly what was built and pushed. The change is one value on one line: the `image:` key of
the top-level `runs:` block, written as this repository's action files write it (two spaces in). The rest
of the line (a comment, the line ending) and of the file stays as it was; release.yml checks with
`git diff` that one line of each file changed.

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

_RUNS_RE = re.compile(r"^runs:[ \t]*(?:#[^\n]*)?\r?\n", re.M)  # the block starts here...
_TOP_KEY_RE = re.compile(r"^[^\s#]", re.M)                  # ...and ends at the next top-level entry
# runs' own keys, two spaces in: the value, then an optional comment and the line's "\r" (if CRLF).
_USING_RE = re.compile(r"^  using:[ \t]*(?P<value>[^\s#]*)", re.M)
_IMAGE_RE = re.compile(r"^  image:[ \t]*(?P<value>[^\s#][^\r\n]*?)?(?:[ \t]+#[^\r\n]*)?\r?$", re.M)


class ReleaseError(Exception):
    """action.yml or the image reference cannot be used; the message says why."""


def check_pinned_ref(ref: str) -> str:
    ref = ref.strip().removeprefix("docker://")
    if not PINNED_REF_RE.match(ref):
        raise ReleaseError(f"{ref!r} is not an image reference pinned by digest: expected "
                           "REGISTRY/OWNER/NAME[:TAG]@sha256:<64 lowercase hex>, the repository in lowercase")
    return ref


def _runs_image(text: str) -> tuple[int, int]:
    """Where the value of runs.image is in ``text`` (start, end); refused unless there is exactly one."""
    runs = _RUNS_RE.search(text)
    if runs is None:
        raise ReleaseError("action.yml has no top-level 'runs:' mapping")
    end = _TOP_KEY_RE.search(text, runs.end())
    block = (runs.end(), end.start() if end else len(text))
    using = _USING_RE.search(text, *block)
    if using is None:
        raise ReleaseError("runs has no 'using:' key two spaces in (this script edits this repository's "
                           "action files, which indent runs' keys by two spaces)")
    if using["value"].strip("'\"") != "docker":
        raise ReleaseError(f"runs.using is {using['value']!r}: only a docker container action has runs.image")
    found = list(_IMAGE_RE.finditer(text, *block))
    if len(found) != 1:
        raise ReleaseError("runs.image is missing" if not found else "runs.image appears more than once")
    value = found[0]["value"]
    if not value or value[0] in "|>":
        raise ReleaseError("runs.image must be a one-line value")
    return found[0].span("value")


def rewrite_runs_image(text: str, image: str) -> str:
    """Return ``text`` with the value of ``runs.image`` replaced by ``image``; nothing else changes.

    ``image`` is written as a plain YAML scalar, so it must be one (e.g. ``docker://host/repo@sha256:...``
    or ``Dockerfile``). A trailing comment on the line is kept.
    """
    if not image or image != image.strip() or any(c in image for c in "\n\r#'\"") or ": " in image:
        raise ReleaseError(f"{image!r} cannot be written as a plain YAML value")
    start, end = _runs_image(text)
    return text[:start] + image + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image", help="the pushed image, pinned: ghcr.io/owner/regcache@sha256:<digest>")
    parser.add_argument("--action", type=Path, default=Path(__file__).resolve().parents[1] / "action.yml",
                        help="the action.yml to rewrite in place [this repository's]")
    args = parser.parse_args(argv)
    try:
        ref = check_pinned_ref(args.image)
        try:
            text = args.action.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ReleaseError(f"{args.action} is not UTF-8: {e}") from None
        start, end = _runs_image(text)
        new = rewrite_runs_image(text, f"docker://{ref}")
    except (ReleaseError, OSError) as e:
        print(f"release_action: error: {e}", file=sys.stderr)
        return 2
    # newline="" keeps the file's own line endings.
    with open(args.action, "w", encoding="utf-8", newline="") as f:
        f.write(new)
    print(f"{args.action}: runs.image {text[start:end].strip(chr(39) + chr(34))} -> docker://{ref}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
