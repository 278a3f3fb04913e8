"""ghcr.io's auth scheme on 127.0.0.1: Distribution with ``auth: token`` and a token server made by the tests.

Usage::

    accounts = {"writer": Account("W", {"app/cache": PULL_PUSH}), "reader": Account("R", {"*": PULL})}
    with TokenServer(accounts, anonymous={"*": PULL}) as tokens, \\
            TokenRegistry(tmp_path / "reg", tokens) as reg:
        reg.host                      # "localhost:PORT": docker, BuildKit and regcache use it
        tokens.requests               # every token request: who, GET or POST, scopes asked and granted
        reg.requests()                # every request that reached the registry (its own access log)
        reg.manifest("app/cache", "buildcache")   # the LocalRegistry queries work, with minted tokens

The registry answers ``401`` with ``Www-Authenticate: Bearer realm="http://127.0.0.1:P/token",
service=…,scope="repository:NAME:pull,push"`` as ghcr.io does. The token server (a thread of the test
process) authenticates the client and grants the scopes asked for, cut down to what the account may do:
the intersection, never an error, as the token specification says (ghcr.io does the same; the registry then
refuses the request the token does not cover). It serves both ways clients ask:

- ``GET /token?service=…&scope=…&scope=…`` with optional Basic credentials (the docker CLI and dockerd's
  ``docker login``, regcache's registry client, anonymous BuildKit pulls); answers ``token``/``access_token``;
- ``POST /token`` with an OAuth2 form (``grant_type=password`` with ``username``/``password``, or
  ``grant_type=refresh_token``), which containerd and BuildKit try first when they have credentials; answers
  ``access_token``, and a ``refresh_token`` when the form says ``access_type=offline``.

With ``identity_tokens=True`` a GET with ``offline_token=true`` (``docker login``) also gets a refresh token,
as Docker Hub does: the CLI then stores it as ``identitytoken`` and BuildKit later uses the refresh grant.

How Distribution 2.8 (Debian's docker-registry 2.8.2) checks the JWT (registry/auth/token/token.go, checked
here): ``iss`` must equal the configured issuer and ``aud`` the configured service (a *string*: a JSON list
is "malformed token" in 2.8), ``exp``/``nbf`` within 60 s of leeway, then the signing key comes from the
header, in this order: ``x5c`` (a certificate chain verified against ``rootcertbundle``; a self-signed
certificate that is itself in the bundle verifies), ``jwk``, or ``kid`` (looked up among the bundle's keys by
their *libtrust* key ID: base32 of the first 30 bytes of SHA-256 over the DER public key, in 12 groups of
4 characters joined by ":"; Distribution 3 uses the RFC 7638 thumbprint instead). The signature is then
checked with that key (RS256/ES256 and friends). ``header="x5c"`` (the default) or ``header="kid"`` picks
which the server sends; both work with 2.8.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.registry import LocalRegistry

PULL = frozenset({"pull"})
PULL_PUSH = frozenset({"pull", "push"})
WRITE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
SERVICE = "regcache-test-registry"
ISSUER = "regcache-test-token-issuer"
TOKEN_TTL = 300   # seconds, as ghcr.io's tokens


# -- keys ----------------------------------------------------------------------------------------------------

def libtrust_key_id(public_key: Any) -> str:
    """The key ID Distribution 2.8 gives a rootcertbundle key (docker/libtrust keyIDFromCryptoKey)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


