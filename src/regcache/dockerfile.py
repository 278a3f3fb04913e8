"""What a Dockerfile reads from its build context: a static reading that mirrors BuildKit's parser.

Covered: parser directives (`# escape=`), line continuations, comments inside a continued instruction,
heredocs (their bodies are free text, never instructions), JSON and shell forms, flags, and the shell
quoting and escapes BuildKit applies to every source word before it looks the path up (`'a b'` is `a b`,
`star\\*.txt` is the glob `star*.txt`). Context sources are the COPY/ADD sources without `--from`
(remote ADDs excluded) and the `source` of `RUN --mount=type=bind` mounts without `from` (no source:
the whole context). ONBUILD instructions run in another build and are left out.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z0-9]+)[ \t]*=[ \t]*(.+?)[ \t]*$")
# BuildKit's own heredoc word pattern: optional fd, `<<`, optional `-`, a name without `<`.
_HEREDOC = re.compile(r"^\d*<<(-?)([^<]*)$")
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@)")
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
# BuildKit splits shell-form COPY/ADD arguments on this class only (not on every Unicode space).
_WORDS = re.compile(r"[\t\v\f\r ]+")
_SPECIAL_PARAMS = frozenset("@*#?-$!")
_AS_RUNES = {code: "\ufffd" for code in range(0xDC80, 0xDD00)}


@dataclass(frozen=True)
class CopySource:
    pattern: str  # as written in the Dockerfile
    line: int  # 1-based line of the instruction


@dataclass(frozen=True)
class ContextSource:
    instruction: str  # "COPY", "ADD" or "RUN --mount"
    line: int  # 1-based line of the instruction
    written: str  # as written in the Dockerfile (for a bind mount: its --mount value)
    path: str | None  # what BuildKit looks up, quotes and escapes applied; None when it expands a variable


def _split_word(text: str) -> tuple[str, str]:
    parts = text.strip().split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0] if parts else "", "")


def _split_flags(args: str) -> tuple[list[str], str]:
    """Flags only ever come before the sources, so the first non-`--` word ends them (as in BuildKit)."""
    flags: list[str] = []
    rest = args.strip()
    while rest.startswith("--"):
        word, rest = _split_word(rest)
        if word == "--":
            break
        flags.append(word)
    return flags, rest


def _flag(flag: str) -> tuple[str, str]:
    name, _, value = flag[2:].partition("=")
    return name.lower(), value


def _json_list(rest: str) -> list[str] | None:
    """Exec form is only exec form if it is a JSON list of strings; otherwise Docker reads it as words."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _heredoc(word: str) -> tuple[str, bool] | None:
    """(terminator, strip leading tabs) for a heredoc word; quotes only stop expansion, so drop them."""
    match = _HEREDOC.match(word)
    if not match:
        return None
    name = match.group(2).replace('"', "").replace("'", "")
    return (name, match.group(1) == "-") if name else None


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]


def _escape_char(lines: list[str]) -> str:
    """Parser directives only count before the first blank line, comment or instruction."""
    escape = "\\"
    for line in lines:
        match = _DIRECTIVE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
    return escape


def _instructions(lines: list[str], escape: str) -> Iterator[tuple[int, str, str]]:
    """Yield (line, keyword, arguments) per instruction, mirroring BuildKit's line reader.

    Heredoc bodies are consumed here because they are free text: a body line that reads
    `COPY secret /` must not be taken for an instruction.
    """
    continuation = re.compile(re.escape(escape) + r"[ \t]*$")
    index = 0
    while index < len(lines):
        start, logical = index, lines[index].lstrip(" \t")
        index += 1
        if not logical or logical.startswith("#"):
            continue
        logical, more = continuation.sub("", logical), bool(continuation.search(logical))
        while more and index < len(lines):
            raw = lines[index]
            index += 1
            if not raw.strip(" \t") or raw.lstrip(" \t").startswith("#"):
                continue  # comments and blank lines inside a continued instruction vanish
            more = bool(continuation.search(raw))
            logical += continuation.sub("", raw)
        keyword, args = _split_word(logical)
        keyword = keyword.lower()
        inner_keyword, inner_args = _split_word(args) if keyword == "onbuild" else (keyword, args)
        if inner_keyword.lower() in _HEREDOC_INSTRUCTIONS:
            _, rest = _split_flags(inner_args)
            words = [] if _json_list(rest) is not None else rest.split()
            for name, chomp in filter(None, map(_heredoc, words)):
                while index < len(lines):
                    body = lines[index]
                    index += 1
                    if (body.lstrip("\t") if chomp else body) == name:
                        break
        yield start + 1, keyword, args


