from dataclasses import replace
from pathlib import Path

import pytest

from regcache.buildx_args import build_argv
from regcache.settings import load_settings

REF = "ghcr.io/o/r-cache:ci-abc"
TAIL = ["--metadata-file", "/t/m.json", "--iidfile", "/t/iid"]


@pytest.fixture
def base(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return load_settings({"GITHUB_WORKSPACE": str(tmp_path), "GITHUB_REPOSITORY": "o/r"})


def argv(s, **kw):
    read, write = kw.pop("read", True), kw.pop("write", True)
    opts = dict(import_refs=[REF] if read else [], export_ref=REF if write else "", builder="",
                driver="docker", metadata_file="/t/m.json", iidfile="/t/iid")
    opts.update(kw)
    return build_argv(s, **opts)


def test_table(base):
    ws = str(base.workspace)
    head = ["docker", "buildx", "build", "--progress=rawjson", "--file", f"{ws}/Dockerfile"]
    cache_from = ["--cache-from", f"type=registry,ref={REF}"]
    cache_to = ["--cache-to", f"type=registry,ref={REF},mode=max,compression=zstd,oci-mediatypes=true,"
                              "ignore-error=true"]
    cases = [
        (base, {}, head + ["--load"] + cache_from + cache_to + TAIL + [ws]),
        (base, {"write": False}, head + ["--load"] + cache_from + TAIL + [ws]),
        (base, {"read": False, "write": False}, head + ["--load"] + TAIL + [ws]),
        (base, {"builder": "b1", "write": False},
         head + ["--builder", "b1", "--load"] + cache_from + TAIL + [ws]),
        (replace(base, cache_mode="min", cache_compression="gzip", fail_on_cache_error=True), {"read": False},
         head + ["--load", "--cache-to", f"type=registry,ref={REF},mode=min,compression=gzip,"
                 "oci-mediatypes=true,ignore-error=false"] + TAIL + [ws]),
        (replace(base, target="dist", build_args=(("A", "1"), ("B", "x=y z")), platforms=("linux/amd64",
                 "linux/arm64"), labels=(("org.opencontainers.image.source", "https://x"),),
                 tags=("ghcr.io/o/app:1", "ghcr.io/o/app:latest"), load=False, push=True),
         {"read": False, "write": False},
         head + ["--target", "dist", "--build-arg", "A=1", "--build-arg", "B=x=y z",
                 "--platform", "linux/amd64,linux/arm64", "--label", "org.opencontainers.image.source=https://x",
                 "--tag", "ghcr.io/o/app:1", "--tag", "ghcr.io/o/app:latest", "--push"] + TAIL + [ws]),
    ]
    for settings, kw, expected in cases:
        assert argv(settings, **kw) == expected


def test_fallback_refs_are_read_in_order(base):
    refs = [REF, "ghcr.io/o/r-cache:ci-auto", "ghcr.io/x/y:z"]
    got = build_argv(base, import_refs=refs, export_ref="", builder="", driver="docker", metadata_file="/m",
                     iidfile="/i")
    assert [got[i + 1] for i, a in enumerate(got) if a == "--cache-from"] == [f"type=registry,ref={r}" for r in refs]


def test_load_and_push_on_the_docker_driver_is_one_export(base):
    s = replace(base, load=True, push=True)
    assert "--load" not in argv(s, driver="docker") and "--push" in argv(s, driver="docker")
    both = argv(s, driver="docker-container")
    assert "--load" in both and "--push" in both


def test_token_never_in_argv(base):
    s = replace(base, github_token="s3cret-token")
    assert not any("s3cret" in a for a in argv(s))


def test_context_is_last(base):
    assert Path(argv(base)[-1]) == base.context
