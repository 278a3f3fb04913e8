"""Read every input once into one frozen, validated Settings object.

Nothing else reads the environment. A bad value raises InputError naming the input and what is accepted,
before any docker command runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regcache.errors import InputError
from regcache.event import Event, load_event
from regcache.image_ref import IMAGE_RE, REPOSITORY_RE, TAG_RE, TAGGED_RE, registry_host
from regcache.inputs import BY_NAME, PRUNE_BY_NAME, Input, env_name

TRUE = ("true", "True", "TRUE")
FALSE = ("false", "False", "FALSE")
CACHE_MODES = ("max", "min")
COMPRESSIONS = ("zstd", "gzip", "estargz", "uncompressed")
PR_CACHE = ("read", "off")
OTHER_CACHE = ("read", "read-write", "off")

PLATFORM_RE = re.compile(r"^[a-z0-9_]+(?:/[a-z0-9_.-]+){1,2}$")
ARG_NAME_RE = re.compile(r"^[^\s=]+$")


@dataclass(frozen=True)
class Settings:
    context: Path
    file: Path
    target: str
    build_args: tuple[tuple[str, str], ...]
    platforms: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    load: bool
    push: bool
    builder: str
    cache_image: str
    cache_key: str                 # "" = compute it
    cache_version: str
    cache_from: tuple[str, ...]    # extra refs to read
    cache_mode: str
    cache_compression: str
    registry_username: str
    github_token: str = field(repr=False)
    try_branches: tuple[str, ...]
    auto_branches: tuple[str, ...]
    pr_cache: str
    other_cache: str
    buildkit_image: str
    fail_on_cache_error: bool
    cache_timeout: float           # seconds
    image_repository: str          # "" = no per-key image
    reuse_image: bool
    workspace: Path
    event: Event
    output_file: str               # GITHUB_OUTPUT, "" when not set
    summary_file: str              # GITHUB_STEP_SUMMARY, "" when not set
    state_file: str = ""           # GITHUB_STATE (values for the post step), "" when not set
    commit: str = ""               # GITHUB_SHA
    timings_file: str = ""         # REGCACHE_TIMINGS: where to write the run's timings as JSON (for bench/)
    run_url: str = ""              # the workflow run's page, "" outside GitHub Actions

    @property
    def cache_registry(self) -> str:
        return registry_host(self.cache_image)


def load_settings(env: Mapping[str, str]) -> Settings:
    raw = _Raw(env)
    workspace = Path(env.get("GITHUB_WORKSPACE") or ".").resolve()
    context = _directory(raw, "context", workspace)
    file = _dockerfile(raw, workspace, context)
    event = load_event(env)
    repository = env.get("GITHUB_REPOSITORY", "")
    return Settings(
        context=context,
        file=file,
        target=_single_line(raw, "target"),
        build_args=_pairs(raw, "build-args"),
        platforms=tuple(_checked_list(raw, "platforms", PLATFORM_RE, "os/arch[/variant], e.g. linux/amd64")),
        labels=_pairs(raw, "labels"),
        tags=tuple(_checked_list(raw, "tags", IMAGE_RE, "image references such as ghcr.io/owner/app:1.0")),
        load=_bool(raw, "load"),
        push=_bool(raw, "push"),
        builder=_single_line(raw, "builder"),
        cache_image=_cache_image(raw, repository),
        cache_key=_cache_key(raw),
        cache_version=_nonempty_line(raw, "cache-version"),
        cache_from=tuple(_checked_list(raw, "cache-from", TAGGED_RE, "image references with a tag, e.g. "
                                       "ghcr.io/owner/repo-cache:main")),
        cache_mode=_choice(raw, "cache-mode", CACHE_MODES),
        cache_compression=_choice(raw, "cache-compression", COMPRESSIONS),
        registry_username=raw.get("registry-username", env.get("GITHUB_ACTOR", "")),
        github_token=raw.get("github-token"),
        try_branches=tuple(raw.lines("try-branches")),
        auto_branches=tuple(raw.lines("auto-branches")),
        pr_cache=_choice(raw, "pr-cache", PR_CACHE),
        other_cache=_choice(raw, "other-cache", OTHER_CACHE),
        buildkit_image=_image(raw, "buildkit-image"),
        fail_on_cache_error=_bool(raw, "fail-on-cache-error"),
        cache_timeout=_seconds(raw, "cache-timeout"),
        image_repository=_repository(raw, "image-repository", ""),
        reuse_image=_bool(raw, "reuse-image", default="true" if raw.get("image-repository") else "false"),
        workspace=workspace,
        event=event,
        output_file=env.get("GITHUB_OUTPUT", ""),
        summary_file=env.get("GITHUB_STEP_SUMMARY", ""),
        state_file=env.get("GITHUB_STATE", ""),
        timings_file=env.get("REGCACHE_TIMINGS", ""),
        commit=env.get("GITHUB_SHA", ""),
        run_url=_run_url(env),
    )


def _run_url(env: Mapping[str, str]) -> str:
    server, repository, run_id = (env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repository and run_id):
        return ""
    attempt = env.get("GITHUB_RUN_ATTEMPT", "")
    return f"{server}/{repository}/actions/runs/{run_id}" + (f"/attempts/{attempt}" if attempt not in ("", "1") else "")


@dataclass(frozen=True)
class PruneSettings:
    cache_image: str
    keep_days: float
    keep_per_dockerfile: int
    image_repository: str
    dry_run: bool
    packages_api: str              # github | oci
    registry_username: str
    github_token: str = field(repr=False)
    github_api_url: str = "https://api.github.com"
    output_file: str = ""
    summary_file: str = ""


PACKAGES_APIS = ("auto", "github", "oci")


def load_prune_settings(env: Mapping[str, str]) -> PruneSettings:
    raw = _Raw(env, PRUNE_BY_NAME)
    cache_image = _cache_image(raw, env.get("GITHUB_REPOSITORY", ""))
    api = _choice(raw, "packages-api", PACKAGES_APIS)
    if api == "auto":
        api = "github" if registry_host(cache_image) == "ghcr.io" else "oci"
    return PruneSettings(
        cache_image=cache_image,
        keep_days=_number(raw, "keep-days", minimum=0, accepted="a number of days >= 0, e.g. 14"),
        keep_per_dockerfile=int(_number(raw, "keep-per-dockerfile", minimum=0, integer=True,
                                        accepted="a whole number >= 0, e.g. 3")),
        image_repository=_repository(raw, "image-repository", ""),
        dry_run=_bool(raw, "dry-run"),
        packages_api=api,
        registry_username=raw.get("registry-username", env.get("GITHUB_ACTOR", "")),
        github_token=raw.get("github-token"),
        github_api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
        output_file=env.get("GITHUB_OUTPUT", ""),
        summary_file=env.get("GITHUB_STEP_SUMMARY", ""),
    )


def _number(raw: _Raw, name: str, *, minimum: float, accepted: str, integer: bool = False) -> float:
    value = raw.get(name)
    try:
        number = float(int(value)) if integer else float(value)
    except ValueError:
        number = minimum - 1
    if not minimum <= number < float("inf"):
        raise InputError(name, f"{_show(value)} is not valid", accepted)
    return number


def _show(value: str) -> str:
    """A value quoted for an error message, cut short: a megabyte of input makes no readable error."""
    return repr(value) if len(value) <= 80 else f"{value[:60]!r}... ({len(value)} characters)"


class _Raw:
    """Input values as the runner passes them, with action.yml's defaults for the ones it did not."""

    def __init__(self, env: Mapping[str, str], table: Mapping[str, Input] = BY_NAME):
        self._env = env
        self._table = table

    def get(self, name: str, computed_default: str = "") -> str:
        value = self._env.get(env_name(name))
        if value is None or value.strip() == "":
            default = self._table[name].default
            value = computed_default if default is None else default
        return value.strip()

    def lines(self, name: str) -> list[str]:
        return [line.strip() for line in self.get(name).splitlines() if line.strip()]


