"""Unit tests for the content-addressed cache key: Dockerfile reading and what moves the key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcache.cache_key import CacheKey, compute_cache_key, slug
from regcache.dockerfile import CopySource, copy_sources
from regcache.errors import InputError

TAG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")

SOURCES = [
    pytest.param("FROM x\nCOPY a /dst\n", [("a", 2)], id="simple"),
    pytest.param("FROM x\ncopy a b /dst/\nAdd c /d\n", [("a", 2), ("b", 2), ("c", 3)], id="case-insensitive"),
    pytest.param("COPY . .\n", [(".", 1)], id="whole-dir"),
    pytest.param("COPY a /dst", [("a", 1)], id="no-trailing-newline"),
    pytest.param("COPY a\\\n  b \\\n  /dst\n", [("a", 1), ("b", 1)], id="continuation"),
    pytest.param("COPY a \\  \n /dst\n", [("a", 1)], id="continuation-trailing-space"),
    pytest.param("COPY a \\\n# a comment\n  # indented comment\n\n  b /dst\n", [("a", 1), ("b", 1)], id="comment-in"),
    pytest.param("# COPY no /dst\n  # COPY no2 /dst\nCOPY yes /dst\n", [("yes", 3)], id="comment-lines"),
    pytest.param("# escape=`\nFROM x\nCOPY a `\n  b C:\\dst\n", [("a", 3), ("b", 3)], id="escape-backtick"),
    pytest.param("# escape=`\nCOPY a\\ /dst\n", [("a\\", 2)], id="escape-backtick-backslash-literal"),
    pytest.param("FROM x\n# escape=`\nCOPY a `\n b /d\n", [("a", 3)], id="late-directive-ignored"),
    pytest.param('COPY ["a b", "c", "/dest/"]\n', [("a b", 1), ("c", 1)], id="json"),
    pytest.param('COPY --chown=1:1 ["x", "/d"]\n', [("x", 1)], id="json-with-flag"),
    pytest.param('COPY ["broken", /d\n', [('["broken",', 1)], id="bad-json-is-words"),
    pytest.param(
        "COPY --chown=a:b --chmod=644 --link --link=true --parents --exclude=*.md src /d\n",
        [("src", 1)],
        id="flags",
    ),
    pytest.param("COPY --from=builder /out /out\nCOPY --FROM=0 /x /y\n", [], id="from"),
    pytest.param("COPY --from=builder /out /out\nCOPY real /r\n", [("real", 2)], id="from-then-real"),
    pytest.param("ADD https://example.com/a.tgz /a\nADD http://x/y /y\n", [], id="add-url"),
    pytest.param("ADD --checksum=sha256:abc https://x/y.tgz local /d\n", [("local", 1)], id="add-checksum"),
    pytest.param(
        "ADD --keep-git-dir=true https://github.com/a/b.git /b\nADD git@github.com:a/b.git /c\n",
        [],
        id="add-git",
    ),
    pytest.param("ONBUILD COPY a /dst\nonbuild ADD b /d\n", [], id="onbuild"),
    pytest.param("RUN <<EOF\nset -e\nCOPY fake /x\nEOF\nCOPY real /r\n", [("real", 5)], id="run-heredoc"),
    pytest.param("RUN <<-EOF\n\tCOPY fake /x\n\tEOF\nCOPY real /r\n", [("real", 4)], id="heredoc-chomp"),
    pytest.param(
        "RUN <<\"EOF\" bash\nCOPY fake /x\nEOF\nRUN <<'END'\nADD fake2 /y\nEND\nCOPY real /r\n",
        [("real", 7)],
        id="heredoc-quoted",
    ),
    pytest.param("COPY <<EOF /dest\nCOPY fake /x\nEOF\nCOPY real /r\n", [("real", 4)], id="copy-heredoc"),
    pytest.param("COPY <<A <<B /dest/\nADD a /\nA\nADD b /\nB\nCOPY c /r\n", [("c", 6)], id="two-heredocs"),
    pytest.param("RUN --mount=type=cache,target=/c <<EOF\nCOPY x /\nEOF\n", [], id="heredoc-after-flag"),
    pytest.param("ONBUILD RUN <<EOF\nCOPY x /\nEOF\nCOPY y /\n", [("y", 4)], id="onbuild-heredoc"),
    pytest.param("RUN echo $((1<<2))\nCOPY a /d\n", [("a", 2)], id="shift-not-heredoc"),
    pytest.param('RUN ["sh", "-c", "<<EOF"]\nCOPY a /d\n', [("a", 2)], id="json-run-no-heredoc"),
    pytest.param("RUN <<EOF\nCOPY never /terminated\n", [], id="unterminated-heredoc"),
    pytest.param("COPY /abs ./rel ../up /d\n", [("/abs", 1), ("./rel", 1), ("../up", 1)], id="paths"),
    pytest.param("COPY $SRC ${B}/x /d\n", [("$SRC", 1), ("${B}/x", 1)], id="variables"),
    pytest.param("COPY *.txt dir/**/x? [ab].c /d\n", [("*.txt", 1), ("dir/**/x?", 1), ("[ab].c", 1)], id="globs"),
    pytest.param("COPY onlydest\nCOPY\nADD --link\n", [], id="no-sources"),
    pytest.param("\ufeffCOPY a /d\r\nCOPY b /d\r\n", [("a", 1), ("b", 2)], id="bom-crlf"),
    pytest.param("FROM x\n   COPY   a\t\tb   /d   \n", [("a", 2), ("b", 2)], id="whitespace"),
]


@pytest.mark.parametrize(("text", "expected"), SOURCES)
def test_copy_sources(text: str, expected: list[tuple[str, int]]) -> None:
    assert copy_sources(text) == [CopySource(pattern, line) for pattern, line in expected]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_copy_sources_never_raises(text: str) -> None:
    assert isinstance(copy_sources(text), list)


DOCKERFILE_WORDS = ["COPY", "ADD", "RUN", "ONBUILD", "--from=x", "<<EOF", "<<-E", "EOF", "\\", "`", "#", "[", '"']


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*DOCKERFILE_WORDS, " ", "\n", "\t", "a", "$X", "*"]), max_size=60))
def test_copy_sources_never_raises_on_dockerfile_like_text(tokens: list[str]) -> None:
    assert isinstance(copy_sources(" ".join(tokens)), list)


def test_copy_sources_survives_deep_json() -> None:
    assert copy_sources("COPY " + "[" * 100_000 + " /d\n") == [CopySource("[" * 100_000, 1)]


DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM alpine AS builder
COPY --from=golang:1 /usr/local/go /go
COPY built.txt /b
FROM alpine
COPY scripts/ /scripts/
COPY config.toml ./src/*.sh /app/
COPY --from=builder /b /b
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path / "ci/docker/app/Dockerfile", DOCKERFILE)
    write(tmp_path / "config.toml", "a = 1\n")
    write(tmp_path / "scripts/build.sh", "echo build\n")
    write(tmp_path / "scripts/deep/nested/x.py", "print(1)\n")
    write(tmp_path / "src/one.sh", "one\n")
    write(tmp_path / "src/two.sh", "two\n")
    write(tmp_path / "src/main.rs", "fn main() {}\n")
    write(tmp_path / "built.txt", "only in stage\n")
    write(tmp_path / "README.md", "docs\n")
    write(tmp_path / ".git/HEAD", "ref: refs/heads/main\n")
    return tmp_path


def key(workspace: Path, **overrides: object) -> CacheKey:
    arguments: dict[str, object] = {
        "workspace": workspace,
        "context": Path("."),
        "dockerfile": Path("ci/docker/app/Dockerfile"),
        "target": "",
        "build_args": (("A", "1"), ("B", "2")),
        "platforms": ("linux/amd64",),
        "version": "v1",
    }
    arguments.update(overrides)
    return compute_cache_key(**arguments)  # type: ignore[arg-type]


def test_key_is_stable(workspace: Path) -> None:
    first, second = key(workspace), key(workspace)
    assert first == second
    assert first.tag.startswith("ci-docker-app-")
    assert first.tag == f"ci-docker-app-{first.digest[:24]}"
    assert len(first.digest) == 64
    assert not first.whole_context


def test_key_lists_hashed_files(workspace: Path) -> None:
    # built.txt is copied by the builder stage from the context, so it counts; README.md does not.
    assert key(workspace).files == (
        "built.txt",
        "config.toml",
        "scripts/build.sh",
        "scripts/deep/nested/x.py",
        "src/one.sh",
        "src/two.sh",
    )


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda ws: write(ws / "config.toml", "a = 2\n"), id="copied-file"),
        pytest.param(lambda ws: write(ws / "scripts/deep/nested/x.py", "print(2)\n"), id="file-in-dir"),
        pytest.param(lambda ws: write(ws / "scripts/new.sh", ""), id="new-file-in-dir"),
        pytest.param(lambda ws: (ws / "scripts/build.sh").unlink(), id="removed-file-in-dir"),
        pytest.param(lambda ws: write(ws / "src/one.sh", "uno\n"), id="glob-matched-file"),
        pytest.param(lambda ws: write(ws / "src/three.sh", "three\n"), id="new-glob-match"),
        pytest.param(lambda ws: write(ws / "ci/docker/app/Dockerfile", DOCKERFILE + "RUN true\n"), id="dockerfile"),
        pytest.param(lambda ws: (ws / "scripts/build.sh").chmod(0o755), id="executable-bit"),
    ],
)
def test_content_changes_move_the_key(workspace: Path, change) -> None:
    before = key(workspace)
    change(workspace)
    assert key(workspace).digest != before.digest


def test_other_mode_bits_leave_the_key(workspace: Path) -> None:
    before = key(workspace)
    (workspace / "config.toml").chmod(0o600)
    assert key(workspace) == before


@pytest.mark.parametrize(
    "override",
    [
        {"target": "test"},
        {"build_args": (("A", "1"), ("B", "3"))},
        {"build_args": (("A", "1"),)},
        {"build_args": (("B", "2"), ("A", "1"))},
        {"platforms": ("linux/arm64",)},
        {"platforms": ("linux/amd64", "linux/arm64")},
        {"version": "v2"},
    ],
    ids=["target", "arg-value", "arg-removed", "arg-order", "platform", "platform-added", "version"],
)
def test_settings_move_the_key(workspace: Path, override: dict[str, object]) -> None:
    assert key(workspace, **override).digest != key(workspace).digest


@pytest.mark.parametrize(
    "path",
    ["README.md", "src/main.rs", "new/file.txt", ".git/HEAD", "ci/docker/app/notes.txt"],
)
def test_unrelated_files_leave_the_key(workspace: Path, path: str) -> None:
    before = key(workspace)
    write(workspace / path, "changed\n")
    assert key(workspace) == before


def test_stage_only_file_leaves_the_key(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM a AS builder\nRUN make\nFROM b\nCOPY --from=builder /out/bin /bin\n")
    write(tmp_path / "out/bin", "1")
    before = key(tmp_path, dockerfile=Path("Dockerfile"))
    write(tmp_path / "out/bin", "2")
    assert key(tmp_path, dockerfile=Path("Dockerfile")) == before
    assert before.files == ()
    assert before.tag.startswith("dockerfile-")


def test_framing_is_unambiguous(workspace: Path) -> None:
    shifted = [
        {"build_args": (("A", "12"),)},
        {"build_args": (("A1", "2"),)},
        {"build_args": (("A", ""), ("1", "2"))},
    ]
    assert len({key(workspace, **override).digest for override in shifted}) == 3
    assert key(workspace, target="a", version="b").digest != key(workspace, target="ab", version="").digest
    assert (
        key(workspace, platforms=("linux/amd64,linux/arm64",)).digest
        != key(workspace, platforms=("linux/amd64", "linux/arm64")).digest
    )


def test_variable_source_hashes_whole_context(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nARG SRC=app\nCOPY ${SRC} /app\n")
    write(tmp_path / "app/main.py", "1\n")
    write(tmp_path / "docs/readme.md", "docs\n")
    write(tmp_path / ".git/HEAD", "ref: a\n")
    write(tmp_path / "lib/.git/HEAD", "ref: a\n")

    def current() -> CacheKey:
        return key(tmp_path, dockerfile=Path("Dockerfile"))

    before = current()
    assert before.whole_context
    assert before.files == ("Dockerfile", "app/main.py", "docs/readme.md")
    write(tmp_path / ".git/HEAD", "ref: b\n")
    write(tmp_path / ".git/objects/ab", "x")
    write(tmp_path / "lib/.git/HEAD", "ref: b\n")
    assert current() == before
    for path in ("app/main.py", "docs/readme.md", "new.txt"):
        previous = current()
        write(tmp_path / path, f"changed {path}\n")
        assert current().digest != previous.digest


def test_context_subdirectory_and_leading_slash(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY /a.txt ./b.txt ../c.txt /d/\n")
    for name in ("a", "b", "c"):
        write(tmp_path / f"ctx/{name}.txt", name)
    write(tmp_path / "c.txt", "outside the context")
    result = key(tmp_path, dockerfile=Path("Dockerfile"), context=Path("ctx"))
    assert result.files == ("a.txt", "b.txt", "c.txt")
    write(tmp_path / "c.txt", "still outside")
    assert key(tmp_path, dockerfile=Path("Dockerfile"), context=Path("ctx")) == result


def test_symlinks_are_hashed_as_buildkit_copies_them(tmp_path: Path) -> None:
    """COPY of a link copies what it points to; a link inside a copied directory is copied as a link."""
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "1")
    ws = tmp_path / "ws"
    write(ws / "Dockerfile", "FROM x\nCOPY data app/lib.txt /d/\n")
    write(ws / "data/real.txt", "r")
    write(ws / "shared/lib.txt", "lib 1")
    os.symlink(outside / "secret.txt", ws / "data/link.txt")
    (ws / "app").mkdir()
    os.symlink("../shared/lib.txt", ws / "app/lib.txt")

    def current() -> CacheKey:
        return key(ws, dockerfile=Path("Dockerfile"))

    before = current()
    assert before.files == ("data/link.txt", "data/real.txt", "shared/lib.txt")
    write(outside / "secret.txt", "2")  # behind a link that BuildKit copies as a link
    assert current() == before
    write(ws / "shared/lib.txt", "lib 2")  # behind a link that BuildKit follows
    assert current().digest != before.digest
    changed = current()
    (ws / "data/link.txt").unlink()
    os.symlink(outside / "other.txt", ws / "data/link.txt")
    assert current().digest != changed.digest


def test_a_link_out_of_the_context_is_named(tmp_path: Path) -> None:
    write(tmp_path / "scripts/shared.sh", "in the context")
    ws = tmp_path / "ws"
    write(ws / "Dockerfile", "FROM x\nCOPY host/shared.sh /s/\n")
    (ws / "host").mkdir()
    os.symlink("../../scripts/shared.sh", ws / "host/shared.sh")
    result = key(ws, dockerfile=Path("Dockerfile"))
    assert result.notes == ("symlink host/shared.sh -> ../../scripts/shared.sh points outside the context: "
                            "BuildKit follows it inside the context, to scripts/shared.sh",)
    assert result.warnings == ("Dockerfile:2: COPY source host/shared.sh leads through a symlink out of the "
                               "context to nothing (BuildKit will fail: not found)",)


def test_missing_source_contributes_its_pattern_and_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY missing.txt nothing-* /d/\n")
    result = key(tmp_path, dockerfile=Path("Dockerfile"))
    assert result.files == ()
    assert result.warnings == (
        "Dockerfile:2: COPY source missing.txt does not exist in the context (BuildKit will fail: not found)",
        "Dockerfile:2: COPY source nothing-* matches nothing in the context (BuildKit copies nothing for it)",
    )
    write(tmp_path / "missing.txt", "now here")
    assert key(tmp_path, dockerfile=Path("Dockerfile")).digest != result.digest


def test_glob_forms(tmp_path: Path) -> None:
    """Go's filepath.Match, as BuildKit: ** is * twice (one level), [^x] negates, a star stays in its directory."""
    write(tmp_path / "Dockerfile", "FROM x\nCOPY **/*.cfg f?.txt [ab].c file[^x].txt /d/\n")
    for path in ("a.cfg", "deep/b.cfg", "deep/er/c.cfg", "f1.txt", "f22.txt", "a.c", "c.c", ".git/x.cfg",
                 "file1.txt", "filex.txt"):
        write(tmp_path / path, path)
    assert key(tmp_path, dockerfile=Path("Dockerfile")).files == ("a.c", "deep/b.cfg", "f1.txt", "file1.txt")


