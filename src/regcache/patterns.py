"""The two pattern languages BuildKit applies to a build context, ported from their Go sources.

- `go_match`: Go's `path/filepath.Match`, which BuildKit uses for the wildcards of a COPY/ADD source
  (`*`, `?`, `[...]` with `[^...]` negation and ranges, `\\` escapes; `*` never crosses `/`; `**` is
  just two stars). Python's fnmatch differs on all of negation, escapes and `/`.
- `PatternMatcher`: github.com/moby/patternmatcher (v0.6), which BuildKit uses for `.dockerignore`:
  each pattern becomes a Go regular expression where `**` crosses directories, `!` patterns are
  exceptions, and the last pattern that matches wins. `read_ignore_file` is its `ignorefile.ReadAll`.

Names are `str` as `os.fsdecode` gives them: an undecodable byte is one surrogate character, just as
Go's UTF-8 decoder reads it as one (invalid) rune, so `?` and `[...]` consume the same amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Go's unicode.IsSpace, which strings.TrimSpace uses (Python's str.strip also strips \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
_RUNE_ERROR = "\ufffd"
_AS_RUNES = {code: _RUNE_ERROR for code in range(0xDC80, 0xDD00)}  # os.fsdecode's bad bytes, as Go reads them


class BadPattern(ValueError):
    """Go's filepath.ErrBadPattern, or a regular expression BuildKit would reject."""


class Unsupported(ValueError):
    """A valid pattern whose Go regular expression uses syntax not ported here (\\p{..}, [:alpha:], \\Q)."""


def go_clean(path: str) -> str:
    """Go's filepath.Clean on Unix: lexical, `..` at the root is dropped, "" is "."."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    text = "/".join(parts)
    return ("/" + text) if rooted else (text or ".")


def go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def _rune(char: str) -> str:
    """The rune Go decodes: an undecodable byte (a surrogate from os.fsdecode) reads as U+FFFD."""
    return _RUNE_ERROR if "\udc80" <= char <= "\udcff" else char


# --- Go's path/filepath.Match ------------------------------------------------------------------

def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif char == "[":
            in_range = True
        elif char == "]":
            in_range = False
        elif char == "*" and not in_range:
            return star, pattern[:i], pattern[i:]
        i += 1
    return star, pattern, ""


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern(chunk)
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern(chunk)
    char, rest = chunk[0], chunk[1:]
    if "\udc80" <= char <= "\udcff" or not rest:
        raise BadPattern(chunk)
    return char, rest


def _character_class(chunk: str, rune: str | None) -> tuple[bool, str]:
    """Whether `rune` is in the class that `chunk` starts with (after its "["), and the chunk after "]".

    With rune None (the match has already failed) the class is still parsed, for its errors.
    """
    negated = chunk.startswith("^")
    if negated:
        chunk = chunk[1:]
    matched, ranges = False, 0
    while not (chunk.startswith("]") and ranges > 0):
        low, chunk = _get_esc(chunk)
        high = low
        if chunk[0] == "-":
            high, chunk = _get_esc(chunk[1:])
        matched = matched or (rune is not None and low <= rune <= high)
        ranges += 1
    return matched != negated, chunk[1:]


def _match_chunk(chunk: str, name: str) -> str | None:
    """The rest of `name` after `chunk` matched its start, else None; BadPattern for a malformed chunk.

    Like Go, a failed match still parses the rest of the chunk, so errors do not depend on the name.
    """
    failed = False
    while chunk:
        failed = failed or not name
        head = chunk[0]
        if head == "[":
            rune = ""
            if not failed:
                rune, name = _rune(name[0]), name[1:]
            in_class, chunk = _character_class(chunk[1:], None if failed else rune)
            failed = failed or not in_class
        elif head == "?":
            if not failed:
                failed, name = name[0] == "/", name[1:]
            chunk = chunk[1:]
        else:
            if head == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern("trailing backslash")
            if not failed:
                failed, name = chunk[0] != name[0], name[1:]
            chunk = chunk[1:]
    return None if failed else name


def go_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match on Unix. Raises BadPattern where Go returns ErrBadPattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing * matches the rest, unless it has a /
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        rest = _skip_to_match(chunk, name, last=not pattern) if star else None
        if rest is None:
            return False
        name = rest
    return not name


def _skip_to_match(chunk: str, name: str, last: bool) -> str | None:
    """After a star: match `chunk` further on, skipping 1, 2... characters but never a `/`."""
    for i in range(len(name)):
        if name[i] == "/":
            break
        rest = _match_chunk(chunk, name[i + 1:])
        if rest is not None and not (last and rest):
            return rest
    return None


def has_wildcards(name: str) -> bool:
    """fsutil's containsWildcards: `*`, `?` or `[` not escaped by a backslash."""
    i = 0
    while i < len(name):
        if name[i] == "\\":
            i += 1
        elif name[i] in "*?[":
            return True
        i += 1
    return False


