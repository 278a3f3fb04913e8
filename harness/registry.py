"""A real CNCF Distribution registry (Debian's ``docker-registry``) for the tests.

Usage::

    with LocalRegistry(tmp_path / "reg", username="ci", password="secret") as reg:
        reg.host      # "localhost:PORT"  (docker/BuildKit allow plain HTTP to localhost)
        reg.url       # "http://127.0.0.1:PORT"
        reg.manifest("app/cache", "buildcache")

The registry listens on 127.0.0.1 only, keeps its blobs under ``root/data`` and writes its output to
``root/registry.log``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

REGISTRY_BIN = "docker-registry"
START_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
BIND_ATTEMPTS = 3

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def _pid_listens_on(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the listening socket on 127.0.0.1:``port`` (None: cannot tell)."""
    try:
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and local == f"0100007F:{port:04X}":
                inodes.add(f"socket:[{inode}]")
        if not inodes:
            return False
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return True
            except OSError:
                continue
        return False
    except (OSError, IndexError):
        return None


class LocalRegistry:
    def __init__(self, root: Path, *, username: str | None = None, password: str | None = None,
                 read_only: bool = False, deletion: bool = True):
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.read_only = read_only  # pulls work, every push is refused (as a token without write access)
        self.deletion = deletion    # DELETE of a manifest allowed (Distribution's storage.delete.enabled)
        self.root = Path(root)
        self.username = username
        self.password = password
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._http_secret = secrets.token_hex(16)
        self._session = requests.Session()
        if username is not None:
            self._session.auth = (username, password or "")

    # -- addresses -------------------------------------------------------------------------------------
    def _need_port(self) -> int:
        if self.port is None:
            raise RuntimeError("LocalRegistry is not started")
        return self.port

    @property
    def host(self) -> str:
        return f"localhost:{self._need_port()}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._need_port()}"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yml"

    @property
    def log_path(self) -> Path:
        return self.root / "registry.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def htpasswd_path(self) -> Path:
        return self.root / "htpasswd"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------------
    def _write_htpasswd(self) -> None:
        if shutil.which("htpasswd") is None:
            raise RuntimeError("htpasswd not found: apt-get install apache2-utils (scripts/setup-engine.sh)")
        out = subprocess.run(  # noqa: S603
            ["htpasswd", "-Bbn", self.username or "", self.password or ""],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
        self.htpasswd_path.write_bytes(out.strip() + b"\n")

    def _log_lines(self) -> list[str]:
        return ["log:", "  level: warn"]

    def _auth_lines(self) -> list[str]:
        if self.username is None:
            return []
        return ["auth:", "  htpasswd:", "    realm: regcache-test", f'    path: "{self.htpasswd_path}"']

    def _write_config(self, port: int) -> None:
        lines = [
            "version: 0.1",
            *self._log_lines(),
            "storage:",
            "  filesystem:",
            f'    rootdirectory: "{self.data_dir}"',
            "  delete:",
            f"    enabled: {'true' if self.deletion else 'false'}",
            *(["  maintenance:", "    readonly:", "      enabled: true"] if self.read_only else []),
            "http:",
            f'  addr: "127.0.0.1:{port}"',
            f'  secret: "{self._http_secret}"',  # silences the "No HTTP secret provided" warning
            *self._auth_lines(),
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> LocalRegistry:
        if self.running:
            return self
        if shutil.which(REGISTRY_BIN) is None:
            raise RuntimeError(
                f"{REGISTRY_BIN} not found: apt-get install docker-registry (or run scripts/setup-engine.sh)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        if self.username is not None:
            self._write_htpasswd()
        last_error = ""
        for _attempt in range(BIND_ATTEMPTS):
            port = free_port()
            self._write_config(port)
            self.port = port
            self._spawn()
            ok, last_error = self._wait_ready()
            if ok:
                return self
            self.stop()
            self.port = None
            if "address already in use" not in last_error.lower():
                break
        raise RuntimeError(f"docker-registry did not become ready: {last_error}")

    def _spawn(self) -> None:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._proc = subprocess.Popen(  # noqa: S603
            [REGISTRY_BIN, "serve", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            env=env,
        )

    def _wait_ready(self) -> tuple[bool, str]:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            rc = self._proc.poll()
            if rc is not None:
                return (
                    False,
                    f"process exited with code {rc}; log tail ({self.log_path}):\n{_log_tail(self.log_path)}",
                )
            try:
                r = requests.get(f"{self.url}/v2/", timeout=1)
                if r.status_code in (200, 401):
                    # Another process may hold the port (then ours exits with "address already in use").
                    owns = _pid_listens_on(self._proc.pid, self._need_port())
                    if owns is None or owns:
                        return True, ""
                    last = "another process answers on this port"
                    time.sleep(0.1)
                    continue
                last = f"GET /v2/ answered {r.status_code}"
            except requests.RequestException as e:
                last = f"GET /v2/ failed: {e.__class__.__name__}"
            time.sleep(0.1)
        return False, (
            f"no 200/401 from {self.url}/v2/ within {START_TIMEOUT:.0f}s ({last}); "
            f"log tail ({self.log_path}):\n{_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            if self._log_file is not None:
                try:
                    self._log_file.close()
                finally:
                    self._log_file = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; fixtures should call stop()
        try:
            self.stop()
        except Exception:  # noqa: BLE001, S110
            pass

    # -- queries ---------------------------------------------------------------------------------------
    def _get(self, path: str, **kw: Any) -> requests.Response:
        return self._session.get(f"{self.url}{path}", timeout=HTTP_TIMEOUT, **kw)

    def manifest(self, repo: str, ref: str) -> dict | None:
        r = self._get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT})
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def image_manifest(self, repo: str, ref: str) -> dict | None:
        """The manifest of the linux image a pull of ref takes: ref's own, or, for an index, its first linux
        entry's (not an attestation's, whose platform is unknown/unknown)."""
        manifest = self.manifest(repo, ref)
        for entry in (manifest or {}).get("manifests", []):
            if entry.get("platform", {}).get("os") == "linux":
                return self.manifest(repo, entry["digest"])
        return manifest

    def manifest_digest(self, repo: str, ref: str) -> str | None:
        r = self._session.head(
            f"{self.url}/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT}, timeout=HTTP_TIMEOUT
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers.get("Docker-Content-Digest")

    def tags(self, repo: str) -> list[str]:
        r = self._get(f"/v2/{repo}/tags/list")
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return list(r.json().get("tags") or [])

    def blob(self, repo: str, digest: str) -> bytes:
        r = self._get(f"/v2/{repo}/blobs/{digest}")
        r.raise_for_status()
        return r.content

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete a manifest by digest (the registry runs with deletion enabled), and so every tag on it."""
        r = self._session.delete(f"{self.url}/v2/{repo}/manifests/{digest}", timeout=HTTP_TIMEOUT)
        r.raise_for_status()

    def record_tag(self, repo: str, ref: str) -> str:
        """The tag of the record regcache leaves beside the cache at repo:ref (src/regcache/provenance.py)."""
        digest = self.manifest_digest(repo, ref)
        assert digest, f"no {repo}:{ref}"
        return "record-" + digest.replace(":", "-")
