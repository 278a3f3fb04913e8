"""Sequence the run: inputs -> build kind -> cache plan -> engine, builder, login -> probe -> build -> report."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar, cast

from regcache import advice
from regcache.build_kind import classify
from regcache.cache_plan import CachePlan, plan_cache
from regcache.errors import BuildError, CommandFailed, RegcacheError
from regcache.inputs import env_name
from regcache.log import DeferredLog, Log
from regcache.report import Outcome, summary_markdown, write_outputs, write_summary
from regcache.settings import Settings, load_settings, registry_host

T = TypeVar("T")


class Terminated(BaseException):
    """SIGTERM (a cancelled job): unwind like Ctrl-C so that logout and cleanup still run."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from regcache.cli import apply_flags

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    real_run = env is None
    env = apply_flags(sys.argv[1:] if argv is None else argv, os.environ if env is None else env)
    if real_run:
        # Payload text can hold anything (lone surrogates included): it must never crash a print.
        cast(io.TextIOWrapper, sys.stdout).reconfigure(errors="backslashreplace")
        cast(io.TextIOWrapper, sys.stderr).reconfigure(errors="backslashreplace")
        # docker and its plugins have no use for the token: they do not inherit it.
        os.environ.pop(env_name("github-token"), None)
    log = Log(github=env.get("GITHUB_ACTIONS") == "true")
    # Masked before anything else can print it.
    log.mask(env.get(env_name("github-token"), "").strip())
    try:
        settings = load_settings(env)
        return run(settings, log)
    except BuildError as e:
        log.error(f"buildx failed with: {e}", file=e.file, line=e.line)
        return e.exit_code
    except CommandFailed as e:
        log.error(e.report())
        return e.exit_code
    except RegcacheError as e:
        log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted (SIGINT): the build was stopped and cleaned up")
        return 130
    except Terminated:
        log.error("terminated (SIGTERM): the build was stopped and cleaned up")
        return 143


def run(s: Settings, log: Log) -> int:
    from regcache.cache_key import slug

    with log.group("Build kind and cache plan"):
        kind = classify(s.event, s.try_branches, s.auto_branches)
        log.info(f"build kind: {kind.kind} ({kind.reason})")
        plan = plan_cache(kind, pr_cache=s.pr_cache, other_cache=s.other_cache, has_token=bool(s.github_token))
        if plan.warning:
            log.warning(plan.warning)
        log.info(f"cache: read={str(plan.read).lower()} write={str(plan.write).lower()} ({plan.reason})")

    # The key names the platforms built for, which for an empty `platforms` is the builder's own: it is
    # computed once the engine and the builder are known.
    outcome = Outcome(kind=kind, plan=plan, cache_key="", cache_ref="",
                      dockerfile_slug=slug(_relative(s.file, s.workspace)))
    try:
        with ExitStack() as cleanup:
            _build(s, log, outcome, cleanup)
    finally:
        write_outputs(outcome.outputs(), s.output_file, log)
        write_summary(log.redact(summary_markdown(outcome, log.warnings)), s.summary_file)
    return 0


def _key(s: Settings, log: Log, o: Outcome, platforms: tuple[str, ...]) -> None:
    """The cache key and ref, and the prefix of the fallback refs: all for these platforms."""
    from regcache.cache_key import compute_cache_key
    from regcache.platforms import slug

    o.platforms = platforms
    o.fallback_prefix = f"{o.dockerfile_slug}-{slug(platforms)}"
    if s.cache_key:
        o.cache_key, why = s.cache_key, "given as input cache-key"
    else:
        computed = compute_cache_key(workspace=s.workspace, context=s.context, dockerfile=s.file,
                                     target=s.target, build_args=s.build_args, platforms=platforms,
                                     version=s.cache_version)
        o.cache_key = computed.tag
        why = ("hash of the Dockerfile, the whole context (a COPY source uses a variable)"
               if computed.whole_context else
               f"hash of the Dockerfile and the {len(computed.files)} files it copies")
        if computed.dockerignore:
            why += f" ({computed.dockerignore} applied)"
        why += ", target, build args, platforms and cache-version"
        for warning in computed.warnings:
            log.warning(warning)
        for note in computed.notes:
            log.info(note)
    o.cache_ref = f"{s.cache_image}:{o.cache_key}"
    native = "" if s.platforms else " (the builder's native platform)"
    log.info(f"platforms: {', '.join(platforms)}{native}")
    log.info(f"cache key: {o.cache_key} ({why})")
    log.info(f"cache ref: {o.cache_ref}")


