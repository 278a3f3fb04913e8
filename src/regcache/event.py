"""The GitHub event this run is for: its name, ref and payload, read once from the runner's environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regcache.errors import EventError

# GitHub caps webhook payloads at 25 MB; anything bigger is not a real event file.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    name: str                      # GITHUB_EVENT_NAME, "" outside GitHub Actions
    ref: str                       # GITHUB_REF, e.g. refs/heads/auto
    repository: str                # GITHUB_REPOSITORY, owner/name
    payload: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: str = ""                 # GITHUB_EVENT_PATH, for error messages

    def error(self, problem: str) -> EventError:
        """An EventError that says which payload file is wrong and what is accepted."""
        where = f"GITHUB_EVENT_PATH={self.path}: " if self.path else ""
        return EventError(f"{where}{problem}; accepted: the webhook payload GitHub sends for a "
                          f"{self.name or 'workflow'} event")


def load_event(env: Mapping[str, str]) -> Event:
    """Read the event; inside GitHub Actions a missing or unreadable payload is an error, not a guess."""
    name = env.get("GITHUB_EVENT_NAME", "")
    path = env.get("GITHUB_EVENT_PATH", "")
    payload: Mapping[str, Any] = {}
    if path:
        payload = _read_payload(Path(path))
    elif env.get("GITHUB_ACTIONS") == "true":
        raise EventError("GITHUB_EVENT_PATH is not set: cannot tell what kind of build this is; "
                         "the GitHub runner always sets it, so set it to the event payload's JSON file")
    return Event(name=name, ref=env.get("GITHUB_REF", ""), repository=env.get("GITHUB_REPOSITORY", ""),
                 payload=payload, path=path)


def _read_payload(path: Path) -> Mapping[str, Any]:
    where = f"GITHUB_EVENT_PATH={path}"
    try:
        size = path.stat().st_size
        if size > MAX_PAYLOAD_BYTES:
            raise EventError(f"{where}: the event payload is {size} bytes, more than GitHub's "
                             f"{MAX_PAYLOAD_BYTES} byte limit; accepted: a webhook event payload (JSON object)")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except EventError:
        raise
    except OSError as e:
        raise EventError(f"{where}: cannot read the event payload: {e.strerror or e}; "
                         "accepted: a readable webhook event payload file (JSON object)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EventError(f"{where}: the event payload is not valid UTF-8 JSON ({e}); "
                         "accepted: a webhook event payload (JSON object)") from None
    except (ValueError, RecursionError) as e:
        # Absurd nesting or numbers: valid JSON text, but no payload GitHub sends.
        raise EventError(f"{where}: the event payload cannot be read as JSON ({type(e).__name__}); "
                         "accepted: a webhook event payload (JSON object)") from None
    if not isinstance(data, dict):
        raise EventError(f"{where}: the event payload is a JSON {type(data).__name__}, "
                         "accepted: a JSON object")
    return data
