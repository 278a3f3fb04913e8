"""Which platforms a build is for, as the cache key and the fallback refs name them.

An empty `platforms` input builds for the builder's native platform: the key must then name that platform,
so that two runners of different architectures (an ubuntu-24.04 and an ubuntu-24.04-arm job in one
matrix) never share a key, a fallback ref or a reused image, and so that leaving the input empty and naming
the native platform give the same key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# `docker info`'s Architecture (the kernel's name) -> the OCI platform's architecture and variant.
_ARCHITECTURES = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm/v7", "armv6l": "arm/v6",
    "i386": "386", "i686": "386",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}


def engine_platform(os_type: str, architecture: str) -> str:
    """"linux/amd64" for `docker info`'s OSType "linux" and Architecture "x86_64"."""
    arch = _ARCHITECTURES.get(architecture.strip().lower(), architecture.strip().lower())
    return f"{os_type.strip().lower() or 'linux'}/{arch}"


def normalize(platform: str) -> str:
    """BuildKit's normal form: lower case, amd64 without a variant, arm64 without v8, arm as arm/v7."""
    parts = platform.strip().lower().split("/")
    if len(parts) == 3 and (parts[1], parts[2]) in (("arm64", "v8"), ("amd64", "v1")):
        parts = parts[:2]
    if parts[1:] == ["arm"]:
        parts = [parts[0], "arm", "v7"]
    return "/".join(parts)


def target_platforms(requested: Sequence[str], native: str) -> tuple[str, ...]:
    """The platforms the image is built for: the input's (normalized, sorted, once each), else native."""
    chosen = requested or [native]
    return tuple(sorted({normalize(p) for p in chosen}))


def native_of(builder_platforms: Iterable[str], engine: str) -> str:
    """A builder lists its native platform first; a builder that lists none (not started) runs on the
    engine's."""
    for platform in builder_platforms:
        return normalize(platform)
    return normalize(engine)


def slug(platforms: Sequence[str]) -> str:
    """"linux-amd64", "linux-amd64_linux-arm64-v8": a registry tag's characters only."""
    return "_".join(p.replace("/", "-") for p in platforms)