def _relative(path: Path, workspace: Path) -> str:
    return os.path.relpath(path, workspace) if path.is_relative_to(workspace) else str(path)


def _build(s: Settings, log: Log, o: Outcome, cleanup: ExitStack) -> None:
    from regcache import state
    from regcache.builder import find_builder, new_builder_name, start_choosing
    from regcache.docker_cli import DockerCLI
    from regcache.docker_config import make_private_config, remove_private_config, user_config_dir
    from regcache.platforms import native_of, target_platforms

    # The credential and any builder live in a docker config of the run's own; the post step removes both
    # if this process cannot (SIGKILL). Removed last, after the builder.
    config = make_private_config(user_config_dir(os.environ))
    cleanup.callback(remove_private_config, config)
    builder_name = new_builder_name()
    state.append(s.state_file, state.DOCKER_CONFIG, str(config))
    state.append(s.state_file, state.BUILDER, builder_name)
    cli = DockerCLI(log, config_dir=config)
    # `docker info`, `docker buildx inspect` and the login need nothing from each other: they run at once.
    # `docker info` logs as it starts (nothing else logs until it is done); the other two log to a
    # DeferredLog, replayed in their own place. The pool is shut down (its threads waited for) before the
    # config that the login writes to is removed.
    pool = cleanup.enter_context(ThreadPoolExecutor(max_workers=3, thread_name_prefix="regcache-start"))
    builder_log, login_log = DeferredLog(log), DeferredLog(log)
    with log.group("Engine, platform and cache key"):
        engine_call = pool.submit(cli.check_engine)
        current_call = pool.submit(find_builder, cli.with_log(builder_log), s.builder)
        login_call = pool.submit(_login_all, s, login_log, o.plan, cli.with_log(login_log))
        # Imported while those commands run (requests takes ~0.1 s to import): the probe needs it next.
        from regcache.registry import RegistryClients

        engine = engine_call.result()
        current = _replayed(current_call, builder_log)
        containerd_store = engine.containerd_store
        # Making a builder takes a second or more: it runs while the key, the login and the probe are made.
        pending = start_choosing(cli, log, current=current, requested=bool(s.builder),
                                 buildkit_image=s.buildkit_image, containerd_store=containerd_store,
                                 new_name=builder_name)
        cleanup.callback(pending.remove_if_created, log)
        _key(s, log, o, target_platforms(s.platforms, native_of(current.platforms, engine.platform)))
    with log.group("Registry login"):
        if _replayed(login_call, login_log):
            o.plan = _no_write(o.plan, "the registry login failed")

    registries = RegistryClients(s.registry_username, s.github_token)
    with log.group("Cache probe"):
        import_refs, read_from = _probe(s, log, o, registries)
    # The record of the cache found is one small GET: it runs beside the build.
    record_call = pool.submit(_read_record, registries, *read_from) if read_from else None

    with log.group("Builder"):
        builder = pending.result()
        log.info(f"builder: {builder.reason}")
        o.builder_reason = builder.reason
        if o.plan.write and not builder.can_export:
            o.plan = _no_write(o.plan, "no builder here can export cache")

    if s.image_repository and s.reuse_image:
        from regcache.reuse import reuse_key_image

        with log.group("Reuse the image built for this key"):
            imageid = reuse_key_image(cli, log, registries, f"{s.image_repository}:{o.cache_key}", s.tags, s.push,
                                      o.platforms)
        if imageid:
            o.imageid, o.result, o.cache_hit = imageid, "reused", "full"
            o.plan = CachePlan(o.plan.read, False, f"{o.plan.reason}; the image for this key was reused")
            return

    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="regcache-")))
    metadata_file, iidfile = tmp / "metadata.json", tmp / "iid"
    from regcache.buildx_args import build_argv

    argv = build_argv(s, import_refs=import_refs, export_ref=o.cache_ref if o.plan.write else "",
                      builder=builder.name, driver=builder.driver, metadata_file=str(metadata_file),
                      iidfile=str(iidfile))
    with log.group("Build"):
        abandoned = _run_build(cli, log, o, argv, _relative(s.file, s.workspace), s.cache_timeout,
                               containerd_store)
    read = None
    if record_call is not None:
        with log.group("What the cache saved"):
            read = _report_record(s, log, o, builder.driver, record_call)
    o.result = "built"
    o.imageid = iidfile.read_text().strip() if iidfile.exists() else abandoned
    if metadata_file.exists():
        o.digest = json.loads(metadata_file.read_text() or "{}").get("containerimage.digest", "")
    if containerd_store and builder.driver != "docker" and s.load and o.digest:
        # buildx's --iidfile holds the config digest; a containerd image store names the loaded image by
        # its manifest digest.
        o.imageid = o.digest
    if o.plan.write:
        with log.group("Publish"):
            if s.cache_mode == "max":
                _check_write(log, o, registries, lambda: _export_again(cli, log, argv, o.cache_ref))
            if o.plan.write:
                _publish(s, log, o, cli, registries)
                _write_record(s, log, o, builder.driver, registries, read)


