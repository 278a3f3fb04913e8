"""A content-addressed key for one image build, the way the Rust project keys its CI images.

The key changes exactly when something that can change the image changes: the Dockerfile, the
context files its COPY/ADD instructions read, and the build settings. Anything else in the
repository (docs, unrelated sources) leaves it alone, so an unrelated commit reuses the image.
Reading the Dockerfile is a best-effort static pass: when it cannot tell what is copied (a
`$VAR` source), it hashes the whole context, which can only cost a rebuild, never a stale image.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from regcache.errors import InputError

# Bumped whenever the hashing below changes, so old tags can never be mistaken for new ones.
_SCHEME = b"regcache-cache-key/1"
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z0-9]+)[ \t]*=[ \t]*(.+?)[ \t]*$")
# BuildKit's own heredoc word pattern: optional fd, `<<`, optional `-`, a name without `<`.
_HEREDOC = re.compile(r"^\d*<<(-?)([^<]*)$")
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@)")
_HEREDOC_INSTRUCTIONS = frozenset({"run", "copy", "add"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class CopySource:
    pattern: str  # as written in the Dockerfile
    line: int  # 1-based line of the instruction


@dataclass(frozen=True)
class CacheKey:
    tag: str  # "<slug>-<hash24>", a valid registry tag
    digest: str  # full sha256 hex
    files: tuple[str, ...]  # context-relative posix paths that were hashed (sorted), for the log
    whole_context: bool  # True when a $VAR source forced hashing the whole context


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


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """Yield (line, keyword, arguments) per instruction, mirroring BuildKit's line reader.

    Heredoc bodies are consumed here because they are free text: a body line that reads
    `COPY secret /` must not be taken for an instruction.
    """
    lines = [line.removesuffix("\r") for line in text.removeprefix("\ufeff").split("\n")]
    continuation = re.compile(re.escape(_escape_char(lines)) + r"[ \t]*$")
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


def copy_sources(dockerfile_text: str) -> list[CopySource]:
    """The build-context sources of every COPY/ADD, in order.

    Stage copies (`--from`), remote ADDs and heredoc sources are left out: they are not files
    of the context, so they cannot be hashed and changing the context does not change them.
    """
    sources: list[CopySource] = []
    for line, keyword, args in _instructions(dockerfile_text):
        if keyword not in ("copy", "add"):
            continue
        flags, rest = _split_flags(args)
        if any(flag.split("=", 1)[0].lower() == "--from" for flag in flags):
            continue
        words = _json_list(rest)
        if words is None:
            words = [word for word in rest.split() if _heredoc(word) is None]
        sources.extend(CopySource(word, line) for word in words[:-1] if not _REMOTE.match(word))
    return sources


def _context_relative(pattern: str) -> str:
    """Docker resolves every source inside the context: `/x`, `./x` and `../x` all mean `x`."""
    if len(pattern) >= 2 and pattern[0] == pattern[-1] and pattern[0] in "\"'":
        pattern = pattern[1:-1]
    return posixpath.normpath("/" + pattern).lstrip("/")


def _unreadable(exc: OSError) -> tuple[str, bytes]:
    """A stable entry for what cannot be read: the build itself will report it better."""
    return "unreadable", (exc.strerror or str(exc)).encode()


def _file_digest(path: Path) -> tuple[str, bytes]:
    try:
        with open(path, "rb") as handle:
            return "file", hashlib.file_digest(handle, "sha256").digest()
    except OSError as exc:
        return _unreadable(exc)


def _add_tree(path: Path, rel: str, entries: dict[str, tuple[str, bytes]]) -> None:
    """Symlinks are hashed by their target string: following one could read outside the context.

    `.git` is skipped inside directories because it changes on every fetch and would make the
    key useless; a source that names it literally is still hashed.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return  # matches nothing: buildx reports that itself
    if stat.S_ISLNK(mode):
        try:
            entries[rel] = ("link", os.fsencode(os.readlink(path)))
        except OSError as exc:
            entries[rel] = _unreadable(exc)
    elif stat.S_ISREG(mode):
        kind, value = _file_digest(path)
        # COPY keeps modes, and git tracks only the executable bit: hash that one, not the umask's.
        entries[rel] = (kind + "+x" if mode & stat.S_IXUSR else kind, value)
    elif stat.S_ISDIR(mode):
        try:
            names = os.listdir(path)
        except OSError as exc:
            entries[rel or "."] = _unreadable(exc)
            return
        for name in names:
            if name != ".git":
                _add_tree(path / name, f"{rel}/{name}" if rel else name, entries)


