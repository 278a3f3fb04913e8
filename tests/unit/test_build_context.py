"""What BuildKit copies from a context, read without BuildKit: symlinks, .dockerignore, wildcards, odd names.

Each rule here was checked against dockerd 26's BuildKit (see tests/integration/test_cache_key_oracle.py,
which checks the key against the engine itself on generated contexts).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from regcache.build_context import BuildContext, ContextError, Copied

Tree = dict[str, "str | bytes | tuple[str, str] | None"]  # content, ("link", target), or None for a directory


def make(root: Path, tree: Tree) -> Path:
    for path, value in tree.items():
        full = os.path.join(os.fsencode(root), os.fsencode(path))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if value is None:
            os.makedirs(full, exist_ok=True)
        elif isinstance(value, tuple):
            os.symlink(os.fsencode(value[1]), full)
        else:
            with open(full, "wb") as handle:
                handle.write(value.encode() if isinstance(value, str) else value)
    return root


def listing(copied: Copied) -> list[tuple[str, str, str]]:
    """(match name / path, kind, value shortened) for every entry, readable in an assert."""
    rows = []
    for name, entries in copied.matches:
        for entry in entries:
            path = b"/".join(p for p in (name, entry.path) if p).decode("utf-8", "backslashreplace")
            value = entry.value.decode() if entry.kind in ("link", "hardlink") else ""
            rows.append((path, entry.kind, value))
    return rows


def paths(copied: Copied) -> list[str]:
    return [path for path, kind, _ in listing(copied) if kind != "dir"]


# --- symlinks -------------------------------------------------------------------------------------

def test_a_source_that_is_a_link_copies_what_it_points_to(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"shared/lib.txt": "1", "app/lib.txt": ("link", "../shared/lib.txt")})
    copied = BuildContext(ctx).copy("app/lib.txt")
    assert listing(copied) == [("lib.txt", "file", "")]
    assert copied.files == [b"shared/lib.txt"]
    before = copied.matches
    (ctx / "shared/lib.txt").write_text("2")
    assert BuildContext(ctx).copy("app/lib.txt").matches != before


def test_a_linked_directory_is_followed_and_its_links_are_kept(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"real/a.txt": "a", "real/to-a": ("link", "a.txt"), "dir": ("link", "real")})
    copied = BuildContext(ctx).copy("dir")
    assert listing(copied) == [("dir", "dir", ""), ("dir/a.txt", "file", ""), ("dir/to-a", "link", "a.txt")]


def test_a_link_inside_a_copied_directory_is_its_text(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"app/run.sh": ("link", "../scripts/run.sh"), "scripts/run.sh": "1"})
    before = BuildContext(ctx).copy("app")
    assert listing(before) == [("app", "dir", ""), ("app/run.sh", "link", "../scripts/run.sh")]
    (ctx / "scripts/run.sh").write_text("2")  # BuildKit copies the link, not this file
    assert BuildContext(ctx).copy("app").matches == before.matches


def test_links_out_of_the_context_are_read_inside_it_and_named(tmp_path: Path) -> None:
    outside = make(tmp_path / "outside", {"x.sh": "outside"})
    ctx = make(tmp_path / "ctx", {
        "x.sh": "inside", "ci/up.sh": ("link", "../../../../x.sh"), "ci/abs.sh": ("link", "/x.sh"),
        "ci/gone.sh": ("link", str(outside / "x.sh")), "ci/kept": ("link", "../../outside/x.sh"),
    })
    context = BuildContext(ctx)
    up, absolute = context.copy("ci/up.sh"), context.copy("ci/abs.sh")
    assert listing(up) == [("up.sh", "file", "")] and listing(absolute) == [("abs.sh", "file", "")]
    assert up.files == absolute.files == [b"x.sh"]  # the context's x.sh, as BuildKit reads it
    assert up.notes == ["symlink ci/up.sh -> ../../../../x.sh points outside the context: "
                        "BuildKit follows it inside the context, to x.sh"]
    gone = context.copy("ci/gone.sh")
    assert gone.matches == [] and "leads through a symlink out of the context" in gone.missing
    assert "BuildKit will fail" in gone.missing and gone.notes
    whole = context.copy("ci")
    assert ("ci/kept", "link", "../../outside/x.sh") in listing(whole)
    assert any(note.startswith("symlink ci/kept -> ../../outside/x.sh points outside the context: copied as a link")
               for note in whole.notes)


def test_a_link_loop_is_an_error(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"a": ("link", "b"), "b": ("link", "a")})
    with pytest.raises(ContextError, match="too many levels of symbolic links"):
        BuildContext(ctx).copy("a")


# --- .dockerignore --------------------------------------------------------------------------------

TREE: Tree = {
    "docs/index.md": "d", "docs/keep/a.md": "k", "docs/other.md": "o", "src/main.rs": "m", "src/debug.log": "l",
    "src/deep/trace.log": "t", "node_modules/x/y.js": "y", "README.md": "r", "lead": "x", "sub/lead": "y",
}


@pytest.mark.parametrize(("patterns", "expected"), [
    ([], sorted(p for p in TREE)),
    (["docs", "!docs/keep"], ["README.md", "docs/keep/a.md", "lead", "node_modules/x/y.js", "src/debug.log",
                              "src/deep/trace.log", "src/main.rs", "sub/lead"]),
    (["**/*.log", "node_modules"], ["README.md", "docs/index.md", "docs/keep/a.md", "docs/other.md", "lead",
                                    "src/main.rs", "sub/lead"]),
    (["*", "!src", "src/deep"], ["src/debug.log", "src/main.rs"]),
    (["lead"], sorted(p for p in TREE if p != "lead")),  # from ignorefile: leading / taken off, anchored
    (["*.md"], sorted(p for p in TREE if p != "README.md")),  # *.md is the top level only
    (["*.md", "!README.md"], sorted(TREE)),
])
def test_dockerignore_decides_what_is_sent(tmp_path: Path, patterns: list[str], expected: list[str]) -> None:
    ctx = make(tmp_path, TREE)
    assert sorted(paths(BuildContext(ctx, patterns or None).copy("."))) == expected


def test_an_excluded_directory_is_there_only_for_what_an_exception_keeps(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"docs/keep/a.md": "k", "docs/other.md": "o", "empty/x": "x"})
    context = BuildContext(ctx, ["docs", "!docs/keep", "empty", "!empty/nothing"])
    assert listing(context.copy("docs")) == [("docs", "dir", ""), ("docs/keep", "dir", ""),
                                             ("docs/keep/a.md", "file", "")]
    assert context.copy("empty").missing.startswith("is excluded by .dockerignore")
    assert context.copy("docs/other.md").missing == "is excluded by .dockerignore (BuildKit will fail: not found)"


def test_an_excluded_directory_is_not_walked(tmp_path: Path, monkeypatch) -> None:
    ctx = make(tmp_path, {"node_modules/a/b.js": "b", "src/a": "a"})
    listed: list[bytes] = []
    original = BuildContext._listing

    def spy(self, rel):
        listed.append(rel)
        return original(self, rel)

    monkeypatch.setattr(BuildContext, "_listing", spy)
    BuildContext(ctx, ["node_modules", "!src/a"]).copy(".")
    assert b"node_modules" not in listed  # no exception could reach inside: skipped whole, as fsutil does


# --- wildcards ------------------------------------------------------------------------------------

GLOBS: Tree = {"a.cfg": "1", "deep/b.cfg": "2", "deep/er/c.cfg": "3", "file1.txt": "1", "filex.txt": "x",
               "star*.txt": "s", "starX.txt": "X", "dir/x.txt": "x", ".git/HEAD": "h", "sub/.git/HEAD": "h"}


@pytest.mark.parametrize(("pattern", "expected"), [
    ("**/*.cfg", ["b.cfg"]),  # ** is two stars, one directory level: not Python's recursive glob
    ("*.cfg", ["a.cfg"]),
    ("file[^x].txt", ["file1.txt"]),
    ("file[!x].txt", ["filex.txt"]),  # [!x] is "! or x" in Go
    ("st?r\\*.txt", ["star*.txt"]),  # after BuildKit's lexer: an escaped star next to another wildcard
    ("star*.txt", ["star*.txt", "starX.txt"]),
    ("d*", ["deep", "deep/b.cfg", "deep/er", "deep/er/c.cfg", "dir", "dir/x.txt"]),  # a directory is copied whole
    ("*/x.txt", ["x.txt"]),
    (".gi*", []),  # .git is left out of the key (it changes on every checkout)
])
def test_wildcards_are_go_filepath_match(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    ctx = make(tmp_path, GLOBS)
    copied = BuildContext(ctx).copy(pattern)
    assert [path for path, _, _ in listing(copied)] == expected


def test_a_wildcard_with_nothing_to_match(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"g/a.md": "a"})
    at_root = BuildContext(ctx).copy("*.txt")
    assert at_root.missing == "matches nothing in the context (BuildKit copies nothing for it)"
    below = BuildContext(ctx).copy("g/*.txt")
    assert below.missing.startswith("matches nothing in the context: BuildKit copies nothing for it, or fails")
    assert "nothing else is copied from g" in below.missing


def test_a_wildcard_match_leading_nowhere_fails(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"d/a": "a", "d/b": ("link", "../nothing")})
    copied = BuildContext(ctx).copy("d/*")
    assert copied.matches == []
    assert copied.missing == "matches d/b, a symlink to nothing BuildKit sends (BuildKit will fail: not found)"


def test_git_directories_are_left_out_and_reported(tmp_path: Path) -> None:
    ctx = make(tmp_path, GLOBS)
    copied = BuildContext(ctx).copy(".")
    assert ".git/HEAD" not in paths(copied) and "sub/.git/HEAD" not in paths(copied)
    assert sorted(copied.git_skipped) == [b".git", b"sub/.git"]
    assert BuildContext(ctx, [".git", "**/.git"]).copy(".").git_skipped == []


def test_only_what_the_dockerfile_names_is_sent(tmp_path: Path) -> None:
    """BuildKit sends the context through include patterns made of the sources: `[x]` as a pattern
    matches `x`, not a file called `[x]`, so a bind mount of `[x]` finds nothing, unless another
    source sends it."""
    ctx = make(tmp_path, {"[x]": "literal", "x": "x"})
    alone = BuildContext(ctx, includes=["[x]"]).copy("[x]", wildcards=False)
    assert alone.missing == ("is not sent: BuildKit reads its name as a pattern, which does not match it "
                             "(BuildKit will fail: not found)")
    with_star = BuildContext(ctx, includes=["[x]", "*"]).copy("[x]", wildcards=False)
    assert listing(with_star) == [("[x]", "file", "")]
    assert listing(BuildContext(ctx, includes=["[x]"]).copy("[x]")) == [("x", "file", "")]


# --- names and depth ------------------------------------------------------------------------------

def test_names_that_are_not_utf8_are_hashed_as_bytes(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"d/caf\udce9": "1", "d/ok": "2"})
    copied = BuildContext(ctx).copy("d")
    assert [entry.path for _, entries in copied.matches for entry in entries] == [b"", b"caf\xe9", b"ok"]
    before = copied.matches
    (Path(os.fsdecode(os.path.join(os.fsencode(ctx), b"d/caf\xe9")))).write_text("changed")
    assert BuildContext(ctx).copy("d").matches != before


def test_a_deep_tree_does_not_recurse(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() + 10
    path = "/".join(["d"] * depth)
    for level in range(1, depth + 1):  # os.makedirs itself recurses
        os.mkdir(tmp_path / "/".join(["d"] * level))
    ctx = make(tmp_path, {f"{path}/leaf.txt": "leaf"})
    try:
        copied = BuildContext(ctx).copy("d")
        assert paths(copied)[-1].endswith("/d/leaf.txt") and len(listing(copied)) == depth + 1
        assert listing(BuildContext(ctx).copy(f"{path}/leaf.txt")) == [("leaf.txt", "file", "")]
    finally:  # pytest's own clean-up (shutil.rmtree) would hit the recursion limit on this tree
        os.unlink(tmp_path / path / "leaf.txt")
        for level in range(depth, 0, -1):
            os.rmdir(tmp_path / "/".join(["d"] * level))


def test_hard_links_stay_hard_links(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"d/a": "same"})
    os.link(ctx / "d/a", ctx / "d/b")
    assert listing(BuildContext(ctx).copy("d")) == [("d", "dir", ""), ("d/a", "file", ""), ("d/b", "hardlink", "d/a")]


def test_modes_other_than_the_executable_bit_are_not_hashed(tmp_path: Path) -> None:
    ctx = make(tmp_path, {"a": "1"})
    (ctx / "a").chmod(0o644)
    before = BuildContext(ctx).copy("a").matches
    (ctx / "a").chmod(0o600)
    assert BuildContext(ctx).copy("a").matches == before
    (ctx / "a").chmod(0o700)
    assert listing(BuildContext(ctx).copy("a")) == [("a", "file+x", "")]


def test_an_invalid_exception_nothing_reaches_is_no_error(tmp_path: Path) -> None:
    """BuildKit compiles a pattern on first use: an exception no path reaches never fails (seen with dockerd 26)."""
    ctx = make(tmp_path, {"a": "a"})
    assert paths(BuildContext(ctx, ["!\\é"]).copy(".")) == ["a"]
    with pytest.raises(ContextError, match="cannot be applied"):
        BuildContext(ctx, ["a", "!\\é"]).copy(".")