@dataclass(frozen=True)
class SigningKey:
    """An EC P-256 key and the self-signed certificate the registry trusts (its rootcertbundle)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls, common_name: str = ISSUER) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
        return cls(key, certificate)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_id(self) -> str:
        return libtrust_key_id(self.key.public_key())

    @property
    def x5c(self) -> list[str]:
        return [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]

    def sign(self, claims: Mapping[str, Any], header: str = "x5c") -> str:
        if header == "x5c":
            headers: dict[str, Any] = {"x5c": self.x5c}
        elif header == "kid":
            headers = {"kid": self.key_id}
        else:
            raise ValueError(f"header must be 'x5c' or 'kid', not {header!r}")
        return jwt.encode(dict(claims), self.key, algorithm="ES256", headers=headers)


# -- accounts and scopes ---------------------------------------------------------------------------------------

Grants = Mapping[str, frozenset[str]]   # repository name pattern (fnmatch) -> actions allowed there


@dataclass(frozen=True)
class Account:
    password: str
    grants: Grants


def parse_scope(scope: str) -> tuple[str, str, tuple[str, ...]] | None:
    """("repository", "app/cache", ("pull", "push")) for "repository:app/cache:pull,push"; None if malformed."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return None
    return re.sub(r"\(.*\)$", "", kind), name, tuple(a for a in actions.split(",") if a)


def allowed_actions(grants: Grants, kind: str, name: str) -> frozenset[str]:
    if kind != "repository":
        return frozenset()
    allowed: set[str] = set()
    for pattern, actions in grants.items():
        if fnmatch.fnmatchcase(name, pattern):
            allowed |= actions
    return frozenset(allowed)


def grant(grants: Grants, asked: Iterable[str]) -> list[dict[str, Any]]:
    """The token's ``access`` claim: each scope asked, cut down to what the grants allow (dropped if nothing)."""
    access: dict[tuple[str, str], list[str]] = {}
    for scope in asked:
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        kind, name, actions = parsed
        allowed = allowed_actions(grants, kind, name)
        wanted = sorted(allowed) if "*" in actions else [a for a in actions if a in allowed]
        if wanted:
            have = access.setdefault((kind, name), [])
            have.extend(a for a in wanted if a not in have)
    return [{"type": kind, "name": name, "actions": actions} for (kind, name), actions in access.items()]


def scope_strings(access: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)


def actions_in(scopes: Iterable[str]) -> set[str]:
    """Every action named in these scope strings: {"pull", "push"}."""
    found: set[str] = set()
    for scope in scopes:
        parsed = parse_scope(scope)
        if parsed:
            found.update(parsed[2])
    return found


# -- the token server ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenRequest:
    method: str                 # GET | POST
    grant_type: str             # "" for a GET; "password" | "refresh_token" | what the client sent
    user: str | None            # the account it authenticated as; None: anonymous (or refused)
    status: int                 # 200, or 401 (bad credentials), 400 (unsupported grant)
    asked: tuple[str, ...]      # scopes asked for, as sent
    granted: tuple[str, ...]    # scopes in the token issued
    service: str
    client_id: str
    user_agent: str
    refresh_token: bool = False   # a refresh token was handed out
    params: Mapping[str, str] = field(default_factory=dict)   # the other query/form fields, secrets left out

    @property
    def asked_actions(self) -> set[str]:
        return actions_in(self.asked)

    @property
    def granted_actions(self) -> set[str]:
        return actions_in(self.granted)


