"""The Dockerfile reader: context sources of COPY/ADD and bind mounts, and BuildKit's word processing.

The COPY/ADD forms of the Rust corpus (multi-source, continuations, --from, leading /) are in
test_cache_key.py's SOURCES table; this file covers what BuildKit does to each word, and RUN --mount.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regcache.dockerfile import ContextSource, context_sources, shell_word


@pytest.mark.parametrize(("word", "expected"), [
    ("plain.txt", "plain.txt"),
    ("star\\*.txt", "star*.txt"),  # the lexer takes the backslash: what reaches the copy is a glob
    ("star\\\\*.txt", "star\\*.txt"),  # doubled, a backslash reaches the copy (filepath.Match escapes *)
    ("'a b'", "a b"), ('"a b"', "a b"), ("'$HOME'", "$HOME"), ('"\\$x"', "$x"),
    ('"a\\b"', "a\\b"),  # inside double quotes a backslash only escapes " $ and itself
    ('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"), ("a\\", "a"), ("it's", "it's"),  # unterminated: left as written
    ("$", "$"), ("a$", "a$"), ("a$/b", "a$/b"), ("$$", None),
    ("$X", None), ("${X}", None), ('"$X"', None), ("a/$1", None), ("caf\udce9", "caf\ufffd"),
])
def test_shell_word(word: str, expected: str | None) -> None:
    assert shell_word(word) == expected


def test_shell_word_with_backtick_escape() -> None:
    assert shell_word("a`*b", escape="`") == "a*b"
    assert shell_word("a\\b", escape="`") == "a\\b"


def paths(text: str) -> list[tuple[str, int, str, str | None]]:
    return [(s.instruction, s.line, s.written, s.path) for s in context_sources(text)]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("RUN --mount=type=bind,source=src,target=/s make\n",
                 [("RUN --mount", 1, "type=bind,source=src,target=/s", "src")], id="bind"),
    pytest.param("RUN --mount=src=/a/b,target=/s make\n",
                 [("RUN --mount", 1, "src=/a/b,target=/s", "/a/b")], id="bind-is-default-src-alias"),
    pytest.param("RUN --mount=type=bind,target=/src make\n",
                 [("RUN --mount", 1, "type=bind,target=/src", "/")], id="no-source-is-whole-context"),
    pytest.param("RUN --mount=type=bind,from=builder,source=/out,target=/o x\n", [], id="from-stage"),
    pytest.param("RUN --mount=type=cache,target=/c --mount=type=secret,id=s --mount=type=tmpfs,target=/t x\n",
                 [], id="other-types"),
    pytest.param('RUN --mount=type=bind,"source=a,b",target=/s x\n',
                 [("RUN --mount", 1, 'type=bind,"source=a,b",target=/s', "a,b")], id="csv-quotes"),
    pytest.param("RUN --mount=type=BIND,SOURCE=x,target=/s y\n",
                 [("RUN --mount", 1, "type=BIND,SOURCE=x,target=/s", "x")], id="case"),
    pytest.param("RUN --mount=type=bind,source=$DIR,target=/s y\n",
                 [("RUN --mount", 1, "type=bind,source=$DIR,target=/s", None)], id="variable"),
    pytest.param("RUN --network=none --mount=type=bind,source=a,target=/a \\\n"
                 "  --mount=type=bind,source=b,target=/b x\n",
                 [("RUN --mount", 1, "type=bind,source=a,target=/a", "a"),
                  ("RUN --mount", 1, "type=bind,source=b,target=/b", "b")], id="several"),
    pytest.param("ONBUILD RUN --mount=type=bind,source=a,target=/a x\n", [], id="onbuild"),
    pytest.param("RUN --mount=type=bind,source=a,target=/a <<EOF\nCOPY b /b\nEOF\n",
                 [("RUN --mount", 1, "type=bind,source=a,target=/a", "a")], id="heredoc"),
    pytest.param("RUN echo --mount=type=bind,source=a,target=/a\n", [], id="not-a-flag"),
])
def test_bind_mounts(text: str, expected: list[tuple[str, int, str, str | None]]) -> None:
    assert paths(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('COPY ["star\\\\*.txt", "/d/"]\n', [("COPY", 1, "star\\*.txt", "star*.txt")], id="json-is-lexed-too"),
    pytest.param("COPY 'a b' /d/\n", [("COPY", 1, "'a", "'a"), ("COPY", 1, "b'", "b'")], id="quotes-do-not-group"),
    pytest.param("COPY \"x\" 'y' /d/\n", [("COPY", 1, '"x"', "x"), ("COPY", 1, "'y'", "y")], id="quotes-removed"),
    pytest.param("ADD a\u00a0b /d/\n", [("ADD", 1, "a\u00a0b", "a\u00a0b")], id="nbsp-is-no-separator"),
    pytest.param("# escape=`\nCOPY a`*b /d/\n", [("COPY", 2, "a`*b", "a*b")], id="backtick"),
    pytest.param("COPY --from=x a /d/\nCOPY b /d/\n", [("COPY", 2, "b", "b")], id="from"),
])
def test_copy_words(text: str, expected: list[tuple[str, int, str, str | None]]) -> None:
    assert paths(text) == expected


def test_context_sources_order_and_kinds() -> None:
    text = "FROM x\nCOPY a /a\nRUN --mount=source=m,target=/m true\nADD b /b\n"
    assert context_sources(text) == [
        ContextSource("COPY", 2, "a", "a"),
        ContextSource("RUN --mount", 3, "source=m,target=/m", "m"),
        ContextSource("ADD", 4, "b", "b"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab'\"\\`$ {}*é\udcff", max_size=12))
def test_shell_word_never_raises(word: str) -> None:
    result = shell_word(word)
    assert result is None or isinstance(result, str)
