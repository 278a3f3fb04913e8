import re

import pytest

from regcache.cache_refs import branch_tag, read_refs
from regcache.image_ref import split_ref
from regcache.probe import Probe, miss_warning, probe
from regcache.registry import RegistryError

TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")


@pytest.mark.parametrize(("branch", "expected"), [
    ("auto", "ci-auto"), ("automation/bors/auto", "ci-automation-bors-auto"), ("Feature/ÄÖ x", "ci-feature-x"),
    ("$(rm -rf /);`id`", "ci-rm-rf-id"), ("---", "ci-branch"), ("a" * 300, "ci-" + "a" * 125),
])
def test_branch_tag_is_always_a_valid_tag(branch, expected):
    tag = branch_tag("ci", branch)
    assert tag == expected and TAG.match(tag)


def test_read_refs_order_and_dedup():
    refs = read_refs("ghcr.io/o/c", "ci-abc", "ci", "auto", ["auto", "automation/bors/auto"], ["ghcr.io/x/y:z"])
    assert refs == ["ghcr.io/o/c:ci-abc", "ghcr.io/o/c:ci-auto", "ghcr.io/o/c:ci-automation-bors-auto",
                    "ghcr.io/x/y:z"]


@pytest.mark.parametrize(("ref", "expected"), [
    ("ghcr.io/o/c:t", ("ghcr.io", "o/c", "t")),
    ("localhost:5000/a/b:t", ("localhost:5000", "a/b", "t")),
    ("ubuntu:22.04", ("registry-1.docker.io", "library/ubuntu", "22.04")),
    ("me/app:1", ("registry-1.docker.io", "me/app", "1")),
])
def test_split_ref(ref, expected):
    assert split_ref(ref) == expected


class FakeClient:
    def __init__(self, existing=(), fail=False):
        self.existing, self.fail, self.calls = set(existing), fail, 0

    def manifest_digest(self, repository, tag):
        self.calls += 1
        if self.fail:
            raise RegistryError("connection refused")
        return "sha256:x" if f"{repository}:{tag}" in self.existing else None


REFS = ["r.io/o/c:key", "r.io/o/c:ci-auto", "r.io/o/c:ci-main"]


def test_probe_results():
    assert probe(REFS, lambda h: FakeClient({"o/c:key", "o/c:ci-auto"})).result == "exact"
    p = probe(REFS, lambda h: FakeClient({"o/c:ci-main"}))
    assert (p.result, p.found, p.import_refs) == ("fallback", ("r.io/o/c:ci-main",), ("r.io/o/c:ci-main",))
    p = probe(REFS, lambda h: FakeClient())
    assert (p.result, p.import_refs) == ("miss", ())


def test_an_unreachable_registry_is_asked_once_and_buildkit_gets_every_ref():
    client = FakeClient(fail=True)
    p = probe(REFS, lambda h: client)
    assert client.calls == 1 and p.result == "miss" and p.import_refs == tuple(REFS)


def test_miss_warning_names_refs_and_causes():
    text = miss_warning(Probe("miss", (), tuple(REFS)), "r.io/o/c")
    assert all(r in text for r in REFS) and "private" in text and "try or auto" in text
