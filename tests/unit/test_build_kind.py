import pytest

from harness import events
from regcache.build_kind import classify
from regcache.errors import EventError
from regcache.event import Event

TRY = ("try", "try-perf", "automation/bors/try")
AUTO = ("auto", "automation/bors/auto")


def event(name, payload, ref=""):
    return Event(name=name, ref=ref, repository="rust-lang/rust", payload=payload)


@pytest.mark.parametrize(("name", "payload", "ref", "kind", "fork"), [
    ("push", events.push("try"), "refs/heads/try", "try", False),
    ("push", events.push("try-perf"), "refs/heads/try-perf", "try", False),
    ("push", events.push("automation/bors/try"), "refs/heads/automation/bors/try", "try", False),
    ("push", events.push("auto"), "refs/heads/auto", "auto", False),
    ("push", events.push("automation/bors/auto"), "refs/heads/automation/bors/auto", "auto", False),
    ("push", events.push("main"), "refs/heads/main", "other", False),
    ("push", events.push("auto", ref="refs/tags/auto"), "refs/tags/auto", "other", False),
    # The ref comes from the payload when GITHUB_REF is absent.
    ("push", events.push("auto"), "", "auto", False),
    ("pull_request", events.pull_request(), "refs/pull/42/merge", "pr", False),
    ("pull_request", events.pull_request(head_repo="someone/rust"), "refs/pull/42/merge", "pr", True),
    ("pull_request_target", events.pull_request(head_repo="someone/rust"), "refs/heads/main", "pr", True),
    ("pull_request", events.pull_request(head_repo=None), "refs/pull/42/merge", "pr", True),
    ("merge_group", events.merge_group(), "refs/heads/gh-readonly-queue/main/pr-42-x", "auto", False),
    ("workflow_dispatch", events.workflow_dispatch(), "refs/heads/main", "other", False),
    ("schedule", events.schedule(), "refs/heads/main", "other", False),
    ("", {}, "", "other", False),
])
def test_classify_realistic_payloads(name, payload, ref, kind, fork):
    result = classify(event(name, payload, ref), TRY, AUTO)
    assert (result.kind, result.fork) == (kind, fork)
    assert result.reason


def test_branch_names_are_compared_exactly():
    # "auto-merge" is not "auto", and a branch named like a shell command is just a name.
    assert classify(event("push", events.push("auto-merge")), TRY, AUTO).kind == "other"
    odd = "auto; rm -rf / $(id)"
    assert classify(event("push", events.push(odd)), TRY, (odd,)).kind == "auto"


def test_custom_branches():
    assert classify(event("push", events.push("main")), (), ("main",)).kind == "auto"


def test_pull_request_payload_without_pull_request_is_an_error():
    with pytest.raises(EventError, match="pull_request"):
        classify(event("pull_request", {"number": 1}), TRY, AUTO)
