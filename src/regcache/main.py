"""Sequence the run: inputs -> build kind -> cache plan -> engine, builder, login -> probe -> build -> report."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from regcache import advice
from regcache.build_kind import classify
from regcache.cache_plan import CachePlan, plan_cache
from regcache.errors import CommandFailed, RegcacheError
from regcache.image_ref import registry_host
from regcache.inputs import env_name
from regcache.log import DeferredLog, Log
from regcache.report import Outcome, summary_markdown, write_outputs, write_summary, write_timings
from regcache.settings import Settings, load_settings

if TYPE_CHECKING:
    from regcache.cache_key import ContextRead

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
    except RegcacheError as e:
        log.error(e.report(), file=e.file, line=e.line)
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
        if s.timings_file:
            write_timings(outcome, log.phases, s.timings_file)
    return 0


def _read_context(s: Settings) -> ContextRead | None:
    """The slow part of the key (every copied file is read): it needs no platform, so it runs beside the
    first docker commands. None when the key is given."""
    from regcache.cache_key import read_context

    return None if s.cache_key else read_context(workspace=s.workspace, context=s.context, dockerfile=s.file)


def _key(s: Settings, log: Log, o: Outcome, platforms: tuple[str, ...], context_read: ContextRead | None) -> None:
    """The cache key and ref, and the prefix of the fallback refs: all for these platforms."""
    from regcache.cache_key import cache_key
    from regcache.platforms import slug

    o.platforms = platforms
    o.fallback_prefix = f"{o.dockerfile_slug}-{slug(platforms)}"
    if context_read is None:
        o.cache_key, why = s.cache_key, "given as input cache-key"
    else:
        computed = cache_key(context_read, target=s.target, build_args=s.build_args, platforms=platforms,
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
    """Engine, builder, login and key; the probe; the image reused or built; the cache published."""
    cli, pool, builder_name = _private_docker(s, log, cleanup)
    pending, containerd_store = _start(s, log, o, cli, pool, cleanup, builder_name)
    from regcache import records  # imported once the first docker commands ran (start-up time)
    from regcache.registry import RegistryClients

    registries = RegistryClients(s.registry_username, s.github_token)
    with log.group("Cache probe"):
        import_refs, read_from = _probe(s, log, o, registries)
    # The record of the cache found is one small GET: it runs beside the build.
    record_call = pool.submit(records.read_of, registries, *read_from) if read_from else None
    with log.group("Builder"):
        builder = pending.result()
        log.info(f"builder: {builder.reason}")
        o.builder_reason = builder.reason
        if not builder.can_export:
            _no_write(o, "no builder here can export cache")
    if s.image_repository and s.reuse_image and _reused(s, log, o, cli, registries):
        return
    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="regcache-")))
    from regcache.buildx_args import build_argv

    argv = build_argv(s, import_refs=import_refs, export_ref=o.cache_ref if o.plan.write else "",
                      builder=builder.name, driver=builder.driver, metadata_file=str(tmp / "metadata.json"),
                      iidfile=str(tmp / "iid"))
    with log.group("Build"):
        abandoned = _build_image(s, log, o, cli, argv, containerd_store)
    read = None
    if record_call is not None:
        with log.group("What the cache saved"):
            read = records.report(s, log, o, builder.driver, record_call)
    _built(s, o, tmp, abandoned, containerd_store and builder.driver != "docker")
    if o.plan.write:
        with log.group("Publish"):
            _publish(s, log, o, cli, registries, argv, builder.driver, read)


def _private_docker(s: Settings, log: Log, cleanup: ExitStack):
    """The run's own docker config (the credential and any builder live there; the post step removes both
    if this process cannot, on SIGKILL), a docker runner on it, the start-up pool and the builder's name."""
    from regcache import state
    from regcache.builder import new_builder_name
    from regcache.docker_cli import DockerCLI
    from regcache.docker_config import make_private_config, remove_private_config, user_config_dir

    config = make_private_config(user_config_dir(os.environ))
    cleanup.callback(remove_private_config, config)  # removed last, after the builder
    builder_name = new_builder_name()
    state.append(s.state_file, state.DOCKER_CONFIG, str(config))
    state.append(s.state_file, state.BUILDER, builder_name)
    # The pool is shut down (its threads waited for) before the config that the login writes to is removed.
    pool = cleanup.enter_context(ThreadPoolExecutor(max_workers=4, thread_name_prefix="regcache-start"))
    return DockerCLI(log, config_dir=config), pool, builder_name


def _start(s: Settings, log: Log, o: Outcome, cli, pool: ThreadPoolExecutor, cleanup: ExitStack,
           builder_name: str):
    """`docker info`, `docker buildx inspect`, the login and reading the context for the key need nothing
    from each other: they run at once. `docker info` logs as it starts (nothing else logs until it is
    done); the inspect and the login log to a DeferredLog, replayed in their own place. Returns the
    builder being chosen (making one takes a second or more: it goes on while the probe is made) and
    whether the engine has the containerd image store."""
    from regcache.builder import find_builder, start_choosing
    from regcache.platforms import native_of, target_platforms

    builder_log, login_log = DeferredLog(log), DeferredLog(log)
    with log.group("Engine, platform and cache key"):
        engine_call = pool.submit(cli.check_engine)
        current_call = pool.submit(find_builder, cli.with_log(builder_log), s.builder)
        login_call = pool.submit(_login_all, s, login_log, o.plan, cli.with_log(login_log))
        context_call = pool.submit(_read_context, s)
        # Imported while those commands run (requests takes ~0.1 s to import): the probe needs it next.
        import regcache.registry  # noqa: F401

        engine = engine_call.result()
        current = _replayed(current_call, builder_log)
        pending = start_choosing(cli, log, current=current, requested=bool(s.builder),
                                 buildkit_image=s.buildkit_image, containerd_store=engine.containerd_store,
                                 new_name=builder_name)
        cleanup.callback(pending.remove_if_created, log)
        _key(s, log, o, target_platforms(s.platforms, native_of(current.platforms, engine.platform)),
             context_call.result())
    with log.group("Registry login"):
        if _replayed(login_call, login_log):
            _no_write(o, "the registry login failed")
    return pending, engine.containerd_store