def shell_word(word: str, escape: str = "\\") -> str | None:
    """A word as BuildKit's shell lexer leaves it: quotes removed, escapes applied.

    None when it expands a variable (`$X`, `${X}`), whose value a static reading cannot know.
    An unterminated quote is an error for BuildKit (the build fails), so its text is kept as it is.
    A byte that is not UTF-8 (a surrogate from decoding with surrogateescape) becomes U+FFFD, as it
    does in BuildKit's lexer: a Dockerfile cannot name such a file, only reach it through a directory
    or a wildcard.
    """
    word = word.translate(_AS_RUNES)
    out: list[str] = []
    i = 0
    while i < len(word):
        char = word[i]
        if char == "'":
            end = word.find("'", i + 1)
            if end < 0:
                return word
            out.append(word[i + 1:end])
            i = end + 1
        elif char == '"':
            quoted, i = _double_quoted(word, i + 1, escape)
            if quoted is None or i < 0:
                return None if quoted is None else word
            out.append(quoted)
        elif char == "$" and _is_variable(word, i):
            return None
        elif char == escape:
            out.append(word[i + 1:i + 2])  # a final escape vanishes
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _double_quoted(word: str, i: int, escape: str) -> tuple[str | None, int]:
    """The text of a double-quoted part whose first character is word[i], and the index after its quote.

    (None, i) when it expands a variable; (text, -1) when the quote is never closed.
    """
    out: list[str] = []
    while i < len(word):
        char = word[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "$" and _is_variable(word, i):
            return None, i
        if char == escape and i + 1 < len(word) and word[i + 1] in ('"', "$", escape):
            char, i = word[i + 1], i + 1  # only these are escaped inside double quotes
        elif char == escape and i + 1 >= len(word):
            break
        out.append(char)
        i += 1
    return "".join(out), -1


def _is_variable(word: str, i: int) -> bool:
    after = word[i + 1:i + 2]
    return after == "{" or (after != "" and (after.isalnum() or after == "_" or after in _SPECIAL_PARAMS))


def _bind_mounts(flags: list[str], line: int, escape: str) -> Iterator[ContextSource]:
    """The context paths of `--mount` flags: type bind (the default), no `from`."""
    for flag in flags:
        name, value = _flag(flag)
        if name != "mount":
            continue
        try:
            fields = next(csv.reader([value]), [])
        except csv.Error:
            continue  # BuildKit rejects it: the build fails before it reads anything
        options: dict[str, str] = {}
        for field in fields:
            key, _, option = field.partition("=")
            options[key.strip().lower()] = option
        if options.get("type", "bind").lower() != "bind" or options.get("from"):
            continue
        source = options.get("source", options.get("src", ""))
        yield ContextSource("RUN --mount", line, value, shell_word(source, escape) if source else "/")


def context_sources(dockerfile_text: str) -> list[ContextSource]:
    """Every path a build reads from its context, in Dockerfile order."""
    lines = _lines(dockerfile_text)
    escape = _escape_char(lines)
    sources: list[ContextSource] = []
    for line, keyword, args in _instructions(lines, escape):
        if keyword == "run":
            sources.extend(_bind_mounts(_split_flags(args)[0], line, escape))
        if keyword not in ("copy", "add"):
            continue
        flags, rest = _split_flags(args)
        if any(_flag(flag)[0] == "from" for flag in flags):
            continue
        words = _json_list(rest)
        if words is None:
            words = [word for word in _WORDS.split(rest.strip()) if word and _heredoc(word) is None]
        sources.extend(
            ContextSource(keyword.upper(), line, word, shell_word(word, escape))
            for word in words[:-1]
            if not _REMOTE.match(word)
        )
    return sources


def copy_sources(dockerfile_text: str) -> list[CopySource]:
    """The build-context sources of every COPY/ADD, as written, in order.

    Stage copies (`--from`), remote ADDs and heredoc sources are left out: they are not files
    of the context, so they cannot be hashed and changing the context does not change them.
    """
    return [CopySource(source.written, source.line) for source in context_sources(dockerfile_text)
            if source.instruction != "RUN --mount"]