def _no_write(plan: CachePlan, why: str) -> CachePlan:
    return CachePlan(plan.read, False, f"{plan.reason}; but {why}")


def _replayed(call: Future[T], log: DeferredLog) -> T:
    """The result of a step that ran beside others, its log lines written here first."""
    try:
        return call.result()
    finally:
        log.replay()


def _login_all(s: Settings, log: Log | DeferredLog, plan: CachePlan, cli) -> bool:
    """Log in to each registry the run talks to; True if the login to the cache's registry, which a write
    needs, was refused. No logout: the credential is in the run's own docker config, removed at the end
    (and by the post step)."""
    hosts = [s.cache_registry] if plan.read or plan.write else []
    if s.image_repository:
        hosts.append(registry_host(s.image_repository))
    if s.push:   # the token is the cache registry's credential: it pushes the tags that live there
        hosts += [host for host in map(registry_host, s.tags) if host == s.cache_registry]
    if not s.github_token or not hosts:
        return False
    refused = False
    for host in dict.fromkeys(hosts):
        try:
            cli.login(host, s.registry_username, s.github_token)
        except CommandFailed as e:
            log.warning(f"could not log in to {host} as {s.registry_username!r}: {e}."
                        f"{advice.login_refused(host, s.registry_username, str(e))} Building without "
                        "writing the cache; reading only works if it is public")
            refused |= plan.write and host == s.cache_registry
    return refused


def _probe(s: Settings, log: Log, o: Outcome, registries) -> tuple[list[str], tuple[str, str] | None]:
    """The refs to import, and the first one found with its manifest digest (None if none was)."""
    from regcache.cache_refs import read_refs
    from regcache.probe import miss_warning, probe

    if not o.plan.read:
        o.probe = "miss"
        log.info("cache reading is off: nothing to probe")
        return [], None
    refs = read_refs(s.cache_image, o.cache_key, o.fallback_prefix, o.kind.branch, s.auto_branches,
                     s.cache_from)
    p = probe(refs, registries)
    o.probe = p.result
    if p.hanging and o.plan.write:
        o.plan = _no_write(o.plan, "the registry does not answer, and BuildKit's export would wait forever")
    for ref in refs:
        log.info(f"  {'found  ' if ref in p.found else 'missing'} {ref}")
    for error in p.errors:
        log.warning(f"could not look up the cache: {error}")
    log.info(f"cache probe: {p.result}")
    if p.result == "miss" and not o.plan.write:
        log.warning(miss_warning(p, s.cache_image))
    first = (p.found[0], p.digests[0]) if p.found and p.digests[0] else None
    return list(p.import_refs), first


def _check_write(log: Log, o: Outcome, registries, export_again) -> None:
    """Read the cache just written back: a write that misses layers is exported once more from what the
    builder now holds (BuildKit 0.13 now and then drops a layer of a cold build), then reported, never
    claimed complete."""
    from regcache.cache_check import CacheFormatError, check_write
    from regcache.cache_refs import split_ref
    from regcache.registry import RegistryError

    host, repository, tag = split_ref(o.cache_ref)
    client = registries(host)
    for attempt in (1, 2):
        try:
            manifest = client.get_manifest(repository, tag)
            if manifest is None:
                raise RegistryError(f"{o.cache_ref} is not in the registry after the export")
            check = check_write(o.steps, manifest, lambda digest: client.get_blob(repository, digest))
        except (RegistryError, CacheFormatError) as e:
            log.warning(f"could not read back the cache written to {o.cache_ref}: {e}")
            return
        if check.complete:
            log.info(f"cache written: {check.written} layers for {check.expected} RUN/COPY/ADD steps")
            o.cache_manifest = manifest
            return
        if attempt == 1:
            log.info(f"the cache written holds {check.written} layers for {check.expected} RUN/COPY/ADD steps: "
                     "exporting it again from the builder")
            if not export_again():
                break
    log.warning(f"the cache written to {o.cache_ref} is incomplete: {check.written} layers for "
                f"{check.expected} RUN/COPY/ADD steps. BuildKit reported steps as cached from local records "
                "it could not export (a long-lived builder after interrupted builds or prunes). The "
                "fallback ref was not moved. Restarting the builder (or dockerd) clears that state; "
                "a builder made for the run (see the builder input) never has it")
    o.plan = _no_write(o.plan, f"the export missed layers ({check.written} of {check.expected})")