def test_double_star_and_dot_copy_everything_but_git(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\n")
    write(tmp_path / "a/b.txt", "b")
    write(tmp_path / ".git/HEAD", "x")
    for line in ("COPY ** /d/", "COPY . .", "COPY ./ /d/", 'COPY ["/", "/d/"]'):
        write(tmp_path / "ctx.Dockerfile", f"FROM x\n{line}\n")
        result = key(tmp_path, dockerfile=Path("ctx.Dockerfile"))
        assert result.files == ("Dockerfile", "a/b.txt", "ctx.Dockerfile"), line
        assert not result.whole_context


def test_symlinked_context_is_followed(tmp_path: Path) -> None:
    write(tmp_path / "real/Dockerfile", "FROM x\nCOPY . .\n")
    write(tmp_path / "real/f.txt", "1")
    os.symlink(tmp_path / "real", tmp_path / "ctx")
    result = key(tmp_path, dockerfile=Path("real/Dockerfile"), context=Path("ctx"))
    assert result.files == ("Dockerfile", "f.txt")


def test_dockerfile_outside_workspace_uses_absolute_path(tmp_path: Path) -> None:
    dockerfile = write(tmp_path / "elsewhere/Build.Dockerfile", "FROM x\n")
    (tmp_path / "ws").mkdir()
    result = key(tmp_path / "ws", dockerfile=dockerfile)
    assert result.tag.startswith(slug(dockerfile.as_posix()) + "-")
    assert TAG.match(result.tag)


def test_unreadable_dockerfile_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        key(tmp_path, dockerfile=Path("nope/Dockerfile"))
    assert caught.value.name == "file"
    assert caught.value.problem.startswith("cannot read nope/Dockerfile: ")
    assert caught.value.accepted == "a readable Dockerfile path, relative to the workspace"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("ci/docker/x86_64-linux/Dockerfile", "ci-docker-x86_64-linux"),
        ("Dockerfile", "dockerfile"),
        ("dockerfile", "dockerfile"),
        ("ci/app.Dockerfile", "ci-app.dockerfile"),
        ("CI/DOCKERFILE", "ci"),
        (".ci/Dockerfile", "ci"),
        ("a b/ü/Dockerfile", "a-b"),
        ("--/__/..", "dockerfile"),
        ("", "dockerfile"),
        ("/abs/path/Dockerfile", "abs-path"),
    ],
)
def test_slug(path: str, expected: str) -> None:
    assert slug(path) == expected


