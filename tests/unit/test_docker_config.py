"""The run's own docker config: the user's builders, plugins and settings; no credential, no build history."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from regcache.docker_config import make_private_config, remove_private_config


def _user_config(root: Path) -> Path:
    config = root / ".docker"
    (config / "buildx" / "instances").mkdir(parents=True)
    (config / "buildx" / "instances" / "shared").write_text('{"Name": "shared", "Driver": "remote"}')
    (config / "buildx" / "current").write_text('{"Key": "unix:///var/run/docker.sock", "Name": "shared"}')
    (config / "buildx" / "certs" / "shared").mkdir(parents=True)
    (config / "buildx" / "certs" / "shared" / "ca.pem").write_text("ca")
    for index in range(50):  # what every build adds
        ref = config / "buildx" / "refs" / "shared" / "shared0" / f"ref{index}"
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text("{}")
    (config / "buildx" / "activity").mkdir()
    (config / "buildx" / "activity" / "shared").write_text("2026-11-29T00:00:00Z")
    (config / "cli-plugins").mkdir()
    (config / "config.json").write_text(json.dumps({
        "auths": {"ghcr.io": {"auth": "c2VjcmV0"}}, "credsStore": "desktop", "credHelpers": {"x.io": "x"},
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}}}))
    return config


def test_the_private_config_keeps_builders_and_settings_without_credentials_or_history(tmp_path):
    private = make_private_config(_user_config(tmp_path))
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        buildx = private / "buildx"
        assert json.loads((buildx / "instances" / "shared").read_text())["Driver"] == "remote"
        assert (buildx / "current").is_file() and (buildx / "certs" / "shared" / "ca.pem").is_file()
        assert not (buildx / "refs").exists() and not (buildx / "activity").exists()
        assert (private / "cli-plugins").is_symlink()
        assert json.loads((private / "config.json").read_text()) == {
            "proxies": {"default": {"httpProxy": "http://proxy:3128"}}}
    finally:
        remove_private_config(private)
    assert not private.exists()


def test_a_directory_the_run_did_not_make_is_never_removed(tmp_path):
    other = tmp_path / "regcache-docker-config-lookalike"
    other.mkdir()
    remove_private_config(other)
    assert other.exists()
