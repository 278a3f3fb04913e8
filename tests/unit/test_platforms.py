"""The platforms a build is for, as the key and the fallback refs name them."""

import pytest

from regcache.platforms import engine_platform, native_of, normalize, slug, target_platforms


@pytest.mark.parametrize(("os_type", "arch", "expected"), [
    ("linux", "x86_64", "linux/amd64"), ("linux", "aarch64", "linux/arm64"), ("linux", "armv7l", "linux/arm/v7"),
    ("linux", "s390x", "linux/s390x"), ("Linux", "AARCH64", "linux/arm64"), ("", "x86_64", "linux/amd64"),
])
def test_the_engines_architecture_in_oci_terms(os_type, arch, expected):
    assert engine_platform(os_type, arch) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ("linux/amd64", "linux/amd64"), ("Linux/AMD64", "linux/amd64"), ("linux/arm64/v8", "linux/arm64"),
    ("linux/arm", "linux/arm/v7"), ("linux/amd64/v2", "linux/amd64/v2"), ("linux/arm/v6", "linux/arm/v6"),
])
def test_normal_forms(given, expected):
    assert normalize(given) == expected


def test_empty_means_native_and_naming_native_is_the_same():
    assert target_platforms([], "linux/amd64") == target_platforms(["linux/amd64"], "linux/amd64") \
        == ("linux/amd64",)
    assert target_platforms(["linux/arm64"], "linux/amd64") == ("linux/arm64",)


def test_order_and_repeats_do_not_matter():
    assert target_platforms(["linux/arm64", "linux/amd64", "linux/arm64/v8"], "x") == ("linux/amd64", "linux/arm64")


def test_the_native_platform_is_the_builders_first_else_the_engines():
    assert native_of(["linux/arm64", "linux/arm/v7"], "linux/amd64") == "linux/arm64"
    assert native_of([], "linux/amd64") == "linux/amd64"


def test_slugs_are_tag_characters():
    assert slug(("linux/amd64",)) == "linux-amd64"
    assert slug(("linux/amd64", "linux/arm/v7")) == "linux-amd64_linux-arm-v7"
