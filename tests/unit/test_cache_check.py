"""The check of what a max-mode write put in the registry, on caches BuildKit 0.13 and 0.34 really wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regcache.cache_check import CacheFormatError, cache_config_digest, check_write, expected_layers
from regcache.progress import Step
from regcache.registry import Manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cache"
MULTISTAGE = [
    ("base", 1, 2, "COPY busybox /bin/busybox"),
    ("base", 2, 2, 'RUN ["/bin/busybox", "--install", "-s", "/bin"]'),
    ("builder", 1, 3, "COPY src/ /src/"),
    ("builder", 2, 3, "RUN mkdir -p /work && cd /work"),
    ("builder", 3, 3, "RUN cd /work && sh /src/build.sh > /work/app.txt"),
    ("stage-2", 1, 2, "COPY --from=builder /work/app.txt /app/app.txt"),
    ("stage-2", 2, 2, 'RUN echo "built" > /app/VERSION'),
]


def steps(rows=MULTISTAGE, cached: bool = True) -> list[Step]:
    return [Step(f"sha256:{i}", f"[{stage} {index}/{total}] {instruction}", cached, 0.1, None, stage, index,
                 total, instruction) for i, (stage, index, total, instruction) in enumerate(rows)]


def captured(name: str) -> tuple[Manifest, dict[str, bytes]]:
    body = (FIXTURES / f"{name}.manifest.json").read_bytes()
    media_type = json.loads(body)["mediaType"]
    config = (FIXTURES / f"{name}.config.json").read_bytes()
    return Manifest(media_type, "", body), {cache_config_digest(Manifest(media_type, "", body)): config}


@pytest.mark.parametrize("version", ["0.13", "0.34"])
def test_a_complete_write_has_a_layer_record_for_every_step(version):
    manifest, blobs = captured(f"buildkit-{version}-complete")
    check = check_write(steps(), manifest, blobs.__getitem__)
    assert (check.expected, check.written, check.complete) == (7, 7, True)


@pytest.mark.parametrize("version", ["0.13", "0.34"])
def test_a_write_without_the_builder_stage_is_incomplete(version):
    manifest, blobs = captured(f"buildkit-{version}-incomplete")
    check = check_write(steps(), manifest, blobs.__getitem__)
    assert (check.expected, check.written, check.complete) == (7, 4, False)


def test_only_run_copy_and_add_are_expected_to_give_a_layer():
    rows = [("", 1, 5, "WORKDIR /src"), ("", 2, 5, "ENV A=1"), ("", 3, 5, "ADD a.tar /"),
            ("", 4, 5, "copy x /x"), ("", 5, 5, "RUN true")]
    assert expected_layers(steps(rows)) == 3


def test_the_config_is_found_in_an_index_and_in_an_image_manifest():
    assert cache_config_digest(captured("buildkit-0.13-complete")[0]).startswith("sha256:")
    assert cache_config_digest(captured("buildkit-0.34-complete")[0]).startswith("sha256:")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"config": {"mediaType": "x", "digest": "d"}}',
                                  b'{"manifests": [{"mediaType": "application/vnd.oci.image.layer.v1.tar"}]}'])
def test_something_else_than_a_cache_is_a_format_error(body):
    with pytest.raises(CacheFormatError):
        cache_config_digest(Manifest("application/json", "", body))


def test_an_unreadable_config_is_a_format_error():
    manifest, _ = captured("buildkit-0.34-complete")
    with pytest.raises(CacheFormatError):
        check_write(steps(), manifest, lambda digest: b"{")


def test_a_layer_written_only_as_a_later_steps_parent_counts():
    """BuildKit 0.13 now and then leaves a step's record without a result while its layer is there, as the
    parent in the next step's chain (captured: 6 records with a layer, 7 layers, 7 steps)."""
    manifest, blobs = captured("buildkit-0.13-chained")
    config = json.loads(next(iter(blobs.values())))
    assert sum(1 for r in config["records"] if r.get("layers")) == 6 and len(config["layers"]) == 7
    check = check_write(steps(), manifest, blobs.__getitem__)
    assert (check.expected, check.written, check.complete) == (7, 7, True)
