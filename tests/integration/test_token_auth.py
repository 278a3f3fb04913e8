"""ghcr.io's auth scheme end to end: Distribution with ``auth: token`` and a token server made by the tests.

The registry answers ``401`` with a ``Bearer realm=…,service=…,scope=…`` challenge; the token server
(tests/support/token_registry.py) grants scopes per account as ghcr.io does: "writer" (the repository's own
token) may pull and push the cache repository, "reader" (a fork's token, or ``packages: read``) may only
pull, and anyone may pull anonymously (a public package). It serves the docker CLI's GET and the OAuth2 POST
that containerd/BuildKit try first, and records every token request; the registry's own access log records
every request that reached it, writes included.

- an auto run as "writer": ``docker login`` works, BuildKit pushes the cache, regcache's registry client
  moves the fallback ref with a Bearer token;
- a fork PR with the "reader" token, and a PR with no token at all: both read every step and send the
  registry no write request;
- an auto run whose token lacks push: the export is refused, the run warns and builds (cache-write false);
- Docker Hub's variant (``docker login`` answered with a refresh token, stored as ``identitytoken``): BuildKit
  then asks with ``grant_type=refresh_token``, and no identity token outlives the run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness import events
from harness.action import ActionRun, fallback_tag, run_action, sample_workspace
from tests.integration.test_action_real import clean_builder
from tests.support.token_registry import (
    PULL,
    PULL_PUSH,
    Account,
    RegistryRequest,
    SigningKey,
    TokenRegistry,
    TokenRequest,
    TokenServer,
)

pytestmark = pytest.mark.integration

WRITER_TOKEN = f"ghs_writer{secrets.token_hex(12)}"   # long and distinctive: masking it mangles no log line
READER_TOKEN = f"ghs_reader{secrets.token_hex(12)}"
CACHE_REPO = "tok/cache"               # the only repository "writer" may push to
PULL_ONLY_REPO = "tok/pull-only"       # where the auto run with the reader's token tries to write
AUTO = events.push("automation/bors/auto")
AUTO_SLUG = "automation-bors-auto"
FORK_PR = events.pull_request(head_repo="contributor/rust")
SAME_REPO_PR = events.pull_request()
ACCOUNTS = {
    "writer": Account(WRITER_TOKEN, {CACHE_REPO: PULL_PUSH, "*": PULL}),
    "reader": Account(READER_TOKEN, {"*": PULL}),
}
ANONYMOUS = {"*": PULL}   # a public package
# Other sessions build the same sample workspace on the same engines at the same time: layers of theirs in the
# builder would turn a cold build partial, or (ENVIRONMENT 5b) a max-mode export incomplete. A busybox with a
# nonce appended (a static ELF runs with trailing bytes) starts a layer chain that only this module builds.
CHAIN = secrets.token_hex(8)


@dataclass
class Ghcr:
    tokens: TokenServer
    registry: TokenRegistry

    @property
    def host(self) -> str:
        return self.registry.host


@dataclass
class Observed:
    """A run, and what the token server and the registry saw while it ran."""

    run: ActionRun
    tokens: list[TokenRequest]
    requests: list[RegistryRequest]
    docker_config: Path | None = None   # the user's docker config during the run

    @property
    def writes(self) -> list[RegistryRequest]:
        return [r for r in self.requests if r.write]

    def tokens_of(self, client: str) -> list[TokenRequest]:
        return [t for t in self.tokens if client_of(t) == client]


def client_of(t: TokenRequest) -> str:
    """Who asked: dockerd for `docker login`, BuildKit (containerd's resolver, through buildx), or regcache."""
    if t.user_agent == "regcache":
        return "regcache"
    if t.client_id == "docker":
        return "docker login"
    if t.client_id == "buildkit-client" or "containerd/" in t.user_agent:
        return "buildkit"
    return f"other ({t.user_agent})"


def observe(ghcr: Ghcr, action: Callable[[], ActionRun]) -> Observed:
    tokens_before, requests_before = len(ghcr.tokens.requests), len(ghcr.registry.requests())
    run = action()
    # The registry writes an access log line just after it answers: wait until the log stops growing.
    seen, deadline = -1, time.monotonic() + 5
    while (now := len(ghcr.registry.requests())) != seen and time.monotonic() < deadline:
        seen = now
        time.sleep(0.2)
    return Observed(run, ghcr.tokens.requests[tokens_before:], ghcr.registry.requests()[requests_before:])


def own_workspace(dest: Path, chain: str = CHAIN) -> Path:
    """The sample workspace (7 steps, 2 stages), every one of its layers this module's own."""
    ws = sample_workspace(dest)
    with open(ws / "busybox", "ab") as busybox:
        busybox.write(f"\0regcache-token-auth-{chain}\n".encode())
    return ws


def inputs(ghcr: Ghcr, repo: str, user: str | None, **extra: str) -> dict[str, str]:
    if user is None:
        return {"cache-image": f"{ghcr.host}/{repo}", "github-token": "", **extra}
    return {"cache-image": f"{ghcr.host}/{repo}", "registry-username": user,
            "github-token": ACCOUNTS[user].password, **extra}


def no_credential_left(run: ActionRun, docker_config: Path, host: str) -> list[str]:
    """What a run could leave behind: its own docker config (the login's home), a credential in the user's
    config, the builder it made."""
    problems = []
    private = run.state.get("docker_config")
    if not private:
        problems.append("the run saved no docker_config to GITHUB_STATE")
    elif Path(private).exists():
        problems.append(f"the run's docker config {private} is still there")
    config = docker_config / "config.json"
    if config.exists():
        text = config.read_text()
        if host in json.loads(text).get("auths", {}):
            problems.append(f"an auth entry for {host} in the user's docker config")
        for secret in (WRITER_TOKEN, READER_TOKEN, "refresh-"):
            if secret in text:
                problems.append("a token or identity token in the user's docker config")
    builder = run.state.get("builder")
    if builder:
        listed = subprocess.run(["docker", "buildx", "ls", "--format", "{{.Name}}"], capture_output=True,
                                text=True, timeout=60).stdout.split()
        if builder in listed:
            problems.append(f"the builder {builder} the run made is still there")
    return problems


def manifest_puts(o: Observed, repo: str) -> dict[str, tuple[int, str]]:
    """tag -> (status, user agent) of each manifest PUT to repo."""
    prefix = f"/v2/{repo}/manifests/"
    return {r.path.removeprefix(prefix): (r.status, r.user_agent)
            for r in o.writes if r.method == "PUT" and r.path.startswith(prefix)}


def user_docker_config(config: Path) -> Path:
    """A user docker config for a module-scoped run, made as the docker_config fixture makes one per test."""
    leg = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    if (leg / "buildx").exists():
        shutil.copytree(leg / "buildx", config / "buildx")
    if (leg / "cli-plugins").exists():
        (config / "cli-plugins").symlink_to(leg / "cli-plugins")
    return config


# -- fixtures ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ghcr(engine, tmp_path_factory):
    with TokenServer(ACCOUNTS, anonymous=ANONYMOUS) as tokens, \
            TokenRegistry(tmp_path_factory.mktemp("token-registry"), tokens) as registry:
        yield Ghcr(tokens, registry)


@pytest.fixture(scope="module")
def auto_write(ghcr, tmp_path_factory) -> Observed:
    """The auto run as "writer", of a layer chain no builder has seen (a complete max-mode write)."""
    tmp = tmp_path_factory.mktemp("auto-write")
    ws = own_workspace(tmp / "ws")   # a chain no builder has: cold, and exported whole without a prune
    config = tmp / "docker-config"
    config.mkdir()
    observed = observe(ghcr, lambda: run_action(ws, "push", AUTO, inputs(ghcr, CACHE_REPO, "writer"),
                                                extra_env={"DOCKER_CONFIG": str(user_docker_config(config))}))
    observed.docker_config = config
    return observed


# -- the registry really checks the tokens ---------------------------------------------------------------------

def test_the_registry_takes_only_tokens_from_the_test_issuer(ghcr):
    """Without this, every test below could pass with auth accidentally off."""
    url = f"{ghcr.registry.url}/v2/{CACHE_REPO}/tags/list"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["Www-Authenticate"] == (
        f'Bearer realm="{ghcr.tokens.realm}",service="{ghcr.tokens.service}",scope="repository:{CACHE_REPO}:pull"')

    pull = [{"type": "repository", "name": CACHE_REPO, "actions": ["pull"]}]
    now = {"iss": ghcr.tokens.issuer, "aud": ghcr.tokens.service, "access": pull}

    def status(token: str, method: str = "GET", path: str = f"/v2/{CACHE_REPO}/tags/list") -> int:
        return requests.request(method, f"{ghcr.registry.url}{path}", headers={"Authorization": f"Bearer {token}"},
                                timeout=10).status_code

    assert status(ghcr.tokens.mint(pull)) in (200, 404)            # x5c header: verified against the bundle
    kid = ghcr.tokens.signing_key.sign(_claims(now), header="kid")  # kid: the libtrust key ID of the bundle's key
    assert status(kid) in (200, 404)
    stranger = SigningKey.generate("someone-else")
    assert status(stranger.sign(_claims(now))) == 401                         # its own certificate: not trusted
    assert status(stranger.sign(_claims(now), header="kid")) == 401
    assert status(ghcr.tokens.signing_key.sign(_claims({**now, "aud": "another-service"}))) == 401
    assert status(ghcr.tokens.signing_key.sign(_claims({**now, "iss": "another-issuer"}))) == 401
    assert status(ghcr.tokens.signing_key.sign(_claims({**now, "exp": 1}))) == 401
    # A pull token does not push: 401 with error="insufficient_scope", as for every write below.
    put = requests.put(f"{ghcr.registry.url}/v2/{CACHE_REPO}/manifests/x",
                       headers={"Authorization": f"Bearer {ghcr.tokens.mint(pull)}"}, timeout=10)
    assert put.status_code == 401 and 'error="insufficient_scope"' in put.headers["Www-Authenticate"]
    assert "error authorizing context: invalid token" in ghcr.registry.refusals()


def _claims(base: dict) -> dict:
    now = int(time.time())
    return {"sub": "test", "exp": now + 60, "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), **base}


# -- the repository's own token writes ---------------------------------------------------------------------------

def test_auto_run_as_writer_pushes_the_cache_and_moves_the_fallback_ref(ghcr, auto_write):
    run = auto_write.run
    assert run.code == 0, run.log
    out = run.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("auto", "true", "true"), run.log
    assert (out["cache-probe"], out["cache-hit"]) == ("miss", "none")
    assert f"$ docker login --username writer --password-stdin {ghcr.host}" in run.stdout
    assert "::warning::" not in run.stdout and "::error" not in run.stdout, run.log
    key = out["cache-key"]

    # BuildKit pushed the cache; regcache's client copied its manifest to the fallback tag, with a Bearer token.
    digest = ghcr.registry.manifest_digest(CACHE_REPO, key)
    assert digest is not None
    assert ghcr.registry.manifest_digest(CACHE_REPO, fallback_tag(AUTO_SLUG)) == digest
    puts = manifest_puts(auto_write, CACHE_REPO)
    assert puts[key][0] == 201 and puts[key][1].startswith("buildkit/"), puts
    assert puts[fallback_tag(AUTO_SLUG)] == (201, "regcache"), puts
    moving = fallback_tag(AUTO_SLUG)
    assert f"fallback ref {ghcr.host}/{CACHE_REPO}:{moving} -> {ghcr.host}/{CACHE_REPO}:{key}" in run.stdout

    # Who asked the token server for what.
    tokens = auto_write.tokens
    assert tokens and all(t.status == 200 and t.user == "writer" for t in tokens), tokens
    login = auto_write.tokens_of("docker login")
    assert login and all(t.method == "GET" and t.asked == () and t.params.get("offline_token") == "true"
                         for t in login), login
    buildkit = auto_write.tokens_of("buildkit")
    assert buildkit and all((t.method, t.grant_type) == ("POST", "password") for t in buildkit), buildkit
    assert any(f"repository:{CACHE_REPO}" in s and "push" in t.granted_actions for t in buildkit for s in t.granted)
    ours = auto_write.tokens_of("regcache")
    assert ours and all(t.method == "GET" for t in ours), ours
    assert {frozenset(t.granted_actions) for t in ours} == {PULL, PULL_PUSH}, ours   # probe, then the copy
    assert {client_of(t) for t in tokens} == {"docker login", "buildkit", "regcache"}, tokens


def test_auto_run_as_writer_leaves_no_credential(ghcr, auto_write):
    assert auto_write.docker_config is not None
    assert no_credential_left(auto_write.run, auto_write.docker_config, ghcr.host) == []


# -- read-only tokens read every step and write nothing ----------------------------------------------------------

def _read_run(ghcr: Ghcr, auto_write: Observed, tmp_path: Path, event: str, payload: dict,
              user: str | None) -> Observed:
    assert auto_write.run.outputs.get("cache-write") == "true", "the auto run did not write the cache"
    ws = own_workspace(tmp_path / "ws")
    clean_builder(auto_write.run.outputs["imageid"])   # nothing local: every step must come from the registry
    observed = observe(ghcr, lambda: run_action(ws, event, payload, inputs(ghcr, CACHE_REPO, user)))
    run = observed.run
    assert run.code == 0, run.log
    out = run.outputs
    assert (out["build-kind"], out["cache-read"], out["cache-write"]) == ("pr", "true", "false"), run.log
    assert out["cache-key"] == auto_write.run.outputs["cache-key"]
    assert out["cache-probe"] == "exact", run.log
    assert out["cache-hit"] == "full", run.log
    assert out["cached-steps"] == out["total-steps"] == "7", run.log
    assert "--cache-to" not in run.stdout
    assert "::warning::" not in run.stdout, run.log

    # Read from the registry, by BuildKit itself (the cache blobs), and not one write request.
    assert any(r.method == "GET" and "/blobs/sha256:" in r.path and r.status == 200
               and r.user_agent.startswith("buildkit/") for r in observed.requests), observed.requests
    assert observed.writes == [], observed.writes
    # No client even asked for push.
    assert all(t.asked_actions <= {"pull"} for t in observed.tokens), observed.tokens
    assert all(t.status == 200 and t.user == user for t in observed.tokens), observed.tokens
    key = auto_write.run.outputs["cache-key"]
    written = [key, fallback_tag(AUTO_SLUG), ghcr.registry.record_tag(CACHE_REPO, key)]
    assert sorted(ghcr.registry.tags(CACHE_REPO)) == sorted(written)
    return observed


def test_fork_pr_with_a_pull_only_token_reads_every_step_and_writes_nothing(ghcr, auto_write, docker_config,
                                                                           tmp_path):
    fork = _read_run(ghcr, auto_write, tmp_path, "pull_request", FORK_PR, "reader")
    assert f"$ docker login --username reader --password-stdin {ghcr.host}" in fork.run.stdout
    login = fork.tokens_of("docker login")
    assert login and all(t.method == "GET" for t in login)
    buildkit = fork.tokens_of("buildkit")
    assert buildkit and all((t.method, t.grant_type) == ("POST", "password") for t in buildkit), buildkit
    assert fork.tokens_of("regcache"), "the probe asked for no token"
    assert no_credential_left(fork.run, docker_config, ghcr.host) == []


def test_pr_without_any_token_reads_every_step_anonymously_and_writes_nothing(ghcr, auto_write, docker_config,
                                                                              tmp_path):
    anonymous = _read_run(ghcr, auto_write, tmp_path, "pull_request", SAME_REPO_PR, None)
    assert "docker login" not in anonymous.run.stdout
    assert anonymous.tokens_of("docker login") == []
    # Without credentials, BuildKit asks with a GET (containerd posts only when it has a secret).
    buildkit = anonymous.tokens_of("buildkit")
    assert buildkit and all(t.method == "GET" for t in buildkit), buildkit
    assert anonymous.tokens_of("regcache") and all(t.method == "GET" for t in anonymous.tokens)
    assert no_credential_left(anonymous.run, docker_config, ghcr.host) == []


# -- a token without push: a warning, not a failure ------------------------------------------------------------

def test_auto_run_whose_token_lacks_push_warns_and_builds(ghcr, docker_config, tmp_path):
    ws = own_workspace(tmp_path / "ws")
    observed = observe(ghcr, lambda: run_action(ws, "push", AUTO, inputs(ghcr, PULL_ONLY_REPO, "reader")))
    run = observed.run
    assert run.code == 0, run.log
    out = run.outputs
    assert (out["build-kind"], out["cache-write"]) == ("auto", "false"), run.log
    assert out["imageid"].startswith("sha256:")
    assert "::error" not in run.stdout, run.log
    cache_ref = f"{ghcr.host}/{PULL_ONLY_REPO}:{out['cache-key']}"
    warnings = [line for line in run.stdout.splitlines()
                if line.startswith(f"::warning::the cache could not be written to {cache_ref}: ")]
    assert len(warnings) == 1, run.log
    assert "insufficient_scope" in warnings[0] or "denied" in warnings[0], warnings
    assert "fallback ref" not in run.stdout

    # BuildKit asked for push, was given pull only, and every write it tried was refused.
    buildkit = observed.tokens_of("buildkit")
    assert any("push" in t.asked_actions for t in buildkit), buildkit
    assert all(t.user == "reader" and "push" not in t.granted_actions for t in observed.tokens), observed.tokens
    assert observed.writes, "BuildKit never tried to write: the export was not exercised"
    assert all(r.status == 401 for r in observed.writes), observed.writes
    assert ghcr.registry.tags(PULL_ONLY_REPO) == []
    assert no_credential_left(run, docker_config, ghcr.host) == []


# -- Docker Hub's variant: docker login gets a refresh token ---------------------------------------------------

def test_identity_token_login_and_buildkits_refresh_grant(engine, docker_config, tmp_path):
    with TokenServer(ACCOUNTS, anonymous=ANONYMOUS, identity_tokens=True) as tokens, \
            TokenRegistry(tmp_path / "registry", tokens) as registry:
        hub = Ghcr(tokens, registry)
        ws = own_workspace(tmp_path / "ws", chain=secrets.token_hex(8))   # cold: a chain of its own
        observed = observe(hub, lambda: run_action(ws, "push", AUTO, inputs(hub, CACHE_REPO, "writer")))
        run = observed.run
        assert run.code == 0, run.log
        assert run.outputs["cache-write"] == "true", run.log
        login = observed.tokens_of("docker login")
        assert login and all(t.refresh_token for t in login), login
        buildkit = observed.tokens_of("buildkit")
        assert buildkit and all((t.method, t.grant_type, t.user) == ("POST", "refresh_token", "writer")
                                for t in buildkit), buildkit
        assert registry.manifest_digest(CACHE_REPO, fallback_tag(AUTO_SLUG)) == registry.manifest_digest(
            CACHE_REPO, run.outputs["cache-key"])
        assert no_credential_left(run, docker_config, hub.host) == []


def test_an_expired_token_is_fetched_again(engine, tmp_path):
    """A build can outlast a Bearer token: the copy of the fallback ref after it must not fail on the stale
    one. Tokens here expire 10 s after issue (Distribution allows 60 s of leeway)."""
    from regcache.registry import Manifest, RegistryClient

    with TokenServer(ACCOUNTS, anonymous=ANONYMOUS, ttl=-50) as tokens, \
            TokenRegistry(tmp_path / "short-tokens", tokens) as registry:
        writer = RegistryClient(registry.host, username="writer", password=WRITER_TOKEN)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
        writer.put_manifest(CACHE_REPO, "one", Manifest(index["mediaType"], "", json.dumps(index).encode()))
        assert writer.manifest_digest(CACHE_REPO, "one")
        time.sleep(12)
        writer.copy_tag(CACHE_REPO, "one", "two")   # with a token fetched anew, not the expired one
        assert len([t for t in tokens.requests if t.user == "writer"]) >= 2