def _choice(raw: _Raw, name: str, accepted: tuple[str, ...]) -> str:
    value = raw.get(name)
    if value not in accepted:
        raise InputError(name, f"{_show(value)} is not a valid value", " | ".join(accepted))
    return value


def _bool(raw: _Raw, name: str, default: str = "") -> bool:
    value = raw.get(name) or default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InputError(name, f"{_show(value)} is not a boolean", "true | false")


def _seconds(raw: _Raw, name: str) -> float:
    value = raw.get(name)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise InputError(name, f"{_show(value)} is not a number of seconds", "a positive number, e.g. 1200")
    return seconds


def _single_line(raw: _Raw, name: str) -> str:
    value = raw.get(name)
    if "\n" in value or "\r" in value:
        raise InputError(name, "must be a single line", "one line of text")
    return value


def _nonempty_line(raw: _Raw, name: str) -> str:
    value = _single_line(raw, name)
    if not value:
        raise InputError(name, "must not be empty", "any non-empty single line")
    return value


def _pairs(raw: _Raw, name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for number, line in enumerate(raw.lines(name), start=1):
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not ARG_NAME_RE.match(key):
            raise InputError(name, f"line {number} {_show(line)} is not KEY=VALUE",
                             "one KEY=VALUE per line, KEY without spaces")
        pairs.append((key, value))
    return tuple(pairs)


def _checked_list(raw: _Raw, name: str, pattern: re.Pattern[str], accepted: str) -> list[str]:
    items = [item.strip() for line in raw.lines(name) for item in line.split(",") if item.strip()]
    for item in items:
        if not pattern.match(item):
            raise InputError(name, f"{_show(item)} is not valid", accepted)
    return items


def _image(raw: _Raw, name: str) -> str:
    value = raw.get(name)
    if not IMAGE_RE.match(value):
        raise InputError(name, f"{_show(value)} is not a valid image reference",
                         "an image reference such as moby/buildkit:buildx-stable-1")
    return value


def _cache_image(raw: _Raw, repository: str) -> str:
    default = f"ghcr.io/{repository}-cache".lower() if repository else ""
    value = _repository(raw, "cache-image", default)
    if not value:
        raise InputError("cache-image", "is not set and GITHUB_REPOSITORY is not there to derive it",
                         "a repository such as ghcr.io/owner/repo-cache")
    return value


def _repository(raw: _Raw, name: str, default: str) -> str:
    value = raw.get(name, default)
    if value and not REPOSITORY_RE.match(value):
        hint = ""
        if value != value.lower():
            hint = " (it must be lowercase)"
        elif "@" in value or value.rsplit("/", 1)[-1].count(":"):
            hint = " (give the repository only: the tag is the cache key)"
        raise InputError(name, f"{_show(value)} is not a valid repository{hint}",
                         "a lowercase repository without tag or digest, such as ghcr.io/owner/repo-cache")
    return value


def _cache_key(raw: _Raw) -> str:
    value = raw.get("cache-key")
    if value and not TAG_RE.match(value):
        raise InputError("cache-key", f"{_show(value)} is not a valid tag",
                         "[A-Za-z0-9_][A-Za-z0-9_.-]*, at most 128 characters")
    return value


def _directory(raw: _Raw, name: str, workspace: Path) -> Path:
    path = (workspace / raw.get(name)).resolve()
    if not path.is_dir():
        raise InputError(name, f"{_show(raw.get(name))} is not a directory (looked in {workspace})",
                         "a directory relative to the workspace")
    return path


def _dockerfile(raw: _Raw, workspace: Path, context: Path) -> Path:
    given = raw.get("file")
    path = (workspace / given).resolve() if given else context / "Dockerfile"
    if not path.is_file():
        raise InputError("file", f"{_show(given or str(path))} is not a file",
                         "a Dockerfile path relative to the workspace [<context>/Dockerfile]")
    return path
