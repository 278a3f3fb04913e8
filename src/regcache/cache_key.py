"""A content-addressed key for one image build, the way the Rust project keys its CI images.

The key changes exactly when something that can change the image changes: the Dockerfile, the
`.dockerignore` that applies, what BuildKit copies or bind-mounts from the context for it (read as
BuildKit reads it: see build_context.py), and the build settings. Anything else in the repository
(docs, unrelated sources, files the `.dockerignore` leaves out) leaves it alone, so an unrelated
commit reuses the image. When a source expands a variable (`COPY ${SRC} /app`), the static reading
cannot tell what is copied and hashes the whole context: that can only cost a rebuild, never a stale
image. Two things BuildKit copies are deliberately not hashed: file modes other than the owner's
executable bit (git tracks only that one; the rest follow the runner's umask) and `.git` directories
(they change on every checkout), which the notes name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from regcache.build_context import BuildContext, ContextError, Copied
from regcache.dockerfile import ContextSource, context_sources
from regcache.errors import InputError
from regcache.image_ref import tag_slug
from regcache.patterns import BadPattern, Unsupported, go_clean, read_ignore_file

# Bumped whenever the hashing below changes, so old tags can never be mistaken for new ones.
# 2: .dockerignore applied and hashed, symlinks as BuildKit follows them, Go globs, bind mounts, bytes names.
_SCHEME = b"regcache-cache-key/2"
_MAX_NOTES = 20
_LABELS = {label: label.encode() + b"\0" for label in ("path", "match", "dir", "file", "file+x", "link")}
_PATH = _LABELS["path"]


@dataclass(frozen=True)
class CacheKey:
    tag: str  # "<slug>-<hash24>", a valid registry tag
    digest: str  # full sha256 hex
    files: tuple[str, ...]  # context-relative paths whose content was hashed (sorted), for the log
    whole_context: bool  # True when a $VAR source forced hashing the whole context
    warnings: tuple[str, ...] = ()  # sources that match nothing, each naming its Dockerfile line
    notes: tuple[str, ...] = ()  # what the log should say: links out of the context, .git left out...
    dockerignore: str = ""  # the ignore file applied, relative to the workspace; "" when none


def _field(digest: hashlib._Hash, label: str, value: str | bytes) -> None:
    """Label, NUL and a length prefix: no shifting of bytes between fields gives the same stream."""
    data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    digest.update(_LABELS.get(label) or label.encode() + b"\0")
    digest.update(len(data).to_bytes(8, "big") + data)


def _dockerignore(context: Path, dockerfile: Path) -> tuple[Path | None, bytes]:
    """BuildKit prefers `<Dockerfile>.dockerignore` beside the Dockerfile (even an empty one), then the context's."""
    for path in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        try:
            return path, path.read_bytes()
        except OSError:
            continue
    return None, b""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _add(digest: hashlib._Hash, copied: Copied) -> None:
    """The same stream as one _field per name, path, kind: joined first, as a big tree has many."""
    if copied.source:
        _field(digest, "source", copied.source)
    for name, entries in copied.matches:
        _field(digest, "match", name)
        chunks: list[bytes] = []
        for path, kind, value in entries:
            chunks += (_PATH, len(path).to_bytes(8, "big"), path,
                       _LABELS.get(kind) or kind.encode() + b"\0", len(value).to_bytes(8, "big"), value)
        digest.update(b"".join(chunks))
    if not copied.matches:
        _field(digest, "missing", b"")


def _includes(sources: list[ContextSource]) -> list[str] | None:
    """BuildKit's FollowPaths: every context path the Dockerfile names; None if one is the whole context."""
    paths = []
    for source in sources:
        if source.path is None:
            return None
        path = go_clean("/" + source.path).lstrip("/")
        if not path:
            return None
        paths.append(path)
    return paths


def _copy(build_context: BuildContext, sources: list[ContextSource] | None,
          relpath: str) -> tuple[list[Copied], list[str]]:
    """What each source copies, and the warnings that name its line; sources None: the whole context."""
    if sources is None:
        try:
            return [build_context.copy_all()], []
        except ContextError as exc:
            return [Copied(missing="whole context")], [f"{relpath}: the context cannot be read as BuildKit reads it "
                                                       f"({exc}): BuildKit will fail too"]
    copies, warnings = [], []
    for source in sources:
        assert source.path is not None
        try:
            copied = build_context.copy(source.path, wildcards=source.instruction != "RUN --mount")
        except ContextError as exc:
            copied = Copied(missing=f"cannot be resolved ({exc}): BuildKit will fail too")
        copied.source = f"{source.instruction} {source.path}"
        copies.append(copied)
        where = f"{relpath}:{source.line}: {source.instruction} source {source.written}"
        if copied.missing:
            warnings.append(f"{where} {copied.missing}")
        if copied.not_utf8:
            shown = copied.not_utf8[0].decode("utf-8", "backslashreplace")
            warnings.append(f"{where} sends {shown}, a name that is not UTF-8: BuildKit since Docker 27 fails "
                            "on it (\"string field contains invalid UTF-8\"); Docker 26's copies it")
    return copies, warnings


