"""The build: `docker buildx build` run with its rawjson progress read as it comes, and what came of it.

Progress lines go to the log as BuildKit reports them. Once the image is built and only the cache export
is left, the export gets `cache-timeout` seconds: BuildKit never gives up on a registry that hangs, so
past that the build is stopped and the image kept. The result is a value (BuildResult); what it means
for the cache (the warnings, whether the cache may still be written) is said by the functions below it,
and decided by the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from regcache import advice
from regcache.errors import BuildError
from regcache.image_ref import registry_host
from regcache.log import Log
from regcache.progress import BuildProgress, Step, dockerfile_error_location
from regcache.rawjson import RawJsonStream


@dataclass(frozen=True)
class BuildResult:
    code: int                    # buildx's exit code
    seconds: float
    export_timed_out: bool       # the cache export ran past cache-timeout and was stopped: the image is built
    abandoned_image: str         # then the image's ID (if BuildKit said it), else ""
    steps: list[Step]
    cache_hit: str               # full | partial | none, as BuildKit reported the steps
    slowest: list[Step]
    bases: list[str]             # the FROM steps, as BuildKit named them
    cache_seconds: float         # of seconds, importing and exporting cache
    cache_export_seconds: float | None   # the registry cache export alone (None: no export)
    image_export_seconds: float | None
    import_errors: list[tuple[str, str]]   # (ref, error)
    export_errors: list[str]
    failed_step: Step | None
    text_lines: list[str]        # what buildx printed that was not rawjson


def run_build(cli, log: Log, argv: list[str], cache_timeout: float, containerd_store: bool) -> BuildResult:
    stream, progress = RawJsonStream(), BuildProgress()
    export_deadline: list[float] = []   # set once the image is built and the cache export is under way

    def handle(events) -> None:
        for event in events:
            if isinstance(event, str):
                if event.strip():
                    progress.update(event)   # kept there for the error location
                    log.info(event)
                continue
            for line in progress.update(event):
                log.info(line)
            if not export_deadline and progress.image_exported() and progress.cache_export_running():
                export_deadline.append(time.monotonic() + cache_timeout)

    started = time.monotonic()
    code = cli.stream(argv, on_stderr=lambda chunk: handle(stream.feed(chunk)), on_stdout=log.info,
                      deadline=lambda: export_deadline[0] if export_deadline else None)
    handle(stream.close())
    timed_out = code != 0 and bool(export_deadline) and time.monotonic() > export_deadline[0]
    return BuildResult(
        code=0 if timed_out else code, seconds=time.monotonic() - started, export_timed_out=timed_out,
        abandoned_image=progress.image_id(containerd_store) if timed_out else "",
        steps=progress.steps(), cache_hit=progress.cache_hit(), slowest=progress.slowest(5),
        bases=progress.bases(), cache_seconds=progress.cache_transfer_seconds(),
        cache_export_seconds=progress.cache_export_seconds(), image_export_seconds=progress.image_export_seconds(),
        import_errors=progress.cache_import_errors(), export_errors=progress.cache_export_errors(),
        failed_step=progress.failed_step(), text_lines=progress.text_lines())


def export_again(cli, log: Log, argv: list[str], cache_ref: str) -> bool:
    """The same build again, every step now in the builder, importing the cache just written: only the
    export does work. Its output is not shown; True if it succeeded."""
    stream, progress = RawJsonStream(), BuildProgress()
    again = [*argv[:-1], "--cache-from", f"type=registry,ref={cache_ref}", argv[-1]]
    code = cli.stream(again, on_stderr=lambda chunk: [progress.update(e) for e in stream.feed(chunk)],
                      on_stdout=lambda line: None)
    for event in stream.close():
        progress.update(event)
    errors = progress.cache_export_errors()
    if code != 0 or errors:
        log.info(f"exporting again failed: {errors[0] if errors else f'exit code {code}'}")
    return code == 0 and not errors


def report_cache_reads(log: Log, result: BuildResult, cache_ref: str) -> None:
    """Why a ref was not read: a denied or broken read is a warning, a ref not written yet is not."""
    for ref, error in result.import_errors:
        if not error.endswith(": not found"):
            log.warning(f"the cache could not be read from {ref}: {error}."
                        f"{advice.read_denied(registry_host(ref), error)}")
        elif ref == cache_ref:
            log.warning(f"no cache at {ref} yet: this is a cold build. A try or auto run with the same "
                        "cache key writes it")
        else:
            log.info(f"no fallback cache at {ref}")


def export_failure(error: str, cache_ref: str, fatal: bool = False) -> str:
    why = " (fail-on-cache-error is true)" if fatal else ""
    advice_text = advice.write_denied(registry_host(cache_ref), error)
    return f"the cache could not be written to {cache_ref}{why}: {error}.{advice_text}"


def failure(result: BuildResult, *, dockerfile: str, cache_ref: str, builder_reason: str) -> BuildError:
    """What failed, as one error: the Dockerfile step (with its file and line), the cache export that
    fail-on-cache-error made fatal, or the builder itself."""
    failed, lines = result.failed_step, result.text_lines
    location = dockerfile_error_location(lines)
    if failed and failed.error:
        message = f"{failed.name}: {failed.error}"
    elif result.export_errors:
        message = export_failure(result.export_errors[0], cache_ref, fatal=True)
    else:
        # Not a Dockerfile step: the builder itself failed (a remote daemon that went away, a full disk).
        errors = [line for line in lines if line.startswith("ERROR")]
        message = errors[-1] if errors else (lines[-1] if lines else f"exit code {result.code}")
        message += f" (builder: {builder_reason})"
    in_dockerfile = bool(location or (failed and failed.error))
    return BuildError(message, file=dockerfile if in_dockerfile else None, line=location[1] if location else None)
