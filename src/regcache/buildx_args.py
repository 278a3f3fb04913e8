"""The `docker buildx build` command line, as a pure function of the settings and the decisions made."""

from __future__ import annotations

from collections.abc import Sequence

from regcache.settings import Settings


def cache_from(cache_ref: str) -> str:
    return f"type=registry,ref={cache_ref}"


def cache_to(cache_ref: str, *, mode: str, compression: str, fail_on_error: bool) -> str:
    # oci-mediatypes is needed for zstd and estargz layers; ignore-error keeps a failed export a warning.
    return (f"type=registry,ref={cache_ref},mode={mode},compression={compression},"
            f"oci-mediatypes=true,ignore-error={str(not fail_on_error).lower()}")


def build_argv(s: Settings, *, import_refs: Sequence[str], export_ref: str, builder: str, driver: str,
               metadata_file: str, iidfile: str) -> list[str]:
    """import_refs: the cache refs to read, best first; export_ref: where to write the cache, "" for nowhere;
    driver: the builder's driver."""
    argv = ["docker", "buildx", "build", "--progress=rawjson", "--file", str(s.file)]
    if builder:
        argv += ["--builder", builder]
    if s.target:
        argv += ["--target", s.target]
    for key, value in s.build_args:
        argv += ["--build-arg", f"{key}={value}"]
    if s.platforms:
        argv += ["--platform", ",".join(s.platforms)]
    for key, value in s.labels:
        argv += ["--label", f"{key}={value}"]
    for tag in s.tags:
        argv += ["--tag", tag]
    # The docker driver's --push also loads the image into the engine; given both, buildx 0.13 runs two
    # exports of the same name at once, and one fails at random with 'image "…": already exists'.
    if s.load and not (s.push and driver == "docker"):
        argv.append("--load")
    if s.push:
        argv.append("--push")
    for ref in import_refs:
        argv += ["--cache-from", cache_from(ref)]
    if export_ref:
        argv += ["--cache-to", cache_to(export_ref, mode=s.cache_mode, compression=s.cache_compression,
                                        fail_on_error=s.fail_on_cache_error)]
    argv += ["--metadata-file", metadata_file, "--iidfile", iidfile, str(s.context)]
    return argv
