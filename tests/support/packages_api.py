"""A stand-in for GitHub's Packages REST API (container packages), over a real local registry.

Shaped from GitHub's documentation (https://docs.github.com/rest/packages/packages), not from GitHub itself:
- GET /orgs/{org}/packages/container/{package} and /users/{user}/... : 200, or 404 for an unknown owner kind;
- GET {package}/versions?per_page=&page= : the package's versions, newest first, each
  {id, name (the manifest digest), url, created_at, updated_at, metadata: {package_type: container,
  container: {tags}}}, `Link: <...>; rel="next"` while more pages follow (per_page at most 100);
- DELETE {package}/versions/{id}: 204, and the manifest is deleted from the registry; 404 for an unknown id;
- 401 without a token, 403 for a token that may read but not delete.
The package `owner/name` is the registry repository `owner/name`; versions and tags are read from the
registry on each listing, creation times are what the test sets (default: now).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from harness.registry import LocalRegistry


@dataclass
class PackagesStandIn:
    registry: LocalRegistry
    owner: str
    kind: str = "orgs"                                     # "orgs" or "users"
    tokens: dict[str, str] = field(default_factory=dict)   # token -> "admin" | "read"
    created: dict[str, float] = field(default_factory=dict)  # digest -> creation time
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _ids: dict[str, int] = field(default_factory=dict)
    _listed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # package -> versions, read once

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PackagesStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                stand_in._handle(self, "GET")

            def do_DELETE(self) -> None:  # noqa: N802
                stand_in._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- the package, read from the registry ------------------------------------------------------------
    def _versions(self, package: str) -> list[dict[str, Any]]:
        if package not in self._listed:
            self._listed[package] = self._read(package)
        return self._listed[package]

    def _read(self, package: str) -> list[dict[str, Any]]:
        by_digest: dict[str, list[str]] = {}
        for tag in self.registry.tags(f"{self.owner}/{package}"):
            digest = self.registry.manifest_digest(f"{self.owner}/{package}", tag)
            if digest:
                by_digest.setdefault(digest, []).append(tag)
        out = []
        for digest, tags in by_digest.items():
            version_id = self._ids.setdefault(digest, len(self._ids) + 1000)
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created.get(digest, time.time())))
            url = f"{self.url}/{self.kind}/{self.owner}/packages/container/{package}/versions/{version_id}"
            out.append({"id": version_id, "name": digest, "url": url,
                        "created_at": created, "updated_at": created,
                        "metadata": {"package_type": "container", "container": {"tags": sorted(tags)}}})
        return sorted(out, key=lambda v: (v["created_at"], v["id"]), reverse=True)

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        status, body, headers = self._answer(request, method, unquote(parts.path), parse_qs(parts.query))
        self.calls.append((method, request.path, status))
        data = b"" if status == 204 else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _answer(self, request: BaseHTTPRequestHandler, method: str, path: str,
                query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        auth = request.headers.get("Authorization", "")
        role = self.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
        if role is None:
            return 401, {"message": "Requires authentication"}, {}
        match = re.fullmatch(r"/(orgs|users)/([^/]+)/packages/container/(.+?)(/versions(?:/(\d+))?)?", path)
        if not match or match[1] != self.kind or match[2] != self.owner:
            return 404, {"message": "Not Found"}, {}
        package, versions, version_id = match[3], match[4], match[5]
        listed = self._versions(package)
        if not listed:
            return 404, {"message": "Package not found."}, {}
        if versions is None and method == "GET":
            return 200, {"id": 1, "name": package, "package_type": "container"}, {}
        if version_id is None and method == "GET":
            per_page = min(100, int(query.get("per_page", ["30"])[0]))
            page = int(query.get("page", ["1"])[0])
            chunk = listed[(page - 1) * per_page: page * per_page]
            headers = {}
            if page * per_page < len(listed):
                base = f"{self.url}/{self.kind}/{self.owner}/packages/container/{package}/versions"
                headers["Link"] = f'<{base}?per_page={per_page}&page={page + 1}>; rel="next"'
            return 200, chunk, headers
        if version_id is not None and method == "DELETE":
            if role != "admin":
                return 403, {"message": "You do not have permission to delete this package version"}, {}
            found = [v for v in listed if v["id"] == int(version_id)]
            if not found:
                return 404, {"message": "Package version not found."}, {}
            self.registry.delete_manifest(f"{self.owner}/{package}", found[0]["name"])
            listed.remove(found[0])
            return 204, None, {}
        return 404, {"message": "Not Found"}, {}
