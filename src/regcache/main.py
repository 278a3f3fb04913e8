"""Sequence the run: inputs -> build kind -> cache plan -> engine and builder -> login -> build -> report."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from regcache.build_kind import classify
from regcache.buildx_args import build_argv
from regcache.cache_plan import CachePlan, plan_cache
from regcache.errors import BuildError, RegcacheError
from regcache.inputs import env_name
from regcache.log import Log
from regcache.report import Outcome, summary_markdown, write_outputs, write_summary
from regcache.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    from regcache.cli import apply_flags

    env = apply_flags(sys.argv[1:] if argv is None else argv, os.environ if env is None else env)
    log = Log(github=env.get("GITHUB_ACTIONS") == "true")
    # Masked before anything else can print it.
    log.mask(env.get(env_name("github-token"), "").strip())
    try:
        settings = load_settings(env)
        return run(settings, log)
    except BuildError as e:
        log.error(f"buildx failed with: {e}", file=e.file, line=e.line)
        return e.exit_code
    except RegcacheError as e:
        log.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


def run(s: Settings, log: Log) -> int:
    from regcache.cache_key import compute_cache_key

    with log.group("Build kind and cache plan"):
        kind = classify(s.event, s.try_branches, s.auto_branches)
        log.info(f"build kind: {kind.kind} ({kind.reason})")
        plan = plan_cache(kind, pr_cache=s.pr_cache, other_cache=s.other_cache, has_token=bool(s.github_token))
        if plan.warning:
            log.warning(plan.warning)
        if s.cache_key:
            key, why = s.cache_key, "given as input cache-key"
        else:
            computed = compute_cache_key(workspace=s.workspace, context=s.context, dockerfile=s.file,
                                         target=s.target, build_args=s.build_args, platforms=s.platforms,
                                         version=s.cache_version)
            key = computed.tag
            why = ("hash of the Dockerfile, the whole context (a COPY source uses a variable)"
                   if computed.whole_context else
                   f"hash of the Dockerfile and the {len(computed.files)} files it copies")
            why += ", target, build args, platforms and cache-version"
        cache_ref = f"{s.cache_image}:{key}"
        log.info(f"cache: read={str(plan.read).lower()} write={str(plan.write).lower()} ({plan.reason})")
        log.info(f"cache key: {key} ({why})")
        log.info(f"cache ref: {cache_ref}")

    outcome = Outcome(kind=kind, plan=plan, cache_key=key, cache_ref=cache_ref)
    try:
        with ExitStack() as cleanup:
            outcome = _build(s, log, outcome, cleanup)
    finally:
        write_outputs(outcome.outputs(), s.output_file, log)
        write_summary(summary_markdown(outcome, log.warnings), s.summary_file)
    return 0


def _build(s: Settings, log: Log, o: Outcome, cleanup: ExitStack) -> Outcome:
    from regcache.builder import choose_builder
    from regcache.docker_cli import CommandFailed, DockerCLI

    cli = DockerCLI(log)
    plan = o.plan
    with log.group("Engine, builder and registry login"):
        containerd_store = cli.check_engine()
        builder = choose_builder(cli, log, requested=s.builder, buildkit_image=s.buildkit_image,
                                 containerd_store=containerd_store)
        log.info(f"builder: {builder.reason}")
        o.builder_reason = builder.reason
        if builder.created:
            cleanup.callback(_warn_on_failure, log, "remove the builder", cli.remove_builder, builder.name)
        if plan.write and not builder.can_export:
            plan = CachePlan(plan.read, False, plan.reason + "; but no builder here can export cache")
        if s.github_token and (plan.read or plan.write):
            try:
                cli.login(s.cache_registry, s.registry_username, s.github_token)
                cleanup.callback(_warn_on_failure, log, f"log out of {s.cache_registry}", cli.logout,
                                 s.cache_registry)
            except CommandFailed as e:
                # Logout anyway: a failed login may still have left an entry behind.
                cleanup.callback(_warn_on_failure, log, f"log out of {s.cache_registry}", cli.logout,
                                 s.cache_registry)
                log.warning(f"could not log in to {s.cache_registry} as {s.registry_username!r}: {e}. "
                            "Building without writing the cache; reading only works if it is public")
                if plan.write:
                    plan = CachePlan(plan.read, False, plan.reason + "; but the registry login failed")
        o.plan = plan

    tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="regcache-")))
    metadata_file, iidfile = tmp / "metadata.json", tmp / "iid"
    argv = build_argv(s, cache_ref=o.cache_ref, read=plan.read, write=plan.write, builder=builder.name,
                      metadata_file=str(metadata_file), iidfile=str(iidfile))
    with log.group("Build"):
        o = _run_build(cli, log, o, argv, os.path.relpath(s.file, s.workspace))
    if o.failed:
        return o
    o.imageid = iidfile.read_text().strip() if iidfile.exists() else ""
    if metadata_file.exists():
        metadata = json.loads(metadata_file.read_text() or "{}")
        o.digest = metadata.get("containerimage.digest", "")
    return o


def _run_build(cli, log: Log, o: Outcome, argv: list[str], dockerfile: str) -> Outcome:
    from regcache.progress import BuildProgress, RawJsonStream, dockerfile_error_location

    stream, progress, text_lines = RawJsonStream(), BuildProgress(), []

    def handle(events) -> None:
        for event in events:
            if isinstance(event, str):
                if event.strip():
                    text_lines.append(event)
                    log.info(event)
            else:
                for line in progress.update(event):
                    log.info(line)

    started = time.monotonic()
    code = cli.stream(argv, on_stderr=lambda chunk: handle(stream.feed(chunk)), on_stdout=log.info)
    handle(stream.close())
    o.seconds = time.monotonic() - started
    o.steps, o.cache_hit, o.slowest = progress.steps(), progress.cache_hit(), progress.slowest(5)
    for error in progress.cache_import_errors():
        if error.endswith(": not found"):
            log.warning(f"no cache at {o.cache_ref} yet: this is a cold build. A try or auto run with the same "
                        "cache key writes it")
        else:
            log.warning(f"the cache could not be read from {o.cache_ref}: {error}")
    for error in progress.cache_export_errors():
        log.warning(f"the cache could not be written to {o.cache_ref}: {error}")
    if not o.plan.read:
        o.cache_hit = "none"
    cached = sum(1 for step in o.steps if step.cached)
    log.info(f"{cached} of {len(o.steps)} steps cached (cache-hit: {o.cache_hit}) in {o.seconds:.1f}s")
    if code != 0:
        failed = progress.failed_step()
        location = dockerfile_error_location(text_lines)
        errors = [line for line in text_lines if line.startswith("ERROR")]
        message = (f"{failed.name}: {failed.error}" if failed and failed.error
                   else (errors[-1] if errors else (text_lines[-1] if text_lines else f"exit code {code}")))
        o.failed = message
        raise BuildError(message, file=dockerfile, line=location[1] if location else None)
    return o


def _warn_on_failure(log: Log, what: str, fn, *args) -> None:
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - cleanup must never fail the run
        log.warning(f"could not {what}: {e}")