# --- moby/patternmatcher ------------------------------------------------------------------------

# patternmatcher means to escape `.+()|{}$`, but its bitmap (1 << (b/8) in a byte) loses `|{}`: those three
# reach the regular expression raw, so `{2}` repeats and `|` alternates there. Ported as it behaves.
_REGEX_ESCAPED = frozenset(".+()$")
_ASSERTIONS = frozenset({"^", "\\A", "\\b", "\\B", "\\Z"})
_RE2_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_PERL_CLASSES = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}
_C_ESCAPES = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _class_literal(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char


def _re2_escape(text: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the RE2 escape at text[i] (a backslash) to Python; returns (python, next index)."""
    if i + 1 >= len(text):
        raise BadPattern("trailing backslash in regular expression")
    char = text[i + 1]
    if char in _PERL_CLASSES:
        return (_PERL_CLASSES[char] if in_class else f"[{_PERL_CLASSES[char]}]"), i + 2
    if char in "DSW" and not in_class:
        return f"[^{_PERL_CLASSES[char.lower()]}]", i + 2
    if not in_class and char in "AbBz":
        return {"A": "\\A", "b": "\\b", "B": "\\B", "z": "\\Z"}[char], i + 2
    if char in _C_ESCAPES:
        return re.escape(_C_ESCAPES[char]) if not in_class else _class_literal(_C_ESCAPES[char]), i + 2
    if char.isascii() and not char.isalnum():
        return (_class_literal(char) if in_class else re.escape(char)), i + 2
    if char == "0" or (char in "1234567" and i + 2 < len(text) and text[i + 2] in "01234567"):
        j = i + 1
        while j < len(text) and j < i + 4 and text[j] in "01234567":
            j += 1
        literal = chr(int(text[i + 1:j], 8))
        return (_class_literal(literal) if in_class else re.escape(literal)), j
    if char == "x" and (hexa := re.match(r"x(?:\{([0-9A-Fa-f]{1,8})\}|([0-9A-Fa-f]{2}))", text[i + 1:])):
        code = int(hexa.group(1) or hexa.group(2), 16)
        if code > 0x10FFFF:
            raise BadPattern("invalid escape")
        literal = chr(code)
        return (_class_literal(literal) if in_class else re.escape(literal)), i + 1 + hexa.end()
    if char in "pPQC" or (char in "DSW" and in_class):
        raise Unsupported(f"\\{char}")
    raise BadPattern(f"invalid escape \\{char}")


def _re2_class(text: str, i: int) -> tuple[str, int]:
    """Translate the RE2 character class starting at text[i] ('[') to Python."""
    i += 1
    out = ["["]
    if i < len(text) and text[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i >= len(text) or text[i] != "]" or first:
        if i >= len(text):
            raise BadPattern("missing closing ]")
        first = False
        if text.startswith("[:", i):
            raise Unsupported("[:class:]")
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _PERL_CLASSES:
            item, i = _re2_escape(text, i, True)
            out.append(item)
            continue
        low, i = _re2_class_char(text, i)
        if i + 1 < len(text) and text[i] == "-" and text[i + 1] != "]":
            high, i = _re2_class_char(text, i + 1)
            if high < low:
                raise BadPattern("invalid character class range")
            out.append(f"{_class_literal(low)}-{_class_literal(high)}")
        else:
            out.append(_class_literal(low))
    out.append("]")
    return "".join(out), i + 1


def _re2_class_char(text: str, i: int) -> tuple[str, int]:
    if text[i] != "\\":
        return text[i], i + 1
    translated, j = _re2_escape(text, i, True)
    literal = translated[1:] if translated.startswith("\\") else translated
    return literal, j


def _re2_to_python(regex: str) -> re.Pattern[str]:
    """The subset of RE2 that patternmatcher produces, as a Python pattern with RE2's meaning."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            item, i = _re2_escape(regex, i, False)
        elif char == "[":
            item, i = _re2_class(regex, i)
        elif char == "$":
            item, i = r"\Z", i + 1  # RE2's $ is the end of the text; Python's also matches before a final \n
        elif char == "{" and (repeat := _RE2_REPEAT.match(regex, i)):
            low, high = int(repeat.group(1)), repeat.group(2)
            if low > 1000 or (high and int(high) > 1000):
                raise BadPattern("invalid repeat count")
            item, i = repeat.group(0), repeat.end()  # Python would read "{,n}" as a repeat; RE2 does not
            if out and out[-1] in _ASSERTIONS:
                out[-1] = f"(?:{out[-1]})"  # RE2 repeats an anchor (`^{2}`); Python wants it in a group
        elif char in "^.()?*|":
            item, i = char, i + 1  # what compile() itself wrote, or a user's raw ^ and |
        else:
            item, i = re.escape(char), i + 1
        out.append(item)
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise BadPattern(str(exc)) from exc


@dataclass
class Pattern:
    text: str  # cleaned, without the leading "!"
    exclusion: bool
    kind: str = ""  # exact, prefix, suffix or regexp; "" until compiled (patternmatcher compiles lazily)
    regex: re.Pattern[str] | None = field(default=None, repr=False)
    tail: str = ""  # literal characters a regexp match must end with: checked first, as it is cheaper
    head: str = ""  # literal characters any match must start with

    def compile(self) -> None:
        text = self.text.translate(_AS_RUNES)  # text/scanner reads a bad byte as U+FFFD
        regex, kind = _translate(text)
        if kind == "regexp":
            self.regex = _re2_to_python(regex + "$")
            if text.isascii() and not set(text) & set("\\|{}^"):
                # What follows the last wildcard; without a leading "/", which "**/" may have taken.
                self.tail = re.split(r"[*?\[\]]", text)[-1].lstrip("/")
                self.head = re.split(r"[*?\[\]]", text)[0]
        elif kind in ("exact", "prefix"):
            self.head = self.text if kind == "exact" else self.text[:-2]
        self.kind = kind

    def may_match_child(self, directory: str) -> bool:
        """Could this match a path `directory + name` (directory "" or ending in "/")? False only when it cannot.

        A pattern that does not compile may: the error is for the walk to raise, if it ever reaches it.
        """
        if not self.kind:
            try:
                self.compile()
            except (BadPattern, Unsupported):
                return True
        head = self.head
        if self.kind == "exact":
            return head.startswith(directory) and "/" not in head[len(directory):] and len(head) > len(directory)
        if self.kind == "prefix":
            return directory.startswith(head) or head.startswith(directory) and "/" not in head[len(directory):]
        return directory.startswith(head) or head.startswith(directory)

    def match(self, path: str) -> bool:
        if not self.kind:
            self.compile()
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        if not path.endswith(self.tail):
            return False
        assert self.regex is not None
        return self.regex.search(path if path.isascii() else path.translate(_AS_RUNES)) is not None

    def without_trailing_glob(self) -> str:
        """fsutil's patternWithoutTrailingGlob."""
        return self.text.removesuffix("/**").removesuffix("/*")


MatchInfo = tuple[bool, ...]  # per pattern: did it match the parent directory ("" = no information)


@dataclass(frozen=True)
class ChildPatterns:
    """The patterns to try in one directory; with `exact` set, a name none of them can match is known
    at once: not one of `exact`, not starting with one of `starts`, not ending with one of `ends`."""

    indices: list[int]
    exact: frozenset[bytes] | None
    starts: tuple[bytes, ...] = ()
    ends: tuple[bytes, ...] = ()

    def rules_out(self, name: bytes) -> bool:
        return self.exact is not None and not (name in self.exact or name.startswith(self.starts)
                                               or name.endswith(self.ends))


def _translate(text: str) -> tuple[str, str]:
    """patternmatcher's compile loop: the pattern as a regular expression (RE2 syntax, "^" and no "$"),
    and its kind: exact, prefix, suffix or regexp."""
    regex, kind, i, step = "^", "exact", 0, 0
    while i < len(text):
        char = text[i]
        i += 1
        if char == "*":
            if i < len(text) and text[i] == "*":
                part, kind, i = _double_star(text, i + 1, kind, step)
                regex += part
            else:
                regex += "[^/]*"
                kind = "regexp"
        elif char == "?":
            regex += "[^/]"
            kind = "regexp"
        elif char in _REGEX_ESCAPED:
            regex += "\\" + char
        elif char == "\\":
            if i < len(text):
                regex += "\\" + text[i]
                i += 1
                kind = "regexp"
            else:
                regex += "\\"
        elif char in "[]":
            regex += char
            kind = "regexp"
        else:
            regex += char
        step += 1
    return regex, kind


def _double_star(text: str, i: int, kind: str, step: int) -> tuple[str, str, int]:
    """A "**" (text[i] is the character after it): what it adds to the regex, the kind after it, and
    where the loop goes on (after a "/" that follows the "**")."""
    if i < len(text) and text[i] == "/":
        i += 1
    if i >= len(text):
        part, kind = ("", "prefix") if kind == "exact" else (".*", "regexp")
    else:
        part, kind = "(.*/)?", "regexp"
    return part, "suffix" if step == 0 else kind, i


class PatternMatcher:
    """patternmatcher.New plus the two ways BuildKit asks it: MatchesOrParentMatches, MatchesUsingParentResults."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = go_trim_space(raw)
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise BadPattern('illegal exclusion pattern: "!"')
                text = text[1:]
            go_match(text, ".")  # New's only syntax check; the regular expression waits for its first use
            self.patterns.append(Pattern(text, exclusion))
        self.exclusions = any(pattern.exclusion for pattern in self.patterns)

    def matches_or_parent_matches(self, path: str) -> bool:
        matched = False
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        parent_dirs = parent.split("/")
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != ".":
                match = any(pattern.match("/".join(parent_dirs[:i + 1])) for i in range(len(parent_dirs)))
            if match:
                matched = not pattern.exclusion
        return matched

    def child_indices(self, directory: str, info: MatchInfo) -> list[int]:
        """The patterns worth trying on the entries of `directory` ("" or ending in "/"), whose match info
        is `info`: those that matched it (inherited) and those that may match a name inside it. The
        others would answer no: leaving them out changes no result, and saves most of the work."""
        return [index for index, pattern in enumerate(self.patterns)
                if (info and info[index]) or pattern.may_match_child(directory)]

    def child_patterns(self, directory: str, info: MatchInfo) -> ChildPatterns:
        """child_indices, and a test on a name alone that rules out every one of them (when there is one)."""
        indices = self.child_indices(directory, info)
        exact, starts, ends = set(), [], []
        for index in indices:
            pattern = self.patterns[index]
            text, head = pattern.text, pattern.head
            if (info and info[index]) or not pattern.kind:
                return ChildPatterns(indices, None)
            if pattern.kind == "exact":
                exact.add(head[len(directory):].encode("utf-8", "surrogateescape"))
            elif pattern.kind == "prefix" and not directory.startswith(head):
                starts.append(head[len(directory):].encode("utf-8", "surrogateescape"))
            elif pattern.kind == "suffix" and "/" not in text[2:]:
                ends.append(text[2:].encode("utf-8", "surrogateescape"))
            elif pattern.kind == "regexp" and "/" not in pattern.tail:
                ends.append(pattern.tail.encode())
            else:
                return ChildPatterns(indices, None)
        return ChildPatterns(indices, frozenset(exact), tuple(starts), tuple(ends))


    def matches_using_parent_results(self, path: str, parent: MatchInfo,
                                     indices: list[int] | None = None) -> tuple[bool, MatchInfo]:
        """patternmatcher's MatchesUsingParentResults; `indices` from child_indices for the parent directory."""
        matched = False
        info = [False] * len(self.patterns)
        for index in range(len(self.patterns)) if indices is None else indices:
            pattern = self.patterns[index]
            match = bool(parent) and parent[index]
            if not match:
                if pattern.exclusion != matched:
                    continue
                match = pattern.match(path)
                if not match and not parent and "/" in path:
                    parent_dirs = path.rsplit("/", 1)[0].split("/")
                    match = any(pattern.match("/".join(parent_dirs[:i + 1])) for i in range(len(parent_dirs)))
            info[index] = match
            if match:
                matched = not pattern.exclusion
        return matched, tuple(info)


def read_ignore_file(data: bytes) -> list[str]:
    """patternmatcher/ignorefile.ReadAll: the patterns of a .dockerignore, in order."""
    patterns: list[str] = []
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # bufio.ScanLines: a final newline does not start another line
    for number, line in enumerate(lines):
        line = line.removesuffix("\r")
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = go_trim_space(line)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = go_trim_space(pattern[1:])
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns
