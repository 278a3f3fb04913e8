"""The cache key against the real BuildKit: the engine is the oracle, not a second copy of its rules.

Hypothesis generates build contexts (nested directories, symlinks inside and out of the context, hard
links, odd and non-UTF-8 names, `.dockerignore` or `Dockerfile.dockerignore` patterns with exceptions,
glob sources, bind mounts), builds each with the engine's default builder before and after a change,
and checks the key's contract:
- same key => the same image (the built file system, entry by entry: content, type, mode, owner, link);
- for a change to files only, the same image => the same key (what BuildKit leaves out does not count);
- a warning that says "BuildKit will fail" => the build fails; a failed build => a warning that says it
  may ("fails"): a wildcard with nothing to match below the top fails unless BuildKit's cache has a
  look-alike COPY, and a name that is not UTF-8 fails since Docker 27 only.
Runs on whichever engine the leg points at (dockerd 26, dockerd 28); REGCACHE_ORACLE_EXAMPLES sets the
number of examples (50, about 50 s here).

Builds export the final file system as a tar (`--output type=tar`), so no image is left in the engine.
Not generated, as the key leaves them out on purpose: timestamps (a checkout sets them), modes other
than the executable bit (the umask sets them), `.git` directories (every fetch changes them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.images import busybox_context
from regcache.cache_key import CacheKey, compute_cache_key

pytestmark = pytest.mark.integration

# Names BuildKit must treat like any other: glob characters, spaces, a leading dash, Unicode, and a byte
# that is not UTF-8 (os.fsdecode's surrogate for b"\xff"). Each stands for a file, directory or link.
NAMES = ["a", "b.txt", "c.txt", "sub", "keep", "x", "star*.txt", "sp ace", "-d", ".h", "é", "[x]", "\udcff"]
DIR_NAMES = ["sub", "x", "keep", "é", "sp ace"]
# As BuildKit's lexer leaves them: "star\\*.txt" reaches the copy as the glob star*.txt, "st?r\\\\*.txt" as
# st?r\\*.txt (a literal star); "**" is two stars, one level.
GLOBS = ["*", "*.txt", "sub/*", "?.txt", "[a-c]*", "[^a]*", "sub/[^k]*", "*/keep", "star\\*.txt", "[sx]*/*",
         "**/*.txt", "**", "st?r\\\\*.txt", "*/*/b.txt"]
IGNORE_LINES = ["*.txt", "sub", "sub/*", "**/keep", "!sub/keep", "!**/keep", "!*.txt", "/a", "./x",
                "# comment", "x/**", "é", "!b.txt", "**/c.txt", "[^a]*", "sub/**/b.txt", "!sub"]


@dataclass(frozen=True)
class Node:
    kind: str  # file, dir, link
    content: bytes = b""
    executable: bool = False
    target: str = ""


Tree = dict[str, Node]  # "/"-joined relative path -> node


@st.composite
def trees(draw) -> Tree:
    tree: Tree = {}
    dirs = [""]
    for _ in range(draw(st.integers(3, 14))):
        parent = draw(st.sampled_from(dirs))
        kind = draw(st.sampled_from(["file", "file", "file", "dir", "link"]))
        name = draw(st.sampled_from(DIR_NAMES if kind == "dir" else NAMES))
        path = f"{parent}/{name}" if parent else name
        if path in tree:
            continue
        if kind == "dir":
            if path.count("/") < 3:
                tree[path] = Node("dir")
                dirs.append(path)
        elif kind == "link":
            tree[path] = Node("link", target=draw(link_targets(path, sorted(tree))))
        else:
            tree[path] = Node("file", draw(st.sampled_from([b"1", b"2", b"", b"x" * 300])), draw(st.booleans()))
    return tree


def link_targets(path: str, existing: list[str]):
    up = "../" * path.count("/")
    options = [st.sampled_from(["a", "sub", "b.txt", "missing", "../outside/f", "../../../outside/f", "/etc/hostname"])]
    if existing:
        options.append(st.sampled_from(existing).map(lambda p: up + p))  # relative, inside the context
        options.append(st.sampled_from(existing).map(lambda p: "/" + p))  # absolute: BuildKit reads it in the context
        options.append(st.sampled_from(existing).map(lambda p: up + "../../" + p))  # climbs out, clamped at the root
    return st.one_of(options)


@st.composite
def dockerfiles(draw, tree: Tree) -> tuple[list[list[str]], list[str]]:
    """(COPY instructions: sources each, bind mount sources), one destination per instruction."""
    paths = sorted(tree) + [".", "missing.txt"]
    source = st.one_of(st.sampled_from(paths), st.sampled_from(GLOBS))
    copies = draw(st.lists(st.lists(source, min_size=1, max_size=2), min_size=1, max_size=4))
    # A --mount value is one word of CSV. BuildKit 0.13 (dockerd 26) garbles a non-ASCII bind source
    # ("/Ã©/keep": not found) where newer ones read it: the key hashes the file named, so leave those out.
    mountable = [p for p in paths[:-1] if p.isascii() and not set(p) & set(' ,"')]
    mounts = [draw(st.sampled_from(mountable))] if draw(st.integers(0, 3)) == 0 else []
    return copies, mounts


def dockerfile_text(copies: list[list[str]], mounts: list[str]) -> bytes:
    lines = ["FROM scratch"]
    for index, sources in enumerate(copies):
        # Exec form keeps names with spaces whole. A name that is not UTF-8 cannot be named at all:
        # BuildKit's lexer reads the bad byte as U+FFFD (so do JSON's escapes), and fails "not found".
        lines.append(f"COPY {json.dumps([*sources, f'/s{index}/'])}")
    if mounts:
        lines.append("COPY --from=bb busybox /bin/busybox")
        for index, source in enumerate(mounts):
            lines.append(f'RUN --mount=type=bind,source={source},target=/m{index} '
                         f'["/bin/busybox", "cp", "-a", "/m{index}", "/r{index}"]')
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def write_tree(root: Path, tree: Tree) -> None:
    root.mkdir(parents=True)
    for path, node in sorted(tree.items()):
        full = os.path.join(os.fsencode(root), os.fsencode(path))
        if node.kind == "dir":
            os.makedirs(full, exist_ok=True)
        elif node.kind == "link":
            os.symlink(os.fsencode(node.target), full)
        else:
            with open(full, "wb") as handle:
                handle.write(node.content)
            os.chmod(full, 0o755 if node.executable else 0o644)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)


def key_of(context: Path) -> CacheKey:
    return compute_cache_key(workspace=context, context=Path("."), dockerfile=Path("Dockerfile"), target="",
                             build_args=(), platforms=(), version="")


def build(context: Path, busybox: Path) -> tuple[str, ...]:
    """The built file system, one line per entry; ("failed", last line) when BuildKit refuses the build."""
    out = context.parent / "out.tar"
    command = ["docker", "buildx", "build", "--builder", "default", "--quiet", "--output", f"type=tar,dest={out}",
               "--build-context", f"bb={busybox}", str(context)]
    result = subprocess.run(command, capture_output=True, timeout=180)
    if result.returncode != 0:
        error = result.stderr.decode(errors="replace")
        assert "ERROR" in error, error[-2000:]
        return ("failed", error.strip().splitlines()[-1])
    entries = []
    with tarfile.open(out) as archive:
        for member in archive.getmembers():
            if member.name.startswith("bin/"):
                continue
            content = archive.extractfile(member).read() if member.isreg() else b""
            entries.append(f"{member.name!r} {member.type!r} {member.mode:o} {member.uid}:{member.gid} "
                           f"{member.linkname!r} {hashlib.sha256(content).hexdigest()[:16]}")
    out.unlink()
    return tuple(sorted(entries))


MUTATIONS = ["edit", "add", "delete", "chmod", "relink", "touch", "hardlink", "ignore-add", "ignore-drop"]
FILES_ONLY = {"edit", "add", "delete", "chmod", "relink", "touch", "hardlink"}


def mutate(data, context: Path, tree: Tree, ignore_file: Path) -> str:
    kind = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    files = [p for p, n in tree.items() if n.kind == "file"]
    links = [p for p, n in tree.items() if n.kind == "link"]
    dirs = [""] + [p for p, n in tree.items() if n.kind == "dir"]

    def full(path: str) -> bytes:
        return os.path.join(os.fsencode(context), os.fsencode(path))

    if kind == "edit" and files:
        with open(full(data.draw(st.sampled_from(files), label="edit")), "ab") as handle:
            handle.write(b"+")
    elif kind == "add":
        parent, name = data.draw(st.sampled_from(dirs), label="in"), data.draw(st.sampled_from(NAMES), label="name")
        path = f"{parent}/{name}" if parent else name
        if os.path.lexists(full(path)):
            return "none"
        with open(full(path), "wb") as handle:
            handle.write(b"new")
        os.chmod(full(path), 0o644)
    elif kind == "delete" and files + links:
        os.unlink(full(data.draw(st.sampled_from(files + links), label="delete")))
    elif kind == "chmod" and files:
        path = full(data.draw(st.sampled_from(files), label="chmod"))
        os.chmod(path, os.stat(path).st_mode ^ 0o111)
    elif kind == "relink" and links + files:
        path = data.draw(st.sampled_from(links + files), label="relink")
        os.unlink(full(path))
        os.symlink(os.fsencode(data.draw(link_targets(path, sorted(tree)), label="to")), full(path))
    elif kind == "touch" and files:
        os.utime(full(data.draw(st.sampled_from(files), label="touch")), (1_000_000, 1_000_000))
    elif kind == "ignore-add":
        with open(ignore_file, "a") as handle:
            handle.write(data.draw(st.sampled_from(IGNORE_LINES), label="ignore") + "\n")
    elif kind == "ignore-drop" and ignore_file.exists():
        lines = ignore_file.read_text().splitlines()
        ignore_file.write_text("\n".join(lines[1:]) + "\n")
    elif kind == "hardlink" and len(files) > 1:
        first, second = data.draw(st.sampled_from(files), label="link"), data.draw(st.sampled_from(files), label="to")
        if first == second:
            return "none"
        os.unlink(full(second))
        os.link(full(first), full(second))
    else:
        return "none"
    return kind


def will_fail(key: CacheKey) -> bool:
    return any("BuildKit will fail" in warning for warning in key.warnings)


def may_fail(key: CacheKey) -> bool:
    """Where BuildKit fails or not depending on its cache (a wildcard whose directory has no match, served
    from a look-alike COPY) or on its version (a name that is not UTF-8): the warning says "fails"."""
    return any("fail" in warning for warning in key.warnings)


def failed(image: tuple[str, ...]) -> bool:
    return image[:1] == ("failed",)


def same(image: tuple[str, ...], other: tuple[str, ...]) -> bool:
    return image == other or failed(image) and failed(other)


# Two sources of one COPY can put a file where the other put a directory: BuildKit fails on the
# destination, which the key does not model (it reads sources, and hashes the Dockerfile that names them).
DESTINATION_CONFLICTS = ("cannot replace to directory", "cannot copy to non-directory")


def check_failure(key: CacheKey, image: tuple[str, ...]) -> None:
    if failed(image) and any(conflict in image[1] for conflict in DESTINATION_CONFLICTS):
        return
    assert (will_fail(key) <= failed(image)) and (failed(image) <= may_fail(key)), (key.warnings, key.notes, image)


@pytest.fixture(scope="module")
def busybox(engine, tmp_path_factory) -> Path:
    """Bind-mount tests copy with busybox, from a named context so the context under test stays as generated."""
    return busybox_context(tmp_path_factory.mktemp("busybox"))


# Each example is two real builds (about 1 s); shrinking a failure would take minutes of builds, and the
# draws printed with a failure are small enough to read as they are.
@settings(max_examples=int(os.environ.get("REGCACHE_ORACLE_EXAMPLES", "50")), deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
@given(data=st.data())
def test_key_agrees_with_buildkit(busybox, tmp_path_factory, data) -> None:
    tree = data.draw(trees(), label="tree")
    copies, mounts = data.draw(dockerfiles(tree), label="dockerfile")
    ignore = data.draw(st.lists(st.sampled_from(IGNORE_LINES), max_size=4), label="ignore file")
    # BuildKit prefers Dockerfile.dockerignore (beside the Dockerfile) to the context's .dockerignore.
    ignore_name, decoy = data.draw(st.sampled_from([(".dockerignore", None), ("Dockerfile.dockerignore", None),
                                                    ("Dockerfile.dockerignore", ".dockerignore")]), label="in")
    base = tmp_path_factory.mktemp("oracle")
    (base / "outside").mkdir()
    (base / "outside/f").write_text("outside the context")
    context = base / "ctx"
    write_tree(context, tree)
    (context / "Dockerfile").write_bytes(dockerfile_text(copies, mounts))
    if ignore:
        (context / ignore_name).write_text("\n".join(ignore) + "\n")
    if decoy:
        (context / decoy).write_text("*\n")  # would exclude everything, if BuildKit read it

    key_before, image_before = key_of(context), build(context, busybox)
    check_failure(key_before, image_before)
    change = mutate(data, context, tree, context / ignore_name)
    key_after, image_after = key_of(context), build(context, busybox)
    check_failure(key_after, image_after)

    if key_after.digest == key_before.digest:
        assert same(image_after, image_before), f"same key, different image after {change}"
    # Two sources of one COPY can write one name (the last wins) and the key hashes both, so the
    # converse is only checked where each COPY has one source.
    if change in FILES_ONLY and image_before == image_after and not failed(image_before) \
            and all(len(c) == 1 for c in copies):
        assert key_after.digest == key_before.digest, f"{change} changed the key but not the image"
    shutil.rmtree(base)
