"""The registry client against the real registry (Basic auth) and a Bearer token front (as ghcr.io)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.registry import free_port
from regcache.registry import Manifest, RegistryClient, RegistryError
from tests.integration.conftest import PASSWORD, USER
from tests.support.bearer import BearerFront

pytestmark = pytest.mark.integration

INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def no_sleep(_seconds: float) -> None:
    pass


def seed(client: RegistryClient, repo: str, tag: str) -> str:
    return client.put_manifest(repo, tag, Manifest(INDEX_TYPE, "", json.dumps(INDEX).encode()))


def test_basic_auth_head_get_put_and_copy(registry):
    client = RegistryClient(registry.host, username=USER, password=PASSWORD)
    assert client.manifest_digest("client/basic", "none") is None
    digest = seed(client, "client/basic", "one")
    assert digest.startswith("sha256:")
    assert client.manifest_digest("client/basic", "one") == digest
    got = client.get_manifest("client/basic", "one")
    assert (got.media_type, got.digest, json.loads(got.body)) == (INDEX_TYPE, digest, INDEX)
    assert client.copy_tag("client/basic", "one", "moving") == digest
    assert registry.manifest_digest("client/basic", "moving") == digest


def test_wrong_or_missing_credentials_are_answers_not_retries(registry):
    calls = []
    client = RegistryClient(registry.host, username=USER, password="wrong", sleep=calls.append)
    with pytest.raises(RegistryError) as e:
        client.manifest_digest("client/basic", "one")
    assert e.value.status == 401 and calls == []
    with pytest.raises(RegistryError, match="401"):
        RegistryClient(registry.host).manifest_digest("client/basic", "one")


def test_unreachable_registry_is_retried_then_an_error():
    waits = []
    client = RegistryClient(f"localhost:{free_port()}", retries=2, backoff=0.1, sleep=waits.append)
    with pytest.raises(RegistryError, match="ConnectionError"):
        client.manifest_digest("x/y", "z")
    assert waits == [0.1, 0.2]


def test_5xx_and_429_are_retried_with_backoff():
    answers = [503, 429, 500, 200]

    class Flaky(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_HEAD(self):
            self.send_response(answers.pop(0))
            self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        waits = []
        client = RegistryClient(f"localhost:{server.server_address[1]}", sleep=waits.append)
        assert client.manifest_digest("x/y", "z") == "sha256:" + "0" * 64
        assert waits == [0.5, 1.0, 2.0] and answers == []
    finally:
        server.shutdown()
        server.server_close()


def test_hanging_registry_times_out(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)   # accepts connections, never answers
    try:
        client = RegistryClient(f"localhost:{listener.getsockname()[1]}", timeout=0.5, retries=1, sleep=no_sleep)
        with pytest.raises(RegistryError, match="Timeout"):
            client.manifest_digest("x/y", "z")
    finally:
        listener.close()


def test_bearer_challenge_with_credentials_and_anonymously(registry):
    with BearerFront(registry.url, (USER, PASSWORD), username="bot", password="tok-1") as front:
        client = RegistryClient(front.host, username="bot", password="tok-1")
        digest = seed(client, "client/bearer", "one")
        assert client.manifest_digest("client/bearer", "one") == digest
        assert client.copy_tag("client/bearer", "one", "two") == digest
        assert {q["scope"] for q in front.token_requests} >= {"repository:client/bearer:pull,push",
                                                               "repository:client/bearer:pull"}
        # Anonymous pulls get a token too (public packages on ghcr.io); pushes do not.
        anonymous = RegistryClient(front.host)
        assert anonymous.manifest_digest("client/bearer", "one") == digest
        with pytest.raises(RegistryError):
            seed(anonymous, "client/bearer", "three")
        # A wrong token cannot get a push token.
        with pytest.raises(RegistryError, match="401"):
            seed(RegistryClient(front.host, username="bot", password="nope"), "client/bearer", "four")
