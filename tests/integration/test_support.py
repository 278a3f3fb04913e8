"""Self-check of harness/: a real htpasswd-protected registry starts, answers, and stops cleanly."""

from __future__ import annotations

import os
import socket

import pytest
import requests

from harness.images import busybox_context
from harness.registry import LocalRegistry, free_port

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_free_port_is_bindable():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_auth_registry_starts_answers_and_stops(tmp_path):
    reg = LocalRegistry(tmp_path / "reg", username="ci", password="s3cret")
    with reg:
        assert reg.host == f"localhost:{reg.port}"
        assert reg.url == f"http://127.0.0.1:{reg.port}"
        pid = reg._proc.pid
        assert _alive(pid)

        config = (tmp_path / "reg" / "config.yml").read_text()
        assert f'addr: "127.0.0.1:{reg.port}"' in config
        assert "htpasswd:" in config
        assert (tmp_path / "reg" / "htpasswd").read_text().startswith("ci:$2y$")

        assert requests.get(f"{reg.url}/v2/", timeout=5).status_code == 401
        assert requests.get(f"{reg.url}/v2/", auth=("ci", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{reg.url}/v2/", auth=("ci", "s3cret"), timeout=5).status_code == 200

        # The helpers authenticate; nothing was pushed.
        assert reg.manifest("nothing/here", "latest") is None
        assert reg.manifest_digest("nothing/here", "latest") is None
        assert reg.tags("nothing/here") == []

    assert not reg.running
    assert not _alive(pid)
    assert not _port_open(reg.port)
    reg.stop()  # idempotent


def test_open_registry_answers_200(tmp_path):
    with LocalRegistry(tmp_path / "reg") as reg:
        assert requests.get(f"{reg.url}/v2/", timeout=5).status_code == 200
        assert "auth:" not in (tmp_path / "reg" / "config.yml").read_text()


def test_start_failure_is_reported(tmp_path):
    reg = LocalRegistry(tmp_path / "reg")
    (tmp_path / "reg").mkdir()
    reg._write_config = lambda port: (tmp_path / "reg" / "config.yml").write_text("version: [broken\n")
    with pytest.raises(RuntimeError, match="docker-registry did not become ready"):
        reg.start()
    assert not reg.running
    reg.stop()


def test_busybox_context(tmp_path):
    ctx = busybox_context(tmp_path / "ctx")
    assert (ctx / "busybox").stat().st_size > 100_000
    assert os.access(ctx / "busybox", os.X_OK)