def _capped(notes: list[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(notes))
    if len(unique) > _MAX_NOTES:
        unique = [*unique[:_MAX_NOTES], f"... and {len(unique) - _MAX_NOTES} more"]
    return tuple(unique)


@dataclass(frozen=True, eq=False)
class ContextRead:
    """What the Dockerfile copies from the context, read and hashed: everything the key needs but the
    build settings. The slow part (every copied file is read), so a run does it beside its first docker
    commands, before it knows the platforms."""

    relpath: str  # the Dockerfile, relative to the workspace
    digest: hashlib._Hash  # the key's hash so far: copy() it to go on
    files: tuple[str, ...]
    whole_context: bool
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    dockerignore: str


def compute_cache_key(*, workspace: Path, context: Path, dockerfile: Path, target: str,
                      build_args: tuple[tuple[str, str], ...], platforms: tuple[str, ...], version: str) -> CacheKey:
    """read_context, then cache_key."""
    return cache_key(read_context(workspace=workspace, context=context, dockerfile=dockerfile),
                     target=target, build_args=build_args, platforms=platforms, version=version)


def read_context(*, workspace: Path, context: Path, dockerfile: Path) -> ContextRead:
    """Relative `context` and `dockerfile` are taken from `workspace`, as the action inputs are.

    The context is resolved because buildx follows a symlinked context directory; the links inside
    it are read as BuildKit reads them.
    """
    root = Path(os.path.abspath(workspace))
    dockerfile_path = Path(os.path.abspath(root / dockerfile))
    context_path = Path(os.path.realpath(root / context))
    relpath = _relative(dockerfile_path, root)
    content = _read_dockerfile(dockerfile_path, dockerfile)
    sources = context_sources(content.decode("utf-8", "surrogateescape"))
    ignore_path, ignore_data = _dockerignore(context_path, dockerfile_path)
    ignore_name = _relative(ignore_path, root) if ignore_path else ""
    notes: list[str] = []
    build_context = _build_context(context_path, ignore_data, _includes(sources), ignore_name or relpath, notes)

    whole_context = any(source.path is None for source in sources)
    digest = hashlib.sha256(_SCHEME)
    _field(digest, "dockerfile-path", relpath)
    _field(digest, "dockerfile", content)
    _field(digest, "dockerignore-path", ignore_name)
    _field(digest, "dockerignore", ignore_data)
    _field(digest, "whole-context", b"1" if whole_context else b"0")
    copies, warnings = _copy(build_context, None if whole_context else sources, relpath)
    for copied in copies:
        _add(digest, copied)
    files = {path for copied in copies for path in copied.files}
    return ContextRead(
        relpath=relpath,
        digest=digest,
        files=tuple(path.decode("utf-8", "backslashreplace") for path in sorted(files)),
        whole_context=whole_context,
        warnings=tuple(warnings),
        notes=_capped(notes + _copy_notes(copies)),
        dockerignore=ignore_name,
    )


def _read_dockerfile(path: Path, given: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError("file", f"cannot read {given}: {reason}",
                         "a readable Dockerfile path, relative to the workspace") from exc


def _build_context(path: Path, ignore_data: bytes, includes: list[str] | None, ignore_name: str,
                   notes: list[str]) -> BuildContext:
    try:
        return BuildContext(path, read_ignore_file(ignore_data) or None, includes)
    except (BadPattern, Unsupported) as exc:
        # BuildKit rejects a malformed pattern (the build fails) and regcache does not model a few
        # regular-expression escapes: hashing without the filters can only hash too much.
        notes.append(f"{ignore_name}: {exc}; the key covers the context as if it had no ignore file")
        return BuildContext(path)


def _copy_notes(copies: list[Copied]) -> list[str]:
    """What the log should say about what was copied: links out of the context, .git left out."""
    notes = [note for copied in copies for note in copied.notes]
    git = sorted({path for copied in copies for path in copied.git_skipped})
    if git:
        shown = ", ".join(path.decode("utf-8", "backslashreplace") for path in git[:3])
        notes.append(f"{shown}{' ...' if len(git) > 3 else ''}: BuildKit copies .git, the key leaves it out "
                     "(it changes on every checkout); add .git to .dockerignore to keep it out of the image too")
    return notes


def cache_key(read: ContextRead, *, target: str, build_args: tuple[tuple[str, str], ...],
              platforms: tuple[str, ...], version: str) -> CacheKey:
    """The key: what was read from the context, and the build settings (the platforms built for among them)."""
    digest = read.digest.copy()
    _field(digest, "target", target)
    for name, value in build_args:
        _field(digest, "build-arg-name", name)
        _field(digest, "build-arg-value", value)
    for platform in platforms:
        _field(digest, "platform", platform)
    _field(digest, "version", version)
    hexdigest = digest.hexdigest()
    return CacheKey(
        tag=f"{slug(read.relpath)}-{hexdigest[:24]}",
        digest=hexdigest,
        files=read.files,
        whole_context=read.whole_context,
        warnings=read.warnings,
        notes=read.notes,
        dockerignore=read.dockerignore,
    )


def slug(dockerfile_relpath: str) -> str:
    """A readable tag prefix, so the registry lists which image a cache belongs to: the Dockerfile's path
    (its directory when the file is just "Dockerfile")."""
    parts = dockerfile_relpath.replace("\\", "/").split("/")
    if parts[-1].lower() == "dockerfile":
        parts = parts[:-1]
    return tag_slug("/".join(parts), "dockerfile", 100)
