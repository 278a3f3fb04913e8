"""The pruning rule, decided without a registry."""

from __future__ import annotations

from regcache.prune_plan import DAY, Version, decide, record_subject

NOW = 1_000 * DAY
AMD, ARM = ("linux/amd64",), ("linux/arm64",)


def key(n: int, slug: str = "ci-docker") -> str:
    return f"{slug}-{n:024x}"


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def cache(n: int, days_ago: float | None, platforms=AMD, tags=None, slug="ci-docker") -> Version:
    return Version(digest(n), tuple(tags or (key(n, slug),)), None if days_ago is None else NOW - days_ago * DAY,
                   platforms)


def record(n: int) -> Version:
    return Version(digest(10_000 + n), (f"record-sha256-{n:064x}",))


def deleted(versions, keep_days=14, keep=3) -> set[str]:
    return {d.version.tags[0] for d in decide(versions, NOW, keep_days, keep) if d.delete}


def test_old_keys_beyond_the_newest_few_go_with_their_records():
    versions = [cache(n, days_ago=100 - n) for n in range(6)] + [record(n) for n in range(6)]
    # newest first: 5, 4, 3 kept (keep-per-dockerfile 3); 2, 1, 0 are 98..100 days old: deleted
    assert deleted(versions) == {key(0), key(1), key(2)} | {f"record-sha256-{n:064x}" for n in (0, 1, 2)}


def test_what_a_fallback_ref_points_at_is_never_deleted():
    versions = [cache(n, days_ago=100 + n) for n in range(5)]
    versions[4] = cache(4, days_ago=104, tags=(key(4), "ci-docker-linux-amd64-automation-bors-auto"))
    assert deleted(versions) == {key(3)}


def test_nothing_younger_than_keep_days_and_nothing_undated():
    versions = [cache(n, days_ago=n) for n in range(10)] + [cache(50, None), cache(51, 13.9), cache(52, 14.1)]
    assert deleted(versions) == {key(52)}


def test_the_newest_few_are_kept_per_dockerfile_and_platform():
    versions = ([cache(n, 30 + n, AMD) for n in range(4)] + [cache(10 + n, 30 + n, ARM) for n in range(4)]
                + [cache(20 + n, 30 + n, AMD, slug="other") for n in range(2)])
    assert deleted(versions) == {key(3), key(13)}


def test_tags_regcache_does_not_write_and_orphan_records():
    versions = [cache(1, 100, tags=("latest",)), cache(2, 100, tags=(key(2), "v1.0")), record(99)]
    assert deleted(versions, keep=0) == {"record-sha256-" + f"{99:064x}"}
    assert record_subject("record-sha256-" + "ab" * 32) == "sha256:" + "ab" * 32
    assert record_subject(key(1)) is None and record_subject("record-latest") is None


def test_keep_zero_and_keep_days_zero_delete_every_dated_key():
    versions = [cache(n, days_ago=0.5) for n in range(3)]
    assert deleted(versions, keep_days=0, keep=0) == {key(0), key(1), key(2)}


def test_a_fallback_ref_that_looks_like_a_key_is_told_apart_by_the_record():
    branch_like_a_key = "ci-docker-linux-amd64-renovate-" + "ab" * 12
    versions = [Version(digest(n), (key(n),), NOW - (100 + n) * DAY, AMD, key=key(n)) for n in range(4)]
    versions[3] = Version(digest(3), (key(3), branch_like_a_key), NOW - 103 * DAY, AMD, key=key(3))
    assert deleted(versions, keep=0) == {key(0), key(1), key(2)}
