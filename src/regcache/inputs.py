"""The action's inputs: one table that action.yml, the command line and the settings parser all follow.

Each input has the same default here as in action.yml, so a local run (no INPUT_* variables) behaves like
a workflow run that left the input unset. A default of None means "computed from the environment".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Input:
    name: str
    default: str | None
    help: str
    secret: bool = False


INPUTS: tuple[Input, ...] = (
    Input("context", ".", "Build context directory."),
    Input("file", None, "Path to the Dockerfile [<context>/Dockerfile]."),
    Input("target", "", "Build stage to build."),
    Input("build-args", "", "Build arguments, one KEY=VALUE per line."),
    Input("platforms", "", "Target platforms, comma or newline separated (e.g. linux/amd64,linux/arm64)."),
    Input("labels", "", "Image labels, one KEY=VALUE per line."),
    Input("tags", "", "Image tags, comma or newline separated."),
    Input("load", "true", "Load the built image into the engine's image store (true|false)."),
    Input("push", "false", "Push the built image to its registry (true|false)."),
    Input("builder", "", "buildx builder to use [the current one if it can export cache, else a new one]."),
    Input("cache-image", None, "Repository that holds the cache [ghcr.io/<owner>/<repo>-cache, lowercased]."),
    Input("cache-key", "", "Cache tag [computed from the Dockerfile, the files it copies and the build inputs]."),
    Input("cache-version", "1", "A salt for the cache key: change it to start every cache afresh."),
    Input("cache-from", "", "Extra cache refs to read after the run's own (image:tag, one per line)."),
    Input("cache-mode", "max", "max: keep every intermediate layer; min: only the final image's."),
    Input("cache-compression", "zstd", "Cache layer compression: zstd|gzip|estargz|uncompressed."),
    Input("registry-username", None, "User for the cache registry [the workflow's actor]."),
    Input("github-token", "", "Token (password) for the cache registry; without one the cache is read-only.",
          secret=True),
    Input("try-branches", "try\ntry-perf\nautomation/bors/try", "Branches whose pushes are try builds."),
    Input("auto-branches", "auto\nautomation/bors/auto", "Branches whose pushes are auto builds."),
    Input("pr-cache", "read", "Cache for pull requests: read|off (they never write)."),
    Input("other-cache", "read", "Cache for other builds: read|read-write|off."),
    Input("buildkit-image", "moby/buildkit:buildx-stable-1",
          "BuildKit image for a docker-container builder, when one must be created."),
    Input("fail-on-cache-error", "false", "Fail the build when the cache cannot be written (true|false)."),
    Input("cache-timeout", "1200", "Seconds the cache export may take once the image is built; then it is "
          "abandoned with a warning (BuildKit itself never gives up on a registry that hangs)."),
    Input("image-repository", "", "Repository for the image built for each cache key (<repo>:<cache-key>)."),
    Input("reuse-image", "", "Pull <image-repository>:<cache-key> instead of building when it exists "
          "[true when image-repository is set]."),
)

BY_NAME = {i.name: i for i in INPUTS}

# The prune action's inputs (prune/action.yml, `python -m regcache prune`).
PRUNE_INPUTS: tuple[Input, ...] = (
    Input("cache-image", None, "Repository that holds the cache [ghcr.io/<owner>/<repo>-cache, lowercased]."),
    Input("keep-days", "14", "Keep every cache written fewer days ago than this."),
    Input("keep-per-dockerfile", "3", "Keep this many newest cache keys per Dockerfile and platform."),
    Input("image-repository", "", "Repository of the images built per cache key: pruned by the same rule."),
    Input("dry-run", "false", "Print what would be deleted and delete nothing (true|false)."),
    Input("packages-api", "auto", "How to delete: github (GitHub's Packages REST API), oci (the registry's "
          "own API), or auto: github for ghcr.io, oci elsewhere."),
    Input("registry-username", None, "User for the registry [the workflow's actor]."),
    Input("github-token", "", "Token for the registry, and for GitHub's Packages API on ghcr.io.", secret=True),
)

PRUNE_BY_NAME = {i.name: i for i in PRUNE_INPUTS}


def env_name(name: str) -> str:
    """The variable the runner sets for an input: hyphens are kept, only spaces become underscores."""
    return "INPUT_" + name.replace(" ", "_").upper()
