"""GitHub's Packages REST API for a container package: list its versions, delete one. ghcr.io deletes only
this way (its registry API has no DELETE).

Calls made (https://docs.github.com/rest/packages/packages):
- GET  /orgs/{org}/packages/container/{package}            (then /users/{owner}/... when that is 404)
- GET  {that}/versions?per_page=100&state=active           (pages followed through the Link header)
- DELETE {that}/versions/{version id}                      (204)
The package of `ghcr.io/owner/a/b` is `a/b`, URL-encoded. Deleting needs a token that may administer the
package: in a workflow, `permissions: packages: write` and, for a package linked to the repository, the
repository given the Admin role in the package's *Manage Actions access*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import requests

API_VERSION = "2022-11-28"


class PackagesError(Exception):
    """The API refused or could not answer: the message says what to fix."""


@dataclass(frozen=True)
class PackageVersion:
    id: int
    digest: str
    tags: tuple[str, ...]
    created: float | None


def _advice(status: int, what: str) -> str:
    if status == 401:
        return f"{what}: HTTP 401: the token is missing or invalid"
    if status == 403:
        return (f"{what}: HTTP 403: the token may not do this. In a workflow: `permissions: packages: write`, and "
                "in the package's settings, Manage Actions access, give this repository the Admin role")
    if status == 404:
        return (f"{what}: HTTP 404: no such package, or the token cannot see it (a private package needs "
                "`packages: read` and the repository given access to it)")
    return f"{what}: HTTP {status}"


class PackagesAPI:
    def __init__(self, api_url: str, token: str, owner: str, package: str, timeout: float = 30.0):
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                                      "User-Agent": "regcache"})
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._api, self._owner, self._package, self._timeout = api_url.rstrip("/"), owner, package, timeout
        self._base = ""

    def _call(self, method: str, url: str, what: str, ok: tuple[int, ...] = (200,)) -> requests.Response:
        try:
            response = self._session.request(method, url, timeout=self._timeout)
        except requests.RequestException as e:
            raise PackagesError(f"{what}: {type(e).__name__}: {e}") from None
        if response.status_code not in ok:
            raise PackagesError(_advice(response.status_code, what))
        return response

    def base(self) -> str:
        """The package's URL, for an organization's package or a user's."""
        if not self._base:
            package = quote(self._package, safe="")
            for kind in ("orgs", "users"):
                url = f"{self._api}/{kind}/{self._owner}/packages/container/{package}"
                response = self._call("GET", url, f"GET {url}", ok=(200, 404))
                if response.status_code == 200:
                    self._base = url
                    break
            else:
                raise PackagesError(_advice(404, f"container package {self._package!r} of {self._owner!r}"))
        return self._base

    def versions(self) -> list[PackageVersion]:
        out = []
        url: str | None = f"{self.base()}/versions?per_page=100&state=active"
        while url:
            response = self._call("GET", url, f"GET {url}")
            try:
                for item in response.json():
                    tags = (item.get("metadata") or {}).get("container", {}).get("tags") or []
                    out.append(PackageVersion(int(item["id"]), str(item["name"]), tuple(map(str, tags)),
                                              _time(item.get("created_at"))))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise PackagesError(f"GET {url}: not a list of package versions ({type(e).__name__})") from None
            url = response.links.get("next", {}).get("url")
        return out

    def delete(self, version: PackageVersion) -> None:
        url = f"{self.base()}/versions/{version.id}"
        self._call("DELETE", url, f"DELETE {url} ({version.digest})", ok=(204, 404))


def _time(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
