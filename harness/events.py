"""Realistic GitHub webhook payloads, shaped like GitHub's webhook documentation, for tests and act runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
BASE_SHA = "9049f1265b7d61be4a8904a9a27120d2064dab3b"


def _user(login: str, uid: int) -> dict[str, Any]:
    return {"login": login, "id": uid, "node_id": f"MDQ6VXNlcj{uid}", "type": "User", "site_admin": False,
            "html_url": f"https://github.com/{login}"}


def repository(full_name: str = "rust-lang/rust", rid: int = 724712, fork: bool = False) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": rid, "node_id": f"MDEwOlJlcG9zaXRvcnk{rid}", "name": name, "full_name": full_name,
        "private": False, "owner": _user(owner, rid + 1), "html_url": f"https://github.com/{full_name}",
        "description": "A test repository", "fork": fork, "url": f"https://api.github.com/repos/{full_name}",
        "default_branch": "main", "visibility": "public",
    }


def push(branch: str, repo: str = "rust-lang/rust", ref: str | None = None) -> dict[str, Any]:
    commit = {"id": SHA, "tree_id": BASE_SHA, "distinct": True, "message": "Auto merge of #1 - bors",
              "timestamp": "2026-11-27T12:00:00Z", "url": f"https://github.com/{repo}/commit/{SHA}",
              "author": {"name": "bors", "email": "bors@rust-lang.org", "username": "bors"},
              "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
              "added": [], "removed": [], "modified": ["Dockerfile"]}
    return {
        "ref": ref or f"refs/heads/{branch}", "before": BASE_SHA, "after": SHA, "base_ref": None,
        "created": False, "deleted": False, "forced": True,
        "compare": f"https://github.com/{repo}/compare/{BASE_SHA[:12]}...{SHA[:12]}",
        "commits": [commit], "head_commit": commit,
        "repository": repository(repo), "pusher": {"name": "bors", "email": "bors@rust-lang.org"},
        "sender": _user("bors", 3372342),
    }


def pull_request(number: int = 42, *, head_repo: str | None = "rust-lang/rust", base_repo: str = "rust-lang/rust",
                 head_ref: str = "feature") -> dict[str, Any]:
    base = repository(base_repo)
    head = repository(head_repo, rid=991, fork=head_repo != base_repo) if head_repo else None
    author = (head_repo or "ghost/gone").split("/")[0]
    pr = {
        "url": f"https://api.github.com/repos/{base_repo}/pulls/{number}", "id": 1000 + number,
        "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==", "html_url": f"https://github.com/{base_repo}/pull/{number}",
        "number": number, "state": "open", "locked": False, "title": "Change the CI image",
        "user": _user(author, 77), "body": "Please review", "draft": False, "merged": False,
        "created_at": "2026-11-27T11:00:00Z", "updated_at": "2026-11-27T12:00:00Z",
        "head": {"label": f"{author}:{head_ref}", "ref": head_ref, "sha": SHA, "user": _user(author, 77),
                 "repo": head},
        "base": {"label": f"{base_repo.split('/')[0]}:main", "ref": "main", "sha": BASE_SHA,
                 "user": base["owner"], "repo": base},
        "author_association": "CONTRIBUTOR", "commits": 1, "additions": 3, "deletions": 1, "changed_files": 1,
    }
    return {"action": "synchronize", "number": number, "pull_request": pr, "before": BASE_SHA, "after": SHA,
            "repository": base, "sender": _user(author, 77)}


def merge_group(repo: str = "rust-lang/rust", number: int = 42) -> dict[str, Any]:
    return {
        "action": "checks_requested",
        "merge_group": {
            "head_sha": SHA, "head_ref": f"refs/heads/gh-readonly-queue/main/pr-{number}-{BASE_SHA}",
            "base_sha": BASE_SHA, "base_ref": "refs/heads/main",
            "head_commit": {"id": SHA, "tree_id": BASE_SHA, "message": f"Merge pull request #{number}",
                            "timestamp": "2026-11-27T12:00:00Z",
                            "author": {"name": "octocat", "email": "octocat@github.com"},
                            "committer": {"name": "GitHub", "email": "noreply@github.com"}},
        },
        "repository": repository(repo), "sender": _user("octocat", 583231),
    }


def workflow_dispatch(repo: str = "rust-lang/rust", ref: str = "refs/heads/main") -> dict[str, Any]:
    return {"inputs": {}, "ref": ref, "repository": repository(repo), "sender": _user("octocat", 583231),
            "workflow": ".github/workflows/ci.yml"}


def schedule(repo: str = "rust-lang/rust") -> dict[str, Any]:
    return {"schedule": "0 3 * * *", "repository": repository(repo), "workflow": ".github/workflows/ci.yml"}


def write(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload, indent=2))
    return path


def env_for(tmp: Path, event_name: str, payload: dict[str, Any], *, ref: str = "",
            repository_name: str = "rust-lang/rust") -> dict[str, str]:
    """The GITHUB_* variables the runner sets for an event, with the payload written to a file."""
    path = write(tmp / f"{event_name}.json", payload)
    if not ref:
        if event_name == "push":
            ref = payload["ref"]
        elif event_name.startswith("pull_request"):
            ref = f"refs/pull/{payload['number']}/merge"
        elif event_name == "merge_group":
            ref = payload["merge_group"]["head_ref"]
        else:
            ref = payload.get("ref", "refs/heads/main")
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REF": ref, "GITHUB_REPOSITORY": repository_name, "GITHUB_ACTOR": "bors",
            "GITHUB_WORKSPACE": str(tmp)}
