"""What BuildKit copies from a build context for one source path, read the way BuildKit reads it.

The steps follow BuildKit's (moby/buildkit dockerfile2llb, tonistiigi/fsutil, containerd/continuity):
1. The context is sent filtered twice. By `.dockerignore` (fsutil's walker with patternmatcher): an
   excluded directory is skipped whole unless an exception (`!pattern`) could re-include something
   inside it, and then it carries just what the exceptions keep. And by what the Dockerfile names:
   every source, and every link on the way to one, is an include pattern (FollowPaths), read with
   patternmatcher's rules, so a few names (`[x]`, `a\\b`) are never sent and cannot be copied.
2. A source path is resolved inside that filtered tree with every symlink followed, the context being
   the root: `..` stops at the root and an absolute link target starts from the context root
   (continuity's RootPath). A link that points out of the context therefore reads a path inside it.
3. Wildcards: the path is split at its first component with a wildcard; the part before is resolved
   as in 2, the rest is matched against paths below it with Go's filepath.Match (a matched directory
   is copied whole, not searched further). No match copies nothing at the context's top; below, the
   directory itself is only sent when something in it is, so BuildKit fails there (unless its cache
   has a COPY that looks the same: that cache key keeps only the last component of the source).
4. A directory is copied with its contents; links inside it are copied as links (not followed).

Everything is read with bytes paths (names that are not UTF-8 are kept, not replaced) and walked with
an explicit stack, so depth is limited by the file system, not by Python's recursion limit.
Each rule was checked against BuildKit itself: tests/integration/test_cache_key_oracle.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple

from regcache.patterns import (
    BadPattern,
    ChildPatterns,
    PatternMatcher,
    Unsupported,
    go_clean,
    go_match,
    has_wildcards,
)

# A directory name BuildKit copies like any other, but which changes on every fetch; see Copied.git_skipped.
_GIT = b".git"
_MAX_LINKS = 255  # continuity's limit before "too many links"
_PATTERN_CHARS = frozenset("*[]?^\\")  # fsutil: a path with these is an include pattern, not a prefix


class ContextError(Exception):
    """The context cannot be read the way BuildKit reads it (BuildKit would fail the build too)."""


class Entry(NamedTuple):  # a tuple: made once per file, and a frozen dataclass is three times slower to make
    path: bytes  # inside the copied source, "/"-separated; b"" for the source itself
    kind: str  # dir, file, file+x, link, hardlink, special, unreadable
    value: bytes  # file: sha256 digest; link: its target; hardlink: context path of its first name


@dataclass
class Copied:
    """What one source copies: per match, the name BuildKit gives it and the entries it copies."""

    matches: list[tuple[bytes, list[Entry]]] = field(default_factory=list)
    files: list[bytes] = field(default_factory=list)  # context-relative paths whose content or link text was read
    missing: str = ""  # why nothing matched, when nothing did
    notes: list[str] = field(default_factory=list)
    git_skipped: list[bytes] = field(default_factory=list)  # context-relative .git directories left out
    not_utf8: list[bytes] = field(default_factory=list)  # context paths (or link targets) sent that are not UTF-8
    source: str = ""  # the instruction and path it is for ("" for the whole context)


_SENT: tuple[str, tuple[bool, ...]] = ("in", ())
# A link is not followed (it is hashed as a link); a FIFO put in place of a file does not block the open.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def _name(entry: os.DirEntry[bytes]) -> bytes:
    return entry.name


def _show(path: bytes) -> str:
    """A path for a log line: UTF-8 as is, other bytes as \\xNN."""
    return path.decode("utf-8", "backslashreplace") or "."


def _join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


class BuildContext:
    """One context directory as BuildKit receives it.

    `excludes` are the .dockerignore patterns; `includes` the context paths the whole Dockerfile names
    (every source, as BuildKit's FollowPaths), None when one of them is the whole context. BuildKit
    sends only what an include names, read as a patternmatcher pattern: so what one source can copy
    can depend on another source naming it too.
    """

    def __init__(self, root: str | os.PathLike[str], excludes: list[str] | None = None,
                 includes: list[str] | None = None) -> None:
        self.root = os.fsencode(root)
        self._matcher = PatternMatcher(excludes) if excludes else None
        self._includes = PatternMatcher(includes) if includes is not None else None
        # fsutil skips an excluded directory at once when no exception could reach inside it; exceptions
        # with wildcards (other than a trailing /* or /**) could reach anywhere, so then it looks inside.
        self._exceptions: list[str] | None = None
        if self._matcher is not None and all(not (_PATTERN_CHARS & set(p.without_trailing_glob()))
                                             for p in self._matcher.patterns if p.exclusion):
            self._exceptions = [p.without_trailing_glob() + "/" for p in self._matcher.patterns if p.exclusion]
        self._states: dict[bytes, tuple[str, tuple[bool, ...]]] = {b"": ("in", ())}
        self._unmatched = (False,) * len(self._matcher.patterns) if self._matcher else ()
        self._has_content: dict[bytes, bool] = {}

    # --- the filtered tree ----------------------------------------------------------------------

    def _state(self, rel: bytes, is_dir: bool, parent: tuple[str, tuple[bool, ...]],
               children: ChildPatterns | None = None, name: bytes = b"") -> tuple[str, tuple[bool, ...]]:
        """("in" | "out" | "skip", match info): out = excluded itself, skip = nothing below is sent either.

        `children`: the patterns worth trying in the parent directory, `name` the entry's own name.
        """
        if parent[0] == "skip":
            return "skip", ()
        if self._matcher is None:
            return "in", ()
        if children is not None and children.rules_out(name):
            return "in", self._unmatched
        try:
            matched, info = self._matcher.matches_using_parent_results(
                rel.decode("utf-8", "surrogateescape"), parent[1], children.indices if children else None)
        except (BadPattern, Unsupported) as exc:
            raise ContextError(f"a .dockerignore pattern cannot be applied: {exc}") from exc
        if not matched:
            return "in", info
        if is_dir and self._exceptions is not None:
            prefix = os.fsdecode(rel) + "/"
            if not any(exception.startswith(prefix) for exception in self._exceptions):
                return "skip", info
        return "out", info

    def _lstat(self, rel: bytes) -> os.stat_result | None:
        try:
            return os.lstat(self.root + b"/" + rel if rel else self.root)
        except OSError:
            return None

    def _dir_state(self, rel: bytes) -> tuple[str, tuple[bool, ...]]:
        """The state of a directory, from its ancestors' (cached, computed from the root down)."""
        if rel in self._states:
            return self._states[rel]
        parts = rel.split(b"/")
        state = self._states[b""]
        for depth in range(1, len(parts) + 1):
            prefix = b"/".join(parts[:depth])
            if prefix not in self._states:
                self._states[prefix] = self._state(prefix, True, state)
            state = self._states[prefix]
        return state

    def node(self, parts: list[bytes]) -> os.stat_result | None:
        """lstat of a context-relative path in the tree BuildKit receives; None if it is not sent."""
        rel = b"/".join(parts)
        st = self._lstat(rel)
        if st is None or not parts:
            return st
        parent = self._dir_state(b"/".join(parts[:-1]))
        is_dir = stat.S_ISDIR(st.st_mode)
        state = self._dir_state(rel) if is_dir else self._state(rel, False, parent)
        if state[0] == "in":
            return st
        if state[0] == "out" and is_dir and self._sends_something_below(rel):
            return st  # sent only as the parent of what an exception keeps
        return None

    def _sends_something_below(self, rel: bytes) -> bool:
        if rel not in self._has_content:
            self._has_content[rel] = any(True for _ in self._walk(rel, self._dir_state(rel), stop_early=True))
        return self._has_content[rel]

    # --- resolving a path -----------------------------------------------------------------------

    def resolve(self, path: str, notes: list[str]) -> tuple[list[bytes], os.stat_result | None, list[str]]:
        """continuity's RootPath in the filtered tree: (resolved components, lstat or None, links followed).

        The links followed are listed with the path they lead to (if any were): BuildKit must have sent
        them all, and sends them as include patterns of their own (fsutil's FollowLinks).
        """
        todo = [part for part in reversed(os.fsencode(go_clean("/" + path)).split(b"/")) if part]
        resolved: list[bytes] = []
        visited: list[str] = []
        links = 0
        st: os.stat_result | None = self.node([])
        while todo:
            part = todo.pop()
            if part == b"..":
                if resolved:
                    resolved.pop()
                continue
            candidate = [*resolved, part]
            st = self.node(candidate) if st is not None else None
            if st is None or not stat.S_ISLNK(st.st_mode):
                resolved = candidate
                continue
            links += 1
            visited.append(os.fsdecode(b"/".join(candidate)))
            if links > _MAX_LINKS:
                raise ContextError(f"{_show(b'/'.join(candidate))}: too many levels of symbolic links")
            joined = self._link_target(resolved, candidate, notes)
            if joined is None:
                resolved, st = candidate, None
                continue
            resolved = []
            todo.extend(reversed(joined))
            st = self.node([])
        if visited:
            visited.append(os.fsdecode(b"/".join(resolved)))
        return resolved, st, visited

    def _link_target(self, resolved: list[bytes], link: list[bytes], notes: list[str]) -> list[bytes] | None:
        """The components the link at `link` (in directory `resolved`) leads to, from the context's root.

        None when it cannot be read. A target that leaves the context stays inside it, as BuildKit's
        scoped resolution keeps it; the log names such a link.
        """
        try:
            target = os.readlink(self.root + b"/" + b"/".join(link))
        except OSError:
            return None
        base = b"" if target.startswith(b"/") else b"/".join(resolved)
        joined = [p for p in os.fsencode(go_clean(os.fsdecode(b"/" + base + b"/" + target))).split(b"/") if p]
        if target.startswith(b"/") or _climbs_out(resolved, target):
            notes.append(f"symlink {_show(b'/'.join(link))} -> {_show(target)} points outside the context: "
                         f"BuildKit follows it inside the context, to {_show(b'/'.join(joined))}")
        return joined

    # --- walking a directory --------------------------------------------------------------------

    def _walk(self, top: bytes, top_state: tuple[str, tuple[bool, ...]], stop_early: bool = False,
              git_skipped: list[bytes] | None = None):
        """Yield (path below top, context path, directory entry) of what is sent below `top`, in fsutil's order.

        A directory that is only sent for an exception's sake is yielded just before the first entry
        below it, as fsutil does.
        """
        stack = [(b"", top, top_state, self._listing(top), self._indices(top, top_state))]
        pending: list[tuple[bytes, bytes, os.DirEntry[bytes]]] = []  # excluded directories not yet yielded
        everything = self._matcher is None
        while stack:
            below, rel, state, entries, children = stack[-1]
            if not entries:
                stack.pop()
                if pending and pending[-1][1] == rel:
                    pending.pop()
                continue
            entry = entries.pop()
            name = entry.name
            child_below = below + b"/" + name if below else name
            child = rel + b"/" + name if rel else name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)  # from the directory listing: no system call
            except OSError:
                continue
            child_state = _SENT if everything else self._state(child, is_dir, state, children, name)
            if child_state[0] == "skip" or (child_state[0] == "out" and not is_dir):
                continue
            if is_dir and name == _GIT:
                if git_skipped is not None and child_state[0] == "in":
                    git_skipped.append(child)
                continue
            if child_state[0] == "in":
                yield from pending
                pending.clear()
                yield child_below, child, entry
                if stop_early:
                    return
            elif is_dir:
                pending.append((child_below, child, entry))
            if is_dir:
                self._states.setdefault(child, child_state)
                stack.append((child_below, child, child_state, self._listing(child), self._indices(child, child_state)))

    def _indices(self, rel: bytes, state: tuple[str, tuple[bool, ...]]) -> ChildPatterns | None:
        if self._matcher is None or state[0] == "skip":
            return None
        return self._matcher.child_patterns(os.fsdecode(rel) + "/" if rel else "", state[1])

    def _listing(self, rel: bytes) -> list[os.DirEntry[bytes]]:
        """Directory entries in reverse byte order of their names (popped from the end: os.ReadDir's order)."""
        try:
            with os.scandir(self.root + b"/" + rel if rel else self.root) as entries:
                return sorted(entries, key=_name, reverse=True)
        except OSError:
            return []

    def _names(self, rel: bytes) -> list[bytes]:
        return [entry.name for entry in self._listing(rel)]

    # --- copying a source -----------------------------------------------------------------------

    def copy(self, path: str, wildcards: bool = True) -> Copied:
        """What `COPY <path> …` copies, `path` being the source as BuildKit sees it (quotes and escapes applied).

        A bind mount's source has no wildcards (`wildcards=False`): BuildKit looks the path up as it is.
        """
        copied = Copied()
        clean = go_clean("/" + path).lstrip("/")
        parts = clean.split("/") if clean else []
        split = next((i for i, part in enumerate(parts) if has_wildcards(part)), None) if wildcards else None
        followed_to: list[str] = []
        try:
            if split is None:
                names = [clean]
            else:
                names, followed_to = self._wildcard_matches(parts[:split], "/".join(parts[split:]), copied)
            sent = [name for name in names if self._sent(name, followed_to)]
            unsent = bool(names) and not sent
            names = sent
        except (BadPattern, Unsupported) as exc:
            raise ContextError(f"not a pattern BuildKit accepts ({exc})") from exc
        inodes: dict[tuple[int, int], bytes] = {}
        notes_before = len(copied.notes)
        for name in names:
            resolved, st, visited = self.resolve(name, copied.notes)
            rel = b"/".join(resolved)
            if st is None or not all(self._sent(link, visited) for link in visited):
                if split is not None:  # a match that leads nowhere fails the whole COPY
                    copied.matches.clear()
                    copied.missing = (f"matches {_show(os.fsencode(name))}, a symlink to nothing BuildKit sends "
                                      "(BuildKit will fail: not found)")
                    return copied
                continue
            base = os.fsencode(name.rsplit("/", 1)[-1]) if name else b""
            copied.matches.append((base, self._entries(rel, st, copied, inodes)))
        if not copied.matches:
            fixed = "/".join(parts[:split]) if split is not None else None
            copied.missing = self._why_missing(clean, fixed, len(copied.notes) > notes_before, unsent)
        return copied

    def copy_all(self) -> Copied:
        """The whole context, as `COPY . /dest` copies it."""
        copied = Copied()
        root = self.node([])
        if root is not None:
            copied.matches.append((b"", self._entries(b"", root, copied, {})))
        return copied

    def _wildcard_matches(self, fixed: list[str], pattern: str, copied: Copied) -> tuple[list[str], list[str]]:
        """fsutil's resolveWildcards: filepath.Walk below the resolved fixed part, matching the rest.

        Also the include pattern BuildKit adds when the fixed part goes through a link (FollowLinks).
        Names that match a component of the pattern are sent by BuildKit when a link is among them
        (FollowLinks makes the component an include pattern): those that are not UTF-8 are noted.
        """
        resolved, st, visited = self.resolve("/".join(fixed), copied.notes)
        if st is None or not stat.S_ISDIR(st.st_mode) or not all(self._sent(link, visited) for link in visited):
            return [], []
        top = b"/".join(resolved)
        followed_to = [os.fsdecode(_join(top, os.fsencode(pattern)))] if visited else []
        # `*`, `?` and `\/` never match more than themselves across a `/`; a class `[...]` can match one.
        deepest = pattern.count("/") + pattern.count("[")
        components = pattern.split("/")
        matches: list[str] = []
        stack = [(b"", self._names(top))]
        while stack:
            below, names = stack[-1]
            if not names:
                stack.pop()
                continue
            name = names.pop()
            child_below = _join(below, name)
            child = _join(top, child_below)
            st = self.node(child.split(b"/"))
            if st is None:
                continue
            if stat.S_ISDIR(st.st_mode) and name == _GIT:
                continue  # see Copied.git_skipped
            depth = child_below.count(b"/")
            if depth < len(components) and go_match(components[depth], os.fsdecode(name)):
                self._check_utf8(child, copied)
            if go_match(pattern, os.fsdecode(child_below)):
                matches.append(os.fsdecode(child))
            elif stat.S_ISDIR(st.st_mode) and child_below.count(b"/") < deepest:
                stack.append((child_below, self._names(child)))
        return matches, followed_to

    def _sent(self, name: str, followed_to: list[str]) -> bool:
        """Does BuildKit send this path? It sends what an include pattern matches: the Dockerfile's sources,
        and the targets of links on their way (fsutil's FollowLinks). Mostly everything a source finds,
        but patternmatcher reads a pattern differently from filepath.Match in places (a `^` outside
        brackets, `\\` escapes, `[x]` naming a file called "[x]"): BuildKit then fails, or copies less."""
        try:
            if self._includes is None or self._includes.matches_or_parent_matches(name):
                return True
            return bool(followed_to) and PatternMatcher(followed_to).matches_or_parent_matches(name)
        except (BadPattern, Unsupported) as exc:
            raise ContextError(f"{name} is sent as a pattern BuildKit rejects ({exc})") from exc

    def _entries(self, rel: bytes, st: os.stat_result, copied: Copied,
                 inodes: dict[tuple[int, int], bytes]) -> list[Entry]:
        if not stat.S_ISDIR(st.st_mode):
            return [self._entry(b"", rel, st, copied, inodes)]
        entries = [Entry(b"", "dir", b"")]
        for below, child, dir_entry in self._walk(rel, self._dir_state(rel), git_skipped=copied.git_skipped):
            try:
                if dir_entry.is_file(follow_symlinks=False):  # from the listing: no system call
                    entry = self._opened_entry(below, child, dir_entry.path, copied, inodes)
                else:
                    entry = self._entry(below, child, dir_entry.stat(follow_symlinks=False), copied, inodes,
                                        dir_entry.path)
            except OSError:
                continue  # gone since the listing
            entries.append(entry)
        return entries

    def _opened_entry(self, below: bytes, rel: bytes, path: bytes, copied: Copied,
                      inodes: dict[tuple[int, int], bytes]) -> Entry:
        """A file the listing says is regular: opened first, then fstat'ed, so one path lookup, not two
        (system calls are most of the cost of a large context)."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            return self._entry(below, rel, os.lstat(path), copied, inodes, path)  # _entry says why
        try:
            return self._entry(below, rel, os.fstat(fd), copied, inodes, path, fd)
        finally:
            os.close(fd)

    @staticmethod
    def _check_utf8(rel: bytes, copied: Copied) -> None:
        """BuildKit's file transfer carries names in protobuf strings: newer BuildKit rejects what is not UTF-8."""
        if not rel.isascii():
            try:
                rel.decode()
            except UnicodeDecodeError:
                copied.not_utf8.append(rel)

    def _entry(self, below: bytes, rel: bytes, st: os.stat_result, copied: Copied,
               inodes: dict[tuple[int, int], bytes], path: bytes = b"", fd: int | None = None) -> Entry:
        """One entry; `fd`: the file at `path`, already open (st is then its fstat)."""
        mode = st.st_mode
        if not rel.isascii():
            self._check_utf8(rel, copied)
        if stat.S_ISDIR(mode):
            return Entry(below, "dir", b"")
        path = path or (self.root + b"/" + rel if rel else self.root)
        if stat.S_ISLNK(mode):
            copied.files.append(rel)
            try:
                target = os.readlink(path)
            except OSError as exc:
                return Entry(below, "unreadable", (exc.strerror or str(exc)).encode())
            self._check_utf8(target, copied)
            if not target.startswith(b"/") and _climbs_out(rel.split(b"/")[:-1], target):
                copied.notes.append(f"symlink {_show(rel)} -> {_show(target)} points outside the context: "
                                    "copied as a link, so what it points to is neither in the image nor in the key")
            return Entry(below, "link", target)
        if not stat.S_ISREG(mode):
            return Entry(below, "special", str(stat.S_IFMT(mode)).encode())
        copied.files.append(rel)
        if st.st_nlink > 1:
            first = inodes.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                return Entry(below, "hardlink", first)  # BuildKit copies a hard link as a hard link
        # COPY keeps modes, and git tracks only the executable bit: hash that one, not the umask's.
        digest = _digest(path, st.st_size) if fd is None else _read_digest(fd, st.st_size)
        return Entry(below, "file+x" if mode & stat.S_IXUSR else "file", digest)

    def _why_missing(self, clean: str, fixed: str | None, left_context: bool, unsent: bool) -> str:
        """The end of a warning. "will fail" only where BuildKit always fails: the oracle tests hold it to that."""
        if unsent and fixed is None:
            return ("is not sent: BuildKit reads its name as a pattern, which does not match it "
                    "(BuildKit will fail: not found)")
        if fixed == "":
            return "matches nothing in the context (BuildKit copies nothing for it)"
        if fixed is not None:
            # BuildKit only sends what sources name, so a directory where nothing matches is not sent, and
            # resolving the wildcard fails on it. Unless another source sends something from it, or its
            # build cache holds the result of a COPY like it (that cache key has only the last component).
            return (f"matches nothing in the context: BuildKit copies nothing for it, or fails (not found) "
                    f"when nothing else is copied from {fixed}")
        if left_context:
            return "leads through a symlink out of the context to nothing (BuildKit will fail: not found)"
        if self._lstat(os.fsencode(clean)) is not None:
            return "is excluded by .dockerignore (BuildKit will fail: not found)"
        return "does not exist in the context (BuildKit will fail: not found)"


def _climbs_out(parent: list[bytes], target: bytes) -> bool:
    """Does a relative link target, read from the directory `parent`, go above the context root?"""
    depth = len(parent)
    for part in target.split(b"/"):
        if part == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in (b"", b"."):
            depth += 1
    return False


def _digest(path: bytes, size: int) -> bytes:
    """sha256 of a file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return b"unreadable:" + (exc.strerror or str(exc)).encode()
    try:
        return _read_digest(fd, size)
    finally:
        os.close(fd)


def _read_digest(fd: int, size: int) -> bytes:
    """sha256 of an open file; one read for the usual small file (size + 1 bytes tells that it ended)."""
    try:
        data = os.read(fd, size + 1)
        digest = hashlib.sha256(data)
        if len(data) > size:
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
        return digest.digest()
    except OSError as exc:
        return b"unreadable:" + (exc.strerror or str(exc)).encode()