def _export_again(cli, log: Log, argv: list[str], cache_ref: str) -> bool:
    """The same build again, every step now in the builder, importing the cache just written: only the
    export does work. Its output is not shown; True if it succeeded."""
    from regcache.progress import BuildProgress, RawJsonStream

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


def _publish(s: Settings, log: Log, o: Outcome, cli, registries) -> None:
    """After a successful write: move the branch's fallback ref, and push the image for this key."""
    from regcache.reuse import push_key_image, update_fallback_ref

    if o.kind.branch:
        update_fallback_ref(registries, log, o.cache_ref, o.fallback_prefix, o.kind.branch)
    if s.image_repository:
        push_key_image(cli, log, f"{s.image_repository}:{o.cache_key}", o.imageid if s.load else "")


def _read_record(registries, ref: str, digest: str):
    """The record of the cache at ref (manifest `digest`), None if it has none."""
    from regcache.cache_refs import split_ref
    from regcache.provenance import read_record

    host, repository, _ = split_ref(ref)
    return read_record(registries(host), repository, digest)


def _this_run(s: Settings, o: Outcome, driver: str):
    from regcache.provenance import Run

    return Run(kind=o.kind.kind, branch=o.kind.branch, commit=s.commit, run_url=s.run_url, builder=driver,
               platforms=o.platforms, cache_key=o.cache_key, cache_version=s.cache_version,
               build_seconds=o.seconds, steps=o.steps, bases=tuple(o.bases), cache_seconds=o.cache_seconds)


def _report_record(s: Settings, log: Log, o: Outcome, driver: str, record_call: Future):
    """Say who wrote the cache read and what it saved; warn with the likely cause when the build got less
    from it than its record promises. Returns the record (None when there is none)."""
    from regcache.provenance import RecordError, likely_causes, saved_seconds, shortfall, written_by
    from regcache.registry import RegistryError

    try:
        record = record_call.result(timeout=30)
    except TimeoutError:
        log.info("the cache's record did not arrive in time")
        return None
    except (RegistryError, RecordError) as e:
        log.info(f"could not read the cache's record: {e}")
        return None
    if record is None:
        log.info("the cache read has no record (written before regcache kept records, or by another tool): "
                 "who wrote it and what it saves are unknown")
        return None
    now = time.time()
    o.written_by, o.cache_age = written_by(record, now), max(0.0, now - record.written_at)
    o.time_saved = saved_seconds(record, o.seconds)
    run_url = f" ({record.run_url})" if record.run_url else ""
    log.info(f"cache written by {o.written_by}{run_url}")
    log.info(f"that build takes {record.cold_seconds:.1f}s without the cache (its executed steps and the work "
             f"around them); this run {o.seconds:.1f}s: saved about {o.time_saved:.1f}s")
    missed = shortfall(record, o.steps)
    if o.cache_hit != "none" and not (missed and o.probe == "exact"):
        if missed:   # read through a fallback ref: the key differs, so steps after what changed run again
            log.info(f"{len(missed)} of the steps in that cache were built again (first: {missed[0]}): this run's "
                     "key differs from the cache's")
        return record
    causes = likely_causes(record, _this_run(s, o, driver))
    what = ("none of its steps" if o.cache_hit == "none" else
            f"{len(missed)} of its steps were built again, first {missed[0]}")
    why = ("; ".join(causes) if causes else
           "nothing in the record differs from this run: a file or build arg the steps use changed, or the "
           "cache lost layers")
    log.warning(f"this run got less from the cache than its record promises ({what}; the cache was written by "
                f"{o.written_by}). Likely cause: {why}")
    return record


def _write_record(s: Settings, log: Log, o: Outcome, driver: str, registries, read) -> None:
    """Leave the record of the cache just written beside it (a failure is a warning: the cache is there)."""
    from regcache.cache_refs import split_ref
    from regcache.provenance import RecordError, new_record, write_record
    from regcache.registry import RegistryError

    host, repository, tag = split_ref(o.cache_ref)
    client = registries(host)
    try:
        manifest = o.cache_manifest or client.get_manifest(repository, tag)
        if manifest is None or not manifest.digest:
            raise RegistryError(f"{o.cache_ref} has no manifest digest to describe")
        record = new_record(_this_run(s, o, driver), read, time.time())
        written = write_record(client, repository, record, manifest)
        log.info(f"record written: {o.cache_ref.rpartition(':')[0]}:{written} (the build takes "
                 f"{record.cold_seconds:.1f}s without the cache)")
    except (RegistryError, RecordError) as e:
        log.warning(f"could not write the cache's record beside {o.cache_ref}: {e}. The cache itself is written")


