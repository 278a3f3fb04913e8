"""A fault-injecting HTTP reverse proxy on 127.0.0.1, in front of a real registry (LocalRegistry).

Usage::

    with LocalRegistry(tmp / "reg", username="ci", password="pw") as reg, FaultProxy(reg.url) as proxy:
        proxy.host                    # "localhost:PORT": use it as the cache registry
        proxy.set(Fault.answer(503))  # every request answers 503
        proxy.set(Fault.answer(403, methods=WRITES))   # export denied
        proxy.set(Fault.hang())       # accept, never answer (each request held at most max_hold seconds)
        proxy.set(Fault.garbage_manifest())            # manifests are not JSON
        proxy.set(Fault.unknown_media_type())          # every mediaType in a manifest is one nobody knows
        proxy.die()                   # stop listening; every open connection is dropped
        proxy.counts["PUT"], proxy.writes             # requests received, per method
        proxy.received_from("regcache")               # the requests one client sent (by User-Agent), in order

In pass-through mode every request goes to the upstream registry: all headers but the hop-by-hop ones
(Authorization included), bodies streamed as they come (Content-Length or chunked), responses streamed
back, and ``Location`` headers that name the upstream rewritten to name the proxy. A request the upstream
cannot be reached for answers 502. Corrupted manifests are served consistently: the digest and length the
proxy announces (HEAD, Docker-Content-Digest) are those of the corrupted body, and a GET by that digest
returns it, so a client sees a well-formed exchange that carries a bad document.

Clients of a localhost registry first try TLS; the proxy answers a ClientHello at once with a plain-HTTP 400,
as a plain-HTTP registry does, so they fall back to http (in every mode, "hang" included). Nothing waits
forever: a held request is dropped after ``max_hold`` seconds, when the fault changes, or
when the proxy stops; upstream requests time out after ``max_hold`` seconds too.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})
READS = frozenset({"GET", "HEAD"})
MAX_HOLD = 120.0
CHUNK = 64 * 1024
MAX_DRAIN = 1 << 30  # a faulted request's body is read and dropped, up to this many bytes

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "expect", "host", "content-length"})
UNKNOWN_MEDIA_TYPE = "application/vnd.regcache.test.unknown.v1+json"
GARBAGE = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"dig'
_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)")
# A registry serves a manifest under /blobs/<digest> too; clients fetch a document of a type they do not
# know as a manifest from there.
_CONTENT_PATH = re.compile(r"^/v2/(?P<repo>.+)/(?:manifests|blobs)/(?P<ref>sha256:[0-9a-f]{64})")
_ERROR_CODES = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NAME_UNKNOWN", 429: "TOOMANYREQUESTS"}


@dataclass(frozen=True)
class Fault:
    """What the proxy does to the requests it matches (methods, and a path substring); others pass."""

    mode: str = "pass"          # pass | status | hang | garbage-manifest | unknown-media-type
    status: int = 0             # for mode "status"
    methods: frozenset[str] | None = None  # None: every method
    path_contains: str = ""

    @classmethod
    def passthrough(cls) -> Fault:
        return cls()

    @classmethod
    def answer(cls, code: int, *, methods: frozenset[str] | None = None, path_contains: str = "") -> Fault:
        return cls("status", code, methods, path_contains)

    @classmethod
    def hang(cls, *, methods: frozenset[str] | None = None, path_contains: str = "") -> Fault:
        return cls("hang", 0, methods, path_contains)

    @classmethod
    def garbage_manifest(cls) -> Fault:
        return cls("garbage-manifest", 0, READS, "/manifests/")

    @classmethod
    def unknown_media_type(cls) -> Fault:
        return cls("unknown-media-type", 0, READS, "/manifests/")

    def matches(self, method: str, path: str) -> bool:
        if self.mode == "pass":
            return False
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_contains in path


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    outcome: str   # "502", "200", ..., "held", "dropped"


@dataclass(frozen=True)
class Received:
    """A request as it arrived, before any fault: who sent it (User-Agent) and what it asked for."""

    method: str
    path: str
    agent: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, proxy: FaultProxy):
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)


class FaultProxy:
    def __init__(self, upstream: str, *, max_hold: float = MAX_HOLD):
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.max_hold = max_hold
        self.fault = Fault()
        self.counts: Counter[str] = Counter()     # requests received, per method
        self.records: list[Record] = []
        self.received: list[Received] = []        # every request, in the order it arrived
        self._lock = threading.Lock()
        self._release = threading.Event()         # set: every held request lets go
        self._stopped = threading.Event()
        self._held = 0
        self._fakes: dict[str, tuple[bytes, str]] = {}   # digest -> (body, content type) of corrupted manifests
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # -- addresses -------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        if self.port is None:
            raise RuntimeError("FaultProxy is not started")
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control ---------------------------------------------------------------------------------------
    def set(self, fault: Fault) -> None:
        """Switch the fault; requests held by the previous one are dropped."""
        with self._lock:
            self.fault = fault
            old, self._release = self._release, threading.Event()
        old.set()

    @property
    def writes(self) -> int:
        with self._lock:
            return sum(self.counts[m] for m in WRITES)

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    def count(self, method: str) -> int:
        with self._lock:
            return self.counts[method]

    def received_from(self, agent: str) -> list[Received]:
        """The requests whose User-Agent starts with agent ("regcache": the action's own registry client;
        "docker/": the docker CLI; "containerd/" or "buildkit/": BuildKit)."""
        with self._lock:
            return [r for r in self.received if r.agent.startswith(agent)]

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.records.clear()
            self.received.clear()

    def wait_until(self, predicate, timeout: float, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"faultproxy-{self.port}", daemon=True)
        self._thread.start()
        return self

    def die(self) -> None:
        """Stop listening and drop every open connection (held requests included): the registry is gone."""
        server, self._server = self._server, None
        self._stopped.set()
        self._release.set()
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    stop = die

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler ---------------------------------------------------------------------------
    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.records.append(Record(method, path, outcome))

    def _received(self, method: str, path: str, agent: str, conn: socket.socket) -> Fault:
        with self._lock:
            self.counts[method] += 1
            self.received.append(Received(method, path, agent))
            self._connections.add(conn)
            return self.fault

    def _hold(self) -> None:
        with self._lock:
            self._held += 1
            release = self._release
        try:
            deadline = time.monotonic() + self.max_hold
            while not release.is_set() and not self._stopped.is_set() and time.monotonic() < deadline:
                release.wait(0.1)
        finally:
            with self._lock:
                self._held -= 1


def _retype(doc: object) -> object:
    """Every mediaType in the document, its own and its descriptors', becomes one nobody knows.

    Changing only the top-level one is no fault: BuildKit reads an index by its fields, whatever it says it
    is. With the descriptors retyped, no cache config can be found in it.
    """
    if isinstance(doc, dict):
        return {k: (UNKNOWN_MEDIA_TYPE if k == "mediaType" else _retype(v)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_retype(v) for v in doc]
    return doc


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = MAX_HOLD + 30   # an idle keep-alive connection is closed after this

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence the stderr log
        pass

    def handle_one_request(self) -> None:
        # Clients of a localhost registry try https first and fall back to http when the answer to their
        # ClientHello starts with "HTTP/" (containerd's httpFallback). Answer it at once, as a plain-HTTP Go
        # server does, instead of waiting for a request line that never comes.
        try:
            first = self.rfile.peek(1)[:1]
        except (OSError, ValueError):
            self.close_connection = True
            return
        if first == b"\x16":
            self.close_connection = True
            try:
                self.wfile.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            return
        super().handle_one_request()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.proxy._lock:
                self.server.proxy._connections.discard(self.connection)

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- request body ----------------------------------------------------------------------------------
    def _body(self) -> tuple[Iterator[bytes] | None, int | None]:
        """The request body as a stream of chunks, and its length when it was given (None: chunked)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(), None
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return None, 0
        return self._limited(length), length

    def _limited(self, length: int) -> Iterator[bytes]:
        left = length
        while left > 0:
            data = self.rfile.read(min(CHUNK, left))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            left -= len(data)
            yield data

    def _chunked(self) -> Iterator[bytes]:
        while True:
            line = self.rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537).strip():   # trailers, then the empty line
                    pass
                return
            left = size
            while left > 0:
                data = self.rfile.read(min(CHUNK, left))
                if not data:
                    raise ConnectionError("client closed the connection mid-chunk")
                left -= len(data)
                yield data
            self.rfile.readline(3)   # the CRLF after the chunk

    def _drain(self) -> None:
        body, _ = self._body()
        total = 0
        for data in body or ():
            total += len(data)
            if total > MAX_DRAIN:
                self.close_connection = True
                return

    # -- dispatch --------------------------------------------------------------------------------------
    def _handle(self) -> None:
        proxy = self.server.proxy
        method, path = self.command, self.path
        fault = proxy._received(method, path, self.headers.get("User-Agent", ""), self.connection)
        try:
            if proxy._stopped.is_set():
                self._drop(method, path)
            elif fault.matches(method, path):
                self._fault(fault, method, path)
            elif (m := _CONTENT_PATH.match(path)) and method in READS and m.group("ref") in proxy._fakes:
                body, ctype = proxy._fakes[m.group("ref")]
                self._manifest(method, path, body, ctype, m.group("ref"))
            else:
                self._forward(method, path)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def _drop(self, method: str, path: str) -> None:
        self.server.proxy._record(method, path, "dropped")
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fault(self, fault: Fault, method: str, path: str) -> None:
        proxy = self.server.proxy
        if fault.mode == "hang":
            proxy._record(method, path, "held")
            proxy._hold()
            self._drop(method, path)
        elif fault.mode == "status":
            self._drain()
            self._error(method, path, fault.status)
        elif fault.mode in ("garbage-manifest", "unknown-media-type"):
            self._corrupt_manifest(fault.mode, method, path)
        else:
            raise ValueError(f"unknown fault mode {fault.mode!r}")

    def _error(self, method: str, path: str, status: int) -> None:
        code = _ERROR_CODES.get(status, "UNAVAILABLE" if status == 503 else "UNKNOWN")
        body = json.dumps({"errors": [{"code": code, "message": f"faultproxy: injected {status}",
                                       "detail": None}]}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="faultproxy"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        self.server.proxy._record(method, path, str(status))

    # -- corrupt manifests -----------------------------------------------------------------------------
    def _corrupt_manifest(self, mode: str, method: str, path: str) -> None:
        proxy = self.server.proxy
        m = _MANIFEST_PATH.match(path)
        if m and m.group("ref") in proxy._fakes:
            body, ctype = proxy._fakes[m.group("ref")]
            self._manifest(method, path, body, ctype, m.group("ref"))
            return
        conn = self._upstream()
        try:
            conn.request("GET", path, headers=self._forward_headers())
            resp = conn.getresponse()
            original = resp.read()
            if resp.status != 200:
                self._send_upstream(method, path, resp.status, resp.getheaders(), original)
                return
            ctype = resp.getheader("Content-Type", "application/vnd.oci.image.index.v1+json")
        finally:
            conn.close()
        if mode == "garbage-manifest":
            body = GARBAGE
        else:
            try:
                doc = json.loads(original)
            except ValueError:
                doc = {"schemaVersion": 2}
            body, ctype = json.dumps(_retype(doc)).encode(), UNKNOWN_MEDIA_TYPE
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with proxy._lock:
            proxy._fakes[digest] = (body, ctype)
        self._manifest(method, path, body, ctype, digest)

    def _manifest(self, method: str, path: str, body: bytes, ctype: str, digest: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Docker-Content-Digest", digest)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        self.server.proxy._record(method, path, "200-corrupt")

    # -- pass-through ----------------------------------------------------------------------------------
    def _upstream(self) -> http.client.HTTPConnection:
        proxy = self.server.proxy
        return http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.max_hold)

    def _forward_headers(self) -> dict[str, str]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
        return headers

    def _forward(self, method: str, path: str) -> None:
        body, length = self._body()
        headers = self._forward_headers()
        if length is not None:
            headers["Content-Length"] = str(length)
        conn = self._upstream()
        try:
            try:
                # An iterable body without Content-Length is sent chunked by http.client.
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
            except OSError:
                # The registry is gone (refused, reset, timed out): answer as a gateway would.
                self._drain_rest(body)
                self._error(method, path, 502)
                self.close_connection = True
                return
            self._stream_back(method, path, resp)
        finally:
            conn.close()

    @staticmethod
    def _drain_rest(body: Iterator[bytes] | None) -> None:
        try:
            for _ in body or ():
                pass
        except (ConnectionError, OSError, ValueError):
            pass

    def _rewrite_location(self, value: str) -> str:
        proxy = self.server.proxy
        parts = urlsplit(value)
        if parts.netloc and parts.port == proxy.upstream_port and parts.hostname in ("127.0.0.1", "localhost"):
            own = self.headers.get("Host") or proxy.host
            return value.replace(f"{parts.scheme}://{parts.netloc}", f"http://{own}", 1)
        return value

    def _response_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for key, value in headers:
            low = key.lower()
            if low in HOP_BY_HOP:
                continue
            if low == "location":
                value = self._rewrite_location(value)
            out.append((key, value))
        return out

    def _send_upstream(self, method: str, path: str, status: int, headers: list[tuple[str, str]],
                       body: bytes) -> None:
        self.send_response(status)
        for key, value in self._response_headers(headers):
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        self.server.proxy._record(method, path, str(status))

    def _stream_back(self, method: str, path: str, resp: http.client.HTTPResponse) -> None:
        self.send_response(resp.status)
        for key, value in self._response_headers(resp.getheaders()):
            self.send_header(key, value)
        no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        length = resp.getheader("Content-Length")
        if no_body:
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
        elif length is not None:
            self.send_header("Content-Length", length)
            self.end_headers()
            while data := resp.read(CHUNK):
                self.wfile.write(data)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := resp.read1(CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.write(b"0\r\n\r\n")
        if resp.getheader("Connection", "").lower() == "close":
            self.close_connection = True
        self.server.proxy._record(method, path, str(resp.status))
