"""Go's filepath.Match and moby/patternmatcher as ported in regcache.patterns, against their own test tables.

The tables come from the Go sources (go1.26 path/filepath/match_test.go, patternmatcher v0.6.1
patternmatcher_test.go and ignorefile_test.go); the extra rows were run through the Go code itself
(a throw-away harness built from the same modules) and their answers written down here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcache.patterns import (
    BadPattern,
    PatternMatcher,
    Unsupported,
    go_clean,
    go_match,
    has_wildcards,
    read_ignore_file,
)

ERROR = "error"

# go1.26 src/path/filepath/match_test.go: matchTests (Unix rows).
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", False), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False),
    ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True), ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False),
    ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False),
    ("[]a]", "]", ERROR), ("[-]", "-", ERROR), ("[x-]", "x", ERROR), ("[x-]", "-", ERROR), ("[x-]", "z", ERROR),
    ("[-x]", "x", ERROR), ("[-x]", "-", ERROR), ("[-x]", "a", ERROR), ("\\", "a", ERROR), ("[a-b-c]", "a", ERROR),
    ("[", "a", ERROR), ("[^", "a", ERROR), ("[^bc", "a", ERROR), ("a[", "a", ERROR), ("a[", "ab", ERROR),
    ("a[", "x", ERROR), ("a/b[", "x", ERROR), ("*x", "xxx", True),
]
# Rows run through Go: what BuildKit's COPY wildcards mean, where Python's fnmatch would differ.
GO_MATCH_EXTRA = [
    ("file[^x].txt", "file1.txt", True), ("file[^x].txt", "filex.txt", False),
    ("file[!x].txt", "filex.txt", True), ("file[!x].txt", "file!.txt", True),  # `!` is no negation in Go
    ("star\\*.txt", "star*.txt", True), ("star\\*.txt", "starX.txt", False), ("star*.txt", "starX.txt", True),
    ("*", "a/b", False), ("**", "a/b", False),  # ** is two stars: neither crosses a /
    ("**/*.cfg", "deep/b.cfg", True), ("**/*.cfg", "deep/er/c.cfg", False), ("**/*.cfg", "a.cfg", False),
    ("?", "\udcff", True), ("??", "é", False), ("?", "é", True), ("[^a]", "\udcff", True),  # one rune each
    ("a[^x]b", "a/b", True), ("a[/]b", "a/b", True),  # a class does match a /
    ("[a-c]*", "b.txt", True), ("\\[x]", "[x]", True), ("[x]", "[x]", False), ("[x]", "x", True),
    ("a\\", "a", ERROR), ("[\udcff]", "\udcff", ERROR), ("*\\", "a", ERROR),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH + GO_MATCH_EXTRA)
def test_go_match(pattern: str, name: str, expected: bool | str) -> None:
    if expected == ERROR:
        with pytest.raises(BadPattern):
            go_match(pattern, name)
    else:
        assert go_match(pattern, name) is expected


@pytest.mark.parametrize(("name", "expected"), [
    ("a", False), ("*", True), ("a?", True), ("[x]", True), ("a\\*", False), ("a\\**", True), ("]", False),
    ("\\[x]", False), ("x\\", False),
])
def test_has_wildcards(name: str, expected: bool) -> None:
    assert has_wildcards(name) is expected


@pytest.mark.parametrize(("path", "expected"), [
    ("", "."), ("/", "/"), ("a//b/", "a/b"), ("./a", "a"), ("a/../b", "b"), ("../a", "../a"), ("/../a", "/a"),
    ("a/b/../../..", ".."), ("//x", "/x"), ("!a/../b", "b"),
])
def test_go_clean(path: str, expected: str) -> None:
    assert go_clean(path) == expected


# patternmatcher v0.6.1 patternmatcher_test.go TestMatches (MatchesOrParentMatches).
PATTERNMATCHER = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True), ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir/dir2/file/", True), ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True), ("a\\*b", "a*b", True),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), PATTERNMATCHER)
def test_patternmatcher_table(pattern: str, path: str, expected: bool) -> None:
    assert PatternMatcher([pattern]).matches_or_parent_matches(path) is expected


@pytest.mark.parametrize(("patterns", "path", "expected"), [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
])
def test_patternmatcher_last_match_wins(patterns: list[str], path: str, expected: bool) -> None:
    assert PatternMatcher(patterns).matches_or_parent_matches(path) is expected


# Walked the way fsutil walks (parents first, each path with its parent's match info); answers from Go.
WALKS = [
    (["*.md"], {"a.md": True, "d/a.md": False}),
    (["**/*.md"], {"a.md": True, "d/a.md": True, "d/e/a.md": True}),
    (["docs"], {"docs": True, "docs/x": True, "docsx": False}),
    (["docs", "!docs/keep"], {"docs": True, "docs/keep": False, "docs/other": True, "docs/keep/y": False}),
    (["/lead"], {"lead": False}),  # the leading / is ignorefile's to remove, not patternmatcher's
    (["d/**"], {"d": False, "d/x": True, "d/x/y": True}),
    (["*.txt", "!keep.txt"], {"a.txt": True, "keep.txt": False}),
    (["!keep.txt", "*.txt"], {"keep.txt": True}),  # the last pattern that matches wins
    (["[^a]*"], {"b": True, "a": False, "ba": True}),
    (["dir/*/x"], {"dir/a/x": True, "dir/x": False}),
    (["a/**/b"], {"a/b": True, "a/x/y/b": True}),
    # Quirks of patternmatcher kept as they behave: its escape bitmap loses `|{}`, which reach the
    # regular expression raw; `\d` is a digit class; `^` is an anchor; `$` is literal.
    (["a|b*"], {"a": True, "ab": True, "b": True, "bx": True, "a|b": True}),
    (["x{2}*"], {"xx": True, "x{2}": False, "xxa": True}),
    (["a\\d*"], {"a1": True, "ad": False, "a": False}),
    (["a^*"], {"a^b": False}),
    (["a*$"], {"a$": True, "ab": False}),
    (["*"], {"a\n": True}), (["a*"], {"ab\n": True}),  # RE2's $ is the end: a name may end with a newline
    (["**"], {"x\ny/z": True}), (["**/b"], {"b": True, "x\ny/b": True}),
]


@pytest.mark.parametrize(("patterns", "paths"), WALKS)
def test_patternmatcher_walk(patterns: list[str], paths: dict[str, bool]) -> None:
    matcher, infos = PatternMatcher(patterns), {}
    for path, expected in paths.items():
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        matched, infos[path] = matcher.matches_using_parent_results(path, infos.get(parent, ()))
        assert matched is expected, path


def test_patternmatcher_errors() -> None:
    with pytest.raises(BadPattern):
        PatternMatcher(["!"])
    with pytest.raises(BadPattern):
        PatternMatcher(["a["])  # New's filepath.Match check
    lazy = PatternMatcher(["a*\\"])  # Go's check stops at the first chunk that fails: accepted
    assert not lazy.matches_or_parent_matches("b")
    never_used = PatternMatcher(["!\\é"])  # an invalid regexp is only an error once a path reaches it
    assert not never_used.matches_or_parent_matches("x")
    with pytest.raises(BadPattern):
        PatternMatcher(["x", "!\\é"]).matches_or_parent_matches("x")
    with pytest.raises(Unsupported):
        PatternMatcher(["a\\pL*"]).matches_or_parent_matches("a")


@pytest.mark.parametrize(("data", "expected"), [
    (b"#c\n a \n!b\n/c/\n./d\n\n! e\n", ["a", "!b", "c", "d", "!e"]),
    (b"\xef\xbb\xbfx\r\ny\n", ["x", "y"]),
    (b"/\n!\n", ["/", "!"]),
    (b"a/../b\n../c\n", ["b", "../c"]),
    (b" # not a comment\n#!x\n", ["# not a comment"]),
    (b"\x1cx\x1c\n", ["\x1cx\x1c"]),  # Go's TrimSpace keeps what Python's strip() would take
    (b"caf\xe9\n", ["caf\udce9"]),  # not UTF-8: kept byte for byte
    (b"", []),
])
def test_read_ignore_file(data: bytes, expected: list[str]) -> None:
    assert read_ignore_file(data) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab*?[]^!-\\/.é{}|$\udcff", max_size=8), st.text(alphabet="ab/.-é\udcff*[]", max_size=8))
def test_matchers_never_fail_other_than_cleanly(pattern: str, name: str) -> None:
    try:
        go_match(pattern, name)
    except BadPattern:
        pass
    try:
        PatternMatcher([pattern]).matches_or_parent_matches(name)
    except (BadPattern, Unsupported):
        pass


PATTERN_PARTS = ["a", "b", "/", "*", "**", "?", "[^a]", "!", ".md", "d/", "\\*", "|", "{2}", "é"]
PATH_NAMES = ["a", "b", "d", "a.md", "*", "é", "ab", "x|y"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=5).map("".join), min_size=1,
                max_size=4),
       st.lists(st.lists(st.sampled_from(PATH_NAMES), min_size=1, max_size=3), max_size=6))
def test_trying_only_the_patterns_that_may_match_changes_nothing(patterns: list[str],
                                                                 paths: list[list[str]]) -> None:
    """child_indices leaves out patterns that cannot match in a directory, and child_patterns rules names out
    without a regular expression: the walk must answer the same."""
    try:
        matcher = PatternMatcher(patterns)
    except BadPattern:
        return
    for parts in paths:
        info: tuple[bool, ...] = ()
        for depth in range(1, len(parts) + 1):
            path, directory = "/".join(parts[:depth]), "".join(f"{p}/" for p in parts[:depth - 1])
            try:
                everything = matcher.matches_using_parent_results(path, info)
                some = matcher.matches_using_parent_results(path, info, matcher.child_indices(directory, info))
            except (BadPattern, Unsupported):
                return
            assert some == everything, (patterns, path)
            if matcher.child_patterns(directory, info).rules_out(parts[depth - 1].encode()):
                assert everything == (False, (False,) * len(patterns)), (patterns, path)
            info = everything[1]