def _run_build(cli, log: Log, o: Outcome, argv: list[str], dockerfile: str, cache_timeout: float,
               containerd_store: bool) -> str:
    """Run the build; return the image ID if its cache export had to be abandoned, else ""."""
    from regcache.progress import BuildProgress, RawJsonStream, dockerfile_error_location

    stream, progress = RawJsonStream(), BuildProgress()
    export_deadline: list[float] = []   # set once the image is built and the cache export is under way

    def handle(events) -> None:
        for event in events:
            if isinstance(event, str):
                if event.strip():
                    progress.update(event)   # kept there for the error location
                    log.info(event)
            else:
                for line in progress.update(event):
                    log.info(line)
                if not export_deadline and progress.image_exported() and progress.cache_export_running():
                    export_deadline.append(time.monotonic() + cache_timeout)

    started = time.monotonic()
    code = cli.stream(argv, on_stderr=lambda chunk: handle(stream.feed(chunk)), on_stdout=log.info,
                      deadline=lambda: export_deadline[0] if export_deadline else None)
    handle(stream.close())
    o.seconds = time.monotonic() - started
    abandoned = ""
    if code != 0 and export_deadline and time.monotonic() > export_deadline[0]:
        log.warning(f"the cache export to {o.cache_ref} took longer than cache-timeout ({cache_timeout:.0f}s) "
                    "and was abandoned: the registry does not answer. The image itself was built")
        o.plan = _no_write(o.plan, "the export timed out")
        code, abandoned = 0, progress.image_id(containerd_store)
    o.steps, o.cache_hit, o.slowest = progress.steps(), progress.cache_hit(), progress.slowest(5)
    o.bases, o.cache_seconds = progress.bases(), progress.cache_transfer_seconds()
    for ref, error in progress.cache_import_errors():
        if not error.endswith(": not found"):
            log.warning(f"the cache could not be read from {ref}: {error}."
                        f"{advice.read_denied(registry_host(ref), error)}")
        elif ref == o.cache_ref:
            log.warning(f"no cache at {ref} yet: this is a cold build. A try or auto run with the same "
                        "cache key writes it")
        else:
            log.info(f"no fallback cache at {ref}")
    for error in progress.cache_export_errors():
        log.warning(f"the cache could not be written to {o.cache_ref}: {error}."
                    f"{advice.write_denied(registry_host(o.cache_ref), error)}")
        if o.plan.write:
            o.plan = _no_write(o.plan, "the export failed")
    if not o.plan.read:
        o.cache_hit = "none"
    elif code == 0 and o.probe == "exact" and o.cache_hit == "none" and not progress.cache_import_errors():
        # BuildKit 0.34 skips a cache it cannot read (an unknown manifest format) without an error.
        log.warning(f"the cache could not be read from {o.cache_ref}: the registry has it, but BuildKit used "
                    "none of its steps (a cache it could not read, or one written for another platform)")
    cached = sum(1 for step in o.steps if step.cached)
    log.info(f"{cached} of {len(o.steps)} steps cached (cache-hit: {o.cache_hit}) in {o.seconds:.1f}s")
    if code != 0:
        failed = progress.failed_step()
        text_lines = progress.text_lines()
        location = dockerfile_error_location(text_lines)
        errors = [line for line in text_lines if line.startswith("ERROR")]
        export_errors = progress.cache_export_errors()
        if failed and failed.error:
            message = f"{failed.name}: {failed.error}"
        elif export_errors:
            # fail-on-cache-error: true made the failed export fail the build; say so as the warning does.
            message = (f"the cache could not be written to {o.cache_ref} (fail-on-cache-error is true): "
                       f"{export_errors[0]}.{advice.write_denied(registry_host(o.cache_ref), export_errors[0])}")
        else:
            # Not a Dockerfile step: the builder itself failed (a remote daemon that went away, a full disk).
            message = errors[-1] if errors else (text_lines[-1] if text_lines else f"exit code {code}")
            message += f" (builder: {o.builder_reason})"
        o.failed = message
        in_dockerfile = bool(location or (failed and failed.error))
        raise BuildError(message, file=dockerfile if in_dockerfile else None,
                         line=location[1] if location else None)
    return abandoned
