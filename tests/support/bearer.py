"""A Bearer-token front for a real registry, as ghcr.io does it: a token endpoint plus a guard.

GET /token?service=..&scope=.. issues a token for that scope (with valid Basic credentials, or anonymously
for pull scopes when `anonymous_pull`). Requests to /v2/... need `Authorization: Bearer <token>` whose
scope covers the repository and action; they are then forwarded to the real registry with its Basic creds.
"""

from __future__ import annotations

import base64
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import requests


class BearerFront:
    def __init__(self, upstream: str, upstream_auth: tuple[str, str], *, username: str, password: str,
                 anonymous_pull: bool = True):
        self.upstream, self.upstream_auth = upstream, upstream_auth
        self.username, self.password, self.anonymous_pull = username, password, anonymous_pull
        self.tokens: dict[str, set[str]] = {}   # token -> scopes it grants
        self.token_requests: list[dict[str, str]] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _token(self) -> None:
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                front.token_requests.append(query)
                scope = query.get("scope", "")
                auth = self.headers.get("Authorization", "")
                good = "Basic " + base64.b64encode(f"{front.username}:{front.password}".encode()).decode()
                if auth != good and not (front.anonymous_pull and scope.endswith(":pull") and not auth):
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                token = secrets.token_hex(16)
                front.tokens[token] = set(scope.split(" "))
                self._send(200, f'{{"token":"{token}"}}'.encode(), {"Content-Type": "application/json"})

            def _v2(self) -> None:
                path = urlparse(self.path).path
                parts = path.split("/")
                repo = "/".join(parts[2:-2]) if len(parts) > 4 else ""
                action = "pull" if self.command in ("GET", "HEAD") else "pull,push"
                scope = f"repository:{repo}:{action}" if repo else ""
                auth = self.headers.get("Authorization", "")
                granted = front.tokens.get(auth.removeprefix("Bearer "), set()) if auth.startswith("Bearer ") else None
                needed = {f"repository:{repo}:{a}" for a in action.split(",")} if repo else set()
                if granted is None or not all(
                        any(g == n or g == f"repository:{repo}:pull,push" for g in granted) for n in needed):
                    realm = f"http://127.0.0.1:{front.port}/token"
                    challenge = f'Bearer realm="{realm}",service="test-registry"'
                    if scope:
                        challenge += f',scope="{scope}"'
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"Www-Authenticate": challenge})
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "content-type")}
                r = requests.request(self.command, front.upstream + self.path, headers=headers, data=body,
                                     auth=front.upstream_auth, timeout=30)
                passthrough = {k: v for k, v in r.headers.items()
                               if k.lower() in ("content-type", "docker-content-digest", "location")}
                self._send(r.status_code, r.content, passthrough)

            def do_GET(self):
                (self._token if self.path.startswith("/token") else self._v2)()

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _v2

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def __enter__(self) -> BearerFront:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