@pytest.mark.parametrize(
    "folder",
    [
        "Ünïcödé ☃",
        "With Spaces",
        "UPPER",
        "x" * 250 + "/" + "y" * 49,  # 300 characters; one name may only have 255 bytes
        "a" * 99 + "-" + "b" * 150 + "/c" * 30,
        "-._",
        "日本語",
        "a" * 99 + ".b",
        "Docker File/DOCKERFILE.d",
    ],
)
def test_tag_is_valid_for_weird_paths(tmp_path: Path, folder: str) -> None:
    write(tmp_path / folder / "Dockerfile", "FROM x\n")
    result = key(tmp_path, dockerfile=Path(folder) / "Dockerfile")
    assert TAG.match(result.tag), result.tag
    assert len(slug(folder)) <= 100


def test_slug_truncates_long_names() -> None:
    assert slug("x" * 300) == "x" * 100
    assert slug("a" * 99 + "-" + "b" * 200) == "a" * 99


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_slug_always_gives_a_valid_tag_prefix(path: str) -> None:
    assert TAG.match(slug(path) + "-" + "0" * 24)


def test_dockerignore_is_applied_and_hashed(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY . /app/\n")
    write(tmp_path / "src/main.py", "1")
    write(tmp_path / "docs/guide.md", "docs")
    write(tmp_path / ".dockerignore", "docs\n# comment\n")

    def current() -> CacheKey:
        return key(tmp_path, dockerfile=Path("Dockerfile"))

    before = current()
    assert before.dockerignore == ".dockerignore"
    assert before.files == (".dockerignore", "Dockerfile", "src/main.py")
    write(tmp_path / "docs/guide.md", "edited docs")  # excluded: never moves the key
    write(tmp_path / "docs/new.md", "new")
    assert current() == before
    write(tmp_path / ".dockerignore", "docs\n# another comment\n")  # its own text is in the key
    assert current().digest != before.digest
    write(tmp_path / ".dockerignore", "")  # now docs/ is copied, and so counts
    assert "docs/guide.md" in current().files


def test_the_dockerfiles_own_ignore_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "ci/app.Dockerfile", "FROM x\nCOPY a b /d/\n")
    write(tmp_path / "a", "a")
    write(tmp_path / "b", "b")
    write(tmp_path / ".dockerignore", "a\n")
    assert key(tmp_path, dockerfile=Path("ci/app.Dockerfile")).files == ("b",)
    write(tmp_path / "ci/app.Dockerfile.dockerignore", "b\n")
    result = key(tmp_path, dockerfile=Path("ci/app.Dockerfile"))
    assert (result.files, result.dockerignore) == (("a",), "ci/app.Dockerfile.dockerignore")
    write(tmp_path / "ci/app.Dockerfile.dockerignore", "")  # empty, and still preferred (seen with BuildKit)
    assert key(tmp_path, dockerfile=Path("ci/app.Dockerfile")).files == ("a", "b")


