"""A small client for the registry HTTP API v2: what regcache needs to know what exists before it builds.

Basic and Bearer challenges both work (the local test registry asks for Basic, ghcr.io for a Bearer token
from its realm). Every call has a timeout; 429, 5xx and connection errors are retried a bounded number of
times with backoff; 401, 403 and 404 are answers, never retried.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import requests

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
RETRY_STATUSES = (429, 500, 502, 503, 504)


class RegistryError(Exception):
    """The registry could not answer (after retries), or refused: the message says which and why."""

    def __init__(self, message: str, status: int | None = None, timeout: bool = False):
        self.status = status
        self.timeout = timeout    # the registry accepted the connection but did not answer in time
        super().__init__(message)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    digest: str
    body: bytes


def _plain_http(host: str) -> bool:
    # Docker and BuildKit allow plain HTTP for loopback registries only; so do we.
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in ("localhost", "127.0.0.1", "[::1]")


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class RegistryClient:
    def __init__(self, host: str, *, username: str = "", password: str = "", timeout: float = 15.0,
                 retries: int = 3, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        self.host = host
        self.base = f"{'http' if _plain_http(host) else 'https'}://{host}"
        self._auth = (username or "regcache", password) if password else None
        self.timeout, self.retries, self.backoff, self._sleep = timeout, retries, backoff, sleep
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "regcache"
        self._tokens: dict[str, str] = {}   # scope -> bearer token
        self._basic = False                 # the registry asked for Basic auth

    # -- transport --------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        for attempt in range(self.retries + 1):
            try:
                response = self._session.request(method, url, timeout=self.timeout, allow_redirects=True,
                                                 **kwargs)
            except requests.Timeout as e:
                # A registry that hangs does not recover within a retry's backoff: one wait is enough.
                raise RegistryError(f"{method} {url}: no answer within {self.timeout:.0f}s ({type(e).__name__})",
                                    timeout=True) from None
            except requests.RequestException as e:
                if attempt == self.retries:
                    raise RegistryError(f"{method} {url}: {type(e).__name__}: {_short(e)}") from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                    return response
            self._sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, scope: str, headers: dict[str, str] | None = None,
                 data: bytes | None = None) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.base}{path}"
        headers = dict(headers or {})
        response = self._send(method, url, headers={**headers, **self._auth_header(scope)}, data=data)
        if response.status_code == 401 and "www-authenticate" in response.headers:
            scheme, params = _challenge(response.headers["www-authenticate"])
            if scheme == "basic" and self._auth and not self._basic:
                self._basic = True
            elif scheme == "bearer" and params.get("error") != "insufficient_scope":
                # No token yet, or the one we have expired (a build can outlast it): get one, once.
                self._tokens[scope] = self._fetch_token(params, scope)
            else:
                return response
            response = self._send(method, url, headers={**headers, **self._auth_header(scope)}, data=data)
        return response

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic and self._auth:
            pair = f"{self._auth[0]}:{self._auth[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise RegistryError("the registry asked for a Bearer token without saying where to get it (no realm)")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        response = self._send("GET", realm, params=query, auth=self._auth)
        if response.status_code != 200:
            raise RegistryError(f"token request to {realm} for {query['scope']!r} failed: HTTP "
                                f"{response.status_code}", response.status_code)
        try:
            body = response.json()
            return body.get("token") or body["access_token"]
        except (ValueError, KeyError):
            raise RegistryError(f"token endpoint {realm} answered without a token") from None

    # -- API --------------------------------------------------------------------------------------------
    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag points at, or None when it does not exist."""
        response = self._request("HEAD", f"/v2/{repository}/manifests/{reference}", _pull(repository),
                                 {"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            return None
        _check(response, f"HEAD {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest") or ""

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        response = self._request("GET", f"/v2/{repository}/manifests/{reference}", _pull(repository),
                                 {"Accept": ", ".join(MANIFEST_TYPES)})
        if response.status_code == 404:
            return None
        _check(response, f"GET {repository}:{reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(media_type, response.headers.get("Docker-Content-Digest", ""), response.content)

    def get_blob(self, repository: str, digest: str, limit: int = 4 << 20) -> bytes:
        """A small blob (a cache config, a record): refused when larger than limit bytes."""
        response = self._request("GET", f"/v2/{repository}/blobs/{digest}", _pull(repository))
        _check(response, f"GET {repository}@{digest}")
        if len(response.content) > limit:
            raise RegistryError(f"{repository}@{digest} is larger than {limit} bytes")
        return response.content

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> str:
        """Tag an existing manifest again: its blobs are already there, so nothing is uploaded."""
        response = self._request("PUT", f"/v2/{repository}/manifests/{tag}", _push(repository),
                                 {"Content-Type": manifest.media_type}, data=manifest.body)
        _check(response, f"PUT {repository}:{tag}")
        return response.headers.get("Docker-Content-Digest", "")

    def put_blob(self, repository: str, digest: str, data: bytes) -> None:
        """Upload a small blob unless the repository has it (a monolithic upload: POST, then one PUT)."""
        scope = _push(repository)
        if self._request("HEAD", f"/v2/{repository}/blobs/{digest}", scope).status_code == 200:
            return
        started = self._request("POST", f"/v2/{repository}/blobs/uploads/", scope)
        _check(started, f"POST {repository} blob upload")
        location = urljoin(f"{self.base}/v2/{repository}/blobs/uploads/", started.headers.get("Location", ""))
        separator = "&" if "?" in location else "?"
        done = self._request("PUT", f"{location}{separator}digest={digest}", scope,
                             {"Content-Type": "application/octet-stream"}, data=data)
        _check(done, f"PUT {repository}@{digest}")

    def list_tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """Every tag of the repository, following the registry's pagination (Link: <...>; rel="next")."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        while path:
            response = self._request("GET", path, _pull(repository))
            if response.status_code == 404:
                return tags
            _check(response, f"GET {repository} tags")
            try:
                tags += response.json().get("tags") or []
            except ValueError:
                raise RegistryError(f"GET {repository} tags: the registry answered with no JSON") from None
            following = response.links.get("next", {}).get("url")
            path = urljoin(f"{self.base}/", following) if following else None
        return tags

    def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete a manifest (and so every tag on it). A manifest already gone is no error."""
        response = self._request("DELETE", f"/v2/{repository}/manifests/{digest}", _delete(repository))
        if response.status_code == 405:
            raise RegistryError(f"DELETE {repository}@{digest}: HTTP 405: this registry does not allow deleting "
                                "manifests (the Distribution registry: set storage.delete.enabled: true)", 405)
        if response.status_code != 404:
            _check(response, f"DELETE {repository}@{digest}")

    def copy_tag(self, repository: str, source: str, tag: str) -> str:
        manifest = self.get_manifest(repository, source)
        if manifest is None:
            raise RegistryError(f"{repository}:{source} does not exist", 404)
        return self.put_manifest(repository, tag, manifest)


def _pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def _push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def _delete(repository: str) -> str:
    return f"repository:{repository}:delete"


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 400:
        reason = {401: "unauthorized (no or wrong credentials)", 403: "denied (the token lacks the permission)",
                  429: "rate limited"}.get(response.status_code, response.reason or "error")
        if response.status_code == 401 and 'error="insufficient_scope"' in response.headers.get("www-authenticate", ""):
            reason = "denied (insufficient_scope: the token lacks the permission)"
        raise RegistryError(f"{what}: HTTP {response.status_code} {reason}", response.status_code)


def _short(e: Exception) -> str:
    text = str(e)
    return text if len(text) < 300 else text[:300] + "..."


class RegistryClients:
    """One client per registry host, made on first use, with the run's credentials."""

    def __init__(self, username: str, password: str):
        self._username, self._password = username, password
        self._clients: dict[str, RegistryClient] = {}

    def __call__(self, host: str) -> RegistryClient:
        if host not in self._clients:
            self._clients[host] = RegistryClient(host, username=self._username, password=self._password)
        return self._clients[host]