class TokenServer:
    """A token endpoint on 127.0.0.1 (a thread of the test process) that grants scopes per account."""

    def __init__(self, accounts: Mapping[str, Account], *, anonymous: Grants | None = None,
                 service: str = SERVICE, issuer: str = ISSUER, ttl: int = TOKEN_TTL, header: str = "x5c",
                 identity_tokens: bool = False, signing_key: SigningKey | None = None):
        self.accounts = dict(accounts)
        self.anonymous: Grants = anonymous or {}
        self.service, self.issuer, self.ttl, self.header = service, issuer, ttl, header
        self.identity_tokens = identity_tokens
        self.signing_key = signing_key or SigningKey.generate(issuer)
        self._lock = threading.Lock()
        self._records: list[TokenRequest] = []
        self._refresh: dict[str, str] = {}   # refresh token -> account
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
        self._server.daemon_threads = True
        self._server.token_server = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"token-server-{self.port}", daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def mint(self, access: list[dict[str, Any]], subject: str = "regcache-test-admin") -> str:
        """A token signed like the ones the server issues, made without a request (for the tests' own queries)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + self.ttl,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(16), "access": access}
        return self.signing_key.sign(claims, self.header)

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    # -- used by the handler ---------------------------------------------------------------------------
    def _record(self, request: TokenRequest) -> None:
        with self._lock:
            self._records.append(request)

    def _authenticate(self, username: str, password: str) -> str | None:
        account = self.accounts.get(username)
        if account is not None and secrets.compare_digest(account.password, password):
            return username
        return None

    def _new_refresh_token(self, user: str) -> str:
        token = f"refresh-{secrets.token_hex(20)}"
        with self._lock:
            self._refresh[token] = user
        return token

    def _user_of_refresh_token(self, token: str) -> str | None:
        with self._lock:
            return self._refresh.get(token)

    def _grants_of(self, user: str | None) -> Grants:
        return self.accounts[user].grants if user is not None else self.anonymous


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    @property
    def tokens(self) -> TokenServer:
        return self.server.token_server  # type: ignore[attr-defined]

    def _send_json(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, code: str, message: str) -> None:
        headers = {"WWW-Authenticate": f'Basic realm="{self.tokens.realm}"'} if status == 401 else {}
        self._send_json(status, {"errors": [{"code": code, "message": message}], "error": code.lower(),
                                 "error_description": message}, headers)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path != "/token":
            return self._refuse(404, "NOT_FOUND", f"no {url.path} here")
        query = parse_qs(url.query, keep_blank_values=True)
        asked = tuple(s for value in query.get("scope", []) for s in value.split(" ") if s)
        user: str | None = None
        auth = self.headers.get("Authorization", "")
        if auth:
            scheme, _, value = auth.partition(" ")
            try:
                username, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                username = password = ""
            user = self.tokens._authenticate(username, password) if scheme.lower() == "basic" else None
            if user is None:
                self._log("GET", "", None, 401, asked, (), query)
                return self._refuse(401, "UNAUTHORIZED", "incorrect username or password")
        offline = query.get("offline_token", [""])[0].lower() == "true"
        self._issue("GET", "", user, asked, query, refresh=offline and self.tokens.identity_tokens and bool(user))

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length > 0 else ""
        if url.path != "/token":
            return self._refuse(404, "NOT_FOUND", f"no {url.path} here")
        form = parse_qs(body, keep_blank_values=True)
        asked = tuple(s for value in form.get("scope", []) for s in value.split(" ") if s)
        grant_type = form.get("grant_type", [""])[0]
        if grant_type == "password":
            user = self.tokens._authenticate(form.get("username", [""])[0], form.get("password", [""])[0])
        elif grant_type == "refresh_token":
            user = self.tokens._user_of_refresh_token(form.get("refresh_token", [""])[0])
        else:
            self._log("POST", grant_type, None, 400, asked, (), form)
            return self._refuse(400, "UNSUPPORTED_GRANT_TYPE", f"grant_type {grant_type!r} is not supported")
        if user is None:
            self._log("POST", grant_type, None, 401, asked, (), form)
            return self._refuse(401, "UNAUTHORIZED", "incorrect username, password or refresh token")
        offline = form.get("access_type", [""])[0] == "offline"
        self._issue("POST", grant_type, user, asked, form, refresh=offline)

    def _issue(self, method: str, grant_type: str, user: str | None, asked: tuple[str, ...],
               fields: Mapping[str, list[str]], refresh: bool) -> None:
        tokens = self.tokens
        access = grant(tokens._grants_of(user), asked)
        now = int(time.time())
        claims = {"iss": tokens.issuer, "sub": user or "", "aud": tokens.service, "exp": now + tokens.ttl,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(16), "access": access}
        token = tokens.signing_key.sign(claims, tokens.header)
        issued_at = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {"access_token": token, "expires_in": tokens.ttl, "issued_at": issued_at}
        if method == "GET":
            body["token"] = token
        else:
            body.update(token_type="Bearer", scope=" ".join(scope_strings(access)))
        if refresh and user is not None:
            body["refresh_token"] = tokens._new_refresh_token(user)
        self._log(method, grant_type, user, 200, asked, scope_strings(access), fields, refresh=refresh)
        self._send_json(200, body)

    def _log(self, method: str, grant_type: str, user: str | None, status: int, asked: tuple[str, ...],
             granted: tuple[str, ...], fields: Mapping[str, list[str]], refresh: bool = False) -> None:
        secret = {"password", "refresh_token", "scope"}
        params = {k: v[0] for k, v in fields.items() if k not in secret}
        self.tokens._record(TokenRequest(
            method=method, grant_type=grant_type, user=user, status=status, asked=asked, granted=granted,
            service=fields.get("service", [""])[0], client_id=fields.get("client_id", [""])[0],
            user_agent=self.headers.get("User-Agent", ""), refresh_token=refresh, params=params))


# -- the registry ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegistryRequest:
    """One line of the registry's access log: a request that reached it, and its answer."""

    method: str
    path: str
    status: int
    user_agent: str

    @property
    def write(self) -> bool:
        return self.method in WRITE_METHODS