def test_bind_mount_sources_are_hashed(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nRUN --mount=type=bind,source=tools,target=/t /t/build.sh\n")
    write(tmp_path / "tools/build.sh", "echo 1")
    before = key(tmp_path, dockerfile=Path("Dockerfile"))
    assert before.files == ("tools/build.sh",)
    write(tmp_path / "tools/build.sh", "echo 2")
    assert key(tmp_path, dockerfile=Path("Dockerfile")).digest != before.digest


def test_a_bad_dockerignore_hashes_more_and_says_so(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY . /app/\n")
    write(tmp_path / "a", "a")
    write(tmp_path / ".dockerignore", "a[\n")  # BuildKit: "syntax error in pattern", the build fails
    result = key(tmp_path, dockerfile=Path("Dockerfile"))
    assert "a" in result.files
    assert result.notes[0].startswith(".dockerignore: ") and "as if it had no ignore file" in result.notes[0]


def test_git_directories_are_named_in_a_note(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY . /app/\n")
    write(tmp_path / ".git/HEAD", "ref")
    assert key(tmp_path, dockerfile=Path("Dockerfile")).notes == (
        ".git: BuildKit copies .git, the key leaves it out (it changes on every checkout); "
        "add .git to .dockerignore to keep it out of the image too",)
    write(tmp_path / ".dockerignore", ".git\n")
    assert key(tmp_path, dockerfile=Path("Dockerfile")).notes == ()


def test_names_that_are_not_utf8_are_hashed(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM x\nCOPY data /data/\n")
    (tmp_path / "data").mkdir()
    odd = os.path.join(os.fsencode(tmp_path), b"data", b"caf\xe9.txt")
    with open(odd, "wb") as handle:
        handle.write(b"1")
    before = key(tmp_path, dockerfile=Path("Dockerfile"))
    assert before.files == ("data/caf\\xe9.txt",)  # shown escaped, hashed as the bytes they are
    assert before.warnings == ("Dockerfile:2: COPY source data sends data/caf\\xe9.txt, a name that is not UTF-8: "
                               "BuildKit since Docker 27 fails on it (\"string field contains invalid UTF-8\"); "
                               "Docker 26's copies it",)
    with open(odd, "wb") as handle:
        handle.write(b"2")
    assert key(tmp_path, dockerfile=Path("Dockerfile")).digest != before.digest


def test_the_scheme_is_version_2(workspace: Path) -> None:
    """A fixed input, a fixed key: a change to the hashing must show here, and move the scheme version
    (b"regcache-cache-key/2") so that no tag of the old scheme can be taken for one of the new."""
    for path in ("config.toml", "scripts/build.sh", "scripts/deep/nested/x.py", "src/one.sh", "src/two.sh",
                 "built.txt"):
        (workspace / path).chmod(0o644)
    assert key(workspace).digest == "e7497cffd37918a1e3fa3e05987b77ae8b18321a965c756131d21a0303e9fb10"


def test_an_ignore_pattern_that_fails_late_is_a_warning(tmp_path: Path) -> None:
    """patternmatcher compiles a pattern when a path first reaches it: `!\\é` is an invalid regular expression
    only once `a` has matched. BuildKit then fails the build; the key says so instead of raising."""
    write(tmp_path / ".dockerignore", "a\n!\\é\n")
    write(tmp_path / "a", "a")
    for dockerfile in ("FROM x\nCOPY a /a\n", "FROM x\nCOPY $X /x\n"):
        write(tmp_path / "Dockerfile", dockerfile)
        result = key(tmp_path, dockerfile=Path("Dockerfile"))
        assert len(result.warnings) == 1 and result.warnings[0].endswith("BuildKit will fail too"), result.warnings
