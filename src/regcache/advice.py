"""What to do about the common registry failures: the fix, in the words of the settings that hold it.

Each function takes what the failing command said and returns a sentence to append to the warning or
error, or "" when the failure is not one it knows.
"""

from __future__ import annotations

import re

_DENIED = re.compile(r"\b(401|403)\b|unauthori[sz]ed|denied|forbidden|insufficient_scope", re.IGNORECASE)


def denied(text: str) -> bool:
    return bool(_DENIED.search(text))


def _ghcr(host: str) -> bool:
    return host == "ghcr.io"


def write_denied(host: str, error: str) -> str:
    if not denied(error):
        return ""
    if _ghcr(host):
        return (" The token may not push to this package: give the job `permissions: packages: write`, and "
                "in the package's settings (Manage Actions access) give this repository the Write role. A "
                "pull request from a fork always gets a read-only token; regcache never writes for one.")
    return f" The token given as github-token may not push to {host}: give it write access to the repository."


def read_denied(host: str, error: str) -> str:
    if not denied(error):
        return ""
    if _ghcr(host):
        return (" The token may not read this package: a private package needs `permissions: packages: read` "
                "and, in the package's settings (Manage Actions access), this repository at least the Read role.")
    return f" The token given as github-token may not read from {host}."


def login_refused(host: str, username: str, error: str) -> str:
    if _ghcr(host):
        return (f" On ghcr.io the user is the workflow's actor (registry-username, now {username!r}) and the "
                "password `${{ github.token }}` (github-token) or a personal access token with write:packages.")
    if denied(error):
        return f" Check registry-username ({username!r}) and github-token for {host}."
    return ""