_ACCESS_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" '
                          r'(?P<status>\d{3}) \S+ "[^"]*" "(?P<agent>[^"]*)"')
_REPO_PATH = re.compile(r"^/v2/(?P<repo>.+?)/(?:manifests|blobs|tags)/")


class _MintedBearer(requests.auth.AuthBase):
    """The tests' own queries (LocalRegistry.manifest, tags, ...): a token minted for the repository in the URL."""

    def __init__(self, tokens: TokenServer):
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        match = _REPO_PATH.match(urlsplit(request.url or "").path)
        access = ([{"type": "repository", "name": match.group("repo"), "actions": ["pull", "push", "delete"]}]
                  if match else [])
        request.headers["Authorization"] = f"Bearer {self.tokens.mint(access)}"
        return request


class TokenRegistry(LocalRegistry):
    """LocalRegistry with ``auth: token`` trusting ``tokens``' certificate, and its access log kept for asserts."""

    def __init__(self, root: Path, tokens: TokenServer):
        super().__init__(root)
        self.tokens = tokens
        self._session.auth = _MintedBearer(tokens)

    @property
    def rootcertbundle_path(self) -> Path:
        return self.root / "token-issuer.pem"

    def _log_lines(self) -> list[str]:
        return ["log:",
                "  level: info",        # the reasons a token is refused ("token signed by untrusted key ...")
                "  formatter: json"]    # one JSON object a line; the access log lines are the others

    def _auth_lines(self) -> list[str]:
        return ["auth:", "  token:",
                f'    realm: "{self.tokens.realm}"',
                f'    service: "{self.tokens.service}"',
                f'    issuer: "{self.tokens.issuer}"',
                f'    rootcertbundle: "{self.rootcertbundle_path}"']

    def _write_config(self, port: int) -> None:
        self.rootcertbundle_path.write_bytes(self.tokens.signing_key.certificate_pem)
        super()._write_config(port)

    def requests(self) -> list[RegistryRequest]:
        """Every request that reached the registry so far, from its access log (written as each completes)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            if match := _ACCESS_LINE.match(line):
                found.append(RegistryRequest(match["method"], match["path"], int(match["status"]), match["agent"]))
        return found

    def refusals(self) -> list[str]:
        """The registry's reasons for refusing tokens, from its JSON log ("token signed by untrusted key ...")."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        reasons = []
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            msg = str(entry.get("msg", ""))
            if entry.get("level") == "warning" and msg.startswith("error authorizing context"):
                reasons.append(msg)
        return reasons
