"""The action image holds only what a run executes (issue 11): every job pulls it, and a pull pays per file
and per byte. What runs in it is the rest of the e2e tier's part; this checks what is not there."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import docker

pytestmark = pytest.mark.e2e

# Walks the image's own file system with its own Python; /proc, /sys and /dev are the engine's.
_INVENTORY = """
import json, os
files = []
for top, dirs, names in os.walk("/"):
    if top.startswith(("/proc", "/sys", "/dev")):
        dirs[:] = []
        continue
    files += [os.path.join(top, name) for name in names]
found = {}
for module in ("github", "jwt", "nacl", "cryptography", "asyncio", "sqlite3", "tkinter", "pip"):
    try:
        __import__(module)
        found[module] = True
    except ImportError:
        found[module] = False
print(json.dumps({"files": files, "imports": found}))
"""


def test_the_action_image_has_no_shell_no_package_manager_and_few_files(action_image):
    run = docker("run", "--rm", "--entrypoint", "/opt/regcache/venv/bin/python", action_image, "-c", _INVENTORY)
    assert run.returncode == 0, run.stderr
    inventory = json.loads(run.stdout)
    files = set(inventory["files"])
    for absent in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/pip"):
        assert absent not in files, f"{absent} is in the action image"
    assert not any(name.startswith("/var/lib/dpkg/") for name in files)
    assert {"/usr/bin/docker", "/usr/libexec/docker/cli-plugins/docker-buildx", "/opt/regcache/post"} <= files
    # Pure-Python code is zipped (images/action/rootfs.py): a few hundred files, not a few thousand.
    assert len(files) < 300, f"{len(files)} files in the action image"
    assert not any(inventory["imports"].values()), inventory["imports"]