def _add_source(context: Path, rel: str, entries: dict[str, tuple[str, bytes]]) -> None:
    """A symlinked parent directory is hashed as a link rather than followed out of the context."""
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        if (context / prefix).is_symlink():
            _add_tree(context / prefix, prefix, entries)
            return
    _add_tree(context.joinpath(*parts), "/".join(parts), entries)


def _glob(context: Path, pattern: str) -> list[str]:
    try:
        matches = [match.relative_to(context).as_posix() for match in context.glob(pattern)]
    except (ValueError, NotImplementedError, OSError):
        return []  # a pattern pathlib refuses matches nothing here; buildx will say what is wrong
    return sorted(match for match in matches if ".git" not in match.split("/"))


def _field(digest: hashlib._Hash, label: str, value: str | bytes) -> None:
    """Label, NUL and a length prefix: no shifting of bytes between fields gives the same stream."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    digest.update(label.encode() + b"\0" + len(data).to_bytes(8, "big") + data)


def compute_cache_key(
    *,
    workspace: Path,
    context: Path,
    dockerfile: Path,
    target: str,
    build_args: tuple[tuple[str, str], ...],
    platforms: tuple[str, ...],
    version: str,
) -> CacheKey:
    """Relative `context` and `dockerfile` are taken from `workspace`, as the action inputs are.

    The context is resolved because buildx follows a symlinked context directory; only the
    links inside it are hashed as links.
    """
    root = Path(os.path.abspath(workspace))
    dockerfile_path = Path(os.path.abspath(root / dockerfile))
    context_path = Path(os.path.realpath(root / context))
    try:
        relpath = dockerfile_path.relative_to(root).as_posix()
    except ValueError:
        relpath = dockerfile_path.as_posix()
    try:
        content = dockerfile_path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            "file",
            f"cannot read {dockerfile}: {reason}",
            "a readable Dockerfile path, relative to the workspace",
        ) from exc

    sources = copy_sources(content.decode("utf-8", errors="replace"))
    whole_context = any("$" in source.pattern for source in sources)
    entries: dict[str, tuple[str, bytes]] = {}
    if whole_context:
        _add_tree(context_path, "", entries)
    else:
        for source in sources:
            rel = _context_relative(source.pattern)
            matches = _glob(context_path, rel) if _GLOB_CHARS & set(rel) else [rel]
            for match in matches:
                _add_source(context_path, match, entries)

    digest = hashlib.sha256(_SCHEME)
    _field(digest, "dockerfile-path", relpath)
    _field(digest, "dockerfile", content)
    _field(digest, "whole-context", b"1" if whole_context else b"0")
    for source in sources:
        _field(digest, "source", source.pattern)
    for rel in sorted(entries):
        kind, value = entries[rel]
        _field(digest, "path", rel)
        _field(digest, kind, value)
    _field(digest, "target", target)
    for name, value in build_args:
        _field(digest, "build-arg-name", name)
        _field(digest, "build-arg-value", value)
    for platform in platforms:
        _field(digest, "platform", platform)
    _field(digest, "version", version)

    hexdigest = digest.hexdigest()
    return CacheKey(
        tag=f"{slug(relpath)}-{hexdigest[:24]}",
        digest=hexdigest,
        files=tuple(sorted(entries)),
        whole_context=whole_context,
    )


def slug(dockerfile_relpath: str) -> str:
    """A readable tag prefix, so the registry lists which image a cache belongs to."""
    parts = dockerfile_relpath.replace("\\", "/").split("/")
    if parts[-1].lower() == "dockerfile":
        parts = parts[:-1]
    text = re.sub(r"[^a-z0-9_.]+", "-", "/".join(parts).lower()).strip("-._")
    return text[:100].rstrip("-._") or "dockerfile"