def _reused(s: Settings, log: Log, o: Outcome, cli, registries) -> bool:
    """The image built for this key, pulled instead of built (image-repository with reuse-image)."""
    from regcache.reuse import reuse_key_image

    with log.group("Reuse the image built for this key"):
        imageid = reuse_key_image(cli, log, registries, f"{s.image_repository}:{o.cache_key}", s.tags, s.push,
                                  o.platforms)
    if imageid:
        o.imageid, o.result, o.cache_hit = imageid, "reused", "full"
        o.plan = CachePlan(o.plan.read, False, f"{o.plan.reason}; the image for this key was reused")
    return bool(imageid)


def _built(s: Settings, o: Outcome, tmp: Path, abandoned: str, named_by_manifest: bool) -> None:
    """The image's ID and digest, from the files buildx wrote in tmp."""
    iidfile, metadata_file = tmp / "iid", tmp / "metadata.json"
    o.result = "built"
    o.imageid = iidfile.read_text().strip() if iidfile.exists() else abandoned
    if metadata_file.exists():
        o.digest = json.loads(metadata_file.read_text() or "{}").get("containerimage.digest", "")
    if named_by_manifest and s.load and o.digest:
        # buildx's --iidfile holds the config digest; a containerd image store names an image loaded from
        # another driver by its manifest digest.
        o.imageid = o.digest


def _no_write(o: Outcome, why: str) -> None:
    """The one place a run that may write the cache stops writing it, with the reason added."""
    if o.plan.write:
        o.plan = CachePlan(o.plan.read, False, f"{o.plan.reason}; but {why}")


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
    if p.hanging:
        _no_write(o, "the registry does not answer, and BuildKit's export would wait forever")
    for ref in refs:
        log.info(f"  {'found  ' if ref in p.found else 'missing'} {ref}")
    for error in p.errors:
        log.warning(f"could not look up the cache: {error}")
    log.info(f"cache probe: {p.result}")
    if p.result == "miss" and not o.plan.write:
        log.warning(miss_warning(p, s.cache_image))
    first = (p.found[0], p.digests[0]) if p.found and p.digests[0] else None
    return list(p.import_refs), first


def _publish(s: Settings, log: Log, o: Outcome, cli, registries, argv: list[str], driver: str, read) -> None:
    """After a build that wrote the cache: read it back (max mode; a write that misses layers is not
    published), move the branch's fallback ref, push the image for this key, leave the cache's record."""
    from regcache import records
    from regcache.build_step import export_again
    from regcache.cache_check import read_back
    from regcache.reuse import push_key_image, update_fallback_ref

    if s.cache_mode == "max":
        o.cache_manifest, why_not = read_back(log, registries, o.cache_ref, o.steps,
                                              lambda: export_again(cli, log, argv, o.cache_ref))
        if why_not:
            _no_write(o, why_not)
            return
    if o.kind.branch:
        update_fallback_ref(registries, log, o.cache_ref, o.fallback_prefix, o.kind.branch)
    if s.image_repository:
        push_key_image(cli, log, f"{s.image_repository}:{o.cache_key}", o.imageid if s.load else "")
    records.write(s, log, o, driver, registries, read)


def _build_image(s: Settings, log: Log, o: Outcome, cli, argv: list[str], containerd_store: bool) -> str:
    """Run the build and say what came of it for the cache; the image's ID if its cache export was
    abandoned, else "". A failed build raises BuildError."""
    from regcache.build_step import export_failure, failure, report_cache_reads, run_build

    r = run_build(cli, log, argv, s.cache_timeout, containerd_store)
    o.seconds, o.steps, o.cache_hit, o.slowest = r.seconds, r.steps, r.cache_hit, r.slowest
    o.bases, o.cache_seconds = r.bases, r.cache_seconds
    o.cache_export_seconds, o.image_export_seconds = r.cache_export_seconds, r.image_export_seconds
    if r.export_timed_out:
        log.warning(f"the cache export to {o.cache_ref} took longer than cache-timeout ({s.cache_timeout:.0f}s) "
                    "and was abandoned: the registry does not answer. The image itself was built")
        _no_write(o, "the export timed out")
    report_cache_reads(log, r, o.cache_ref)
    for error in r.export_errors:
        log.warning(export_failure(error, o.cache_ref))
        _no_write(o, "the export failed")
    if not o.plan.read:
        o.cache_hit = "none"
    elif r.code == 0 and o.probe == "exact" and o.cache_hit == "none" and not r.import_errors:
        # BuildKit 0.34 skips a cache it cannot read (an unknown manifest format) without an error.
        log.warning(f"the cache could not be read from {o.cache_ref}: the registry has it, but BuildKit used "
                    "none of its steps (a cache it could not read, or one written for another platform)")
    cached = sum(1 for step in o.steps if step.cached)
    log.info(f"{cached} of {len(o.steps)} steps cached (cache-hit: {o.cache_hit}) in {o.seconds:.1f}s")
    if r.code != 0:
        failed = failure(r, dockerfile=_relative(s.file, s.workspace), cache_ref=o.cache_ref,
                         builder_reason=o.builder_reason)
        o.failed = str(failed)
        raise failed
    return r.abandoned_image
