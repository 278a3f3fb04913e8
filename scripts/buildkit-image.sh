#!/usr/bin/env bash
# Make the BuildKit image that the tests give regcache as `buildkit-image` (moby/buildkit cannot be pulled
# here): buildkitd and buildctl compiled from the pinned Go module (images/buildkit/go.mod), Debian's runc,
# on the local debian:trixie-slim. Made once per machine and kept: the binaries under $STATE, the image as
# $IMAGE in every engine given on the command line (DOCKER_HOST values; default: the current engine).
# Idempotent; prints nothing but its log lines when everything is already there.
#   scripts/buildkit-image.sh [unix:///var/run/docker.sock unix:///run/regcache-docker28/docker.sock ...]
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's|^require github.com/moby/buildkit \(v[0-9.]*\)$|\1|p' images/buildkit/go.mod)
IMAGE=regcache/buildkit:$VERSION
STATE=/var/lib/regcache-setup/buildkit/$VERSION
BIN=$STATE/bin

log() { printf 'buildkit-image: %s\n' "$*" >&2; }
die() { printf 'buildkit-image: error: %s\n' "$*" >&2; exit 1; }

[ -n "$VERSION" ] || die "no github.com/moby/buildkit version in images/buildkit/go.mod"
command -v go >/dev/null || die "go not found: the BuildKit daemon is built from its Go module"

if [ ! -x "$BIN/buildkitd" ] || [ ! -x "$BIN/buildctl" ]; then
  log "building buildkitd and buildctl $VERSION from the Go module (about 2 minutes on 2 cores)"
  mkdir -p "$BIN"
  # A download from the module proxy has no timeout of its own: fetch the modules first, bounded, at most
  # three times.
  for attempt in 1 2 3; do
    (cd images/buildkit && GOFLAGS=-mod=mod timeout 300 go list -deps github.com/moby/buildkit/cmd/buildkitd \
       github.com/moby/buildkit/cmd/buildctl >/dev/null) && break
    [ "$attempt" = 3 ] && die "could not download the Go modules of BuildKit $VERSION"
    log "module download stalled or failed (attempt $attempt): again"
  done
  # The module's own go.mod has exclude directives, so `go install …@version` refuses it: a small module of
  # ours requires it (images/buildkit) with a committed go.sum.
  (cd images/buildkit && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
     -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \
     -o "$BIN/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl)
fi
"$BIN/buildkitd" --version | grep -q " $VERSION" || die "$BIN/buildkitd does not report $VERSION"

hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=("${DOCKER_HOST:-unix:///var/run/docker.sock}")

has_image() { DOCKER_HOST=$1 docker image inspect "$IMAGE" >/dev/null 2>&1; }

source_host=
for host in "${hosts[@]}"; do
  if has_image "$host"; then source_host=$host; break; fi
done
if [ -z "$source_host" ]; then
  source_host=${hosts[0]}
  DOCKER_HOST=$source_host docker image inspect debian:trixie-slim >/dev/null 2>&1 \
    || die "debian:trixie-slim is missing on $source_host: run scripts/base-image.sh first"
  log "building $IMAGE on $source_host"
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  cp images/buildkit/Dockerfile "$context/"
  mkdir "$context/bin"
  cp "$BIN/buildkitd" "$BIN/buildctl" "$context/bin/"
  DOCKER_HOST=$source_host docker build -q --build-arg "BUILDKIT_VERSION=$VERSION" -t "$IMAGE" "$context" >/dev/null \
    || die "docker build of $IMAGE failed"
fi
for host in "${hosts[@]}"; do
  if ! has_image "$host"; then
    log "copying $IMAGE from $source_host to $host"
    DOCKER_HOST=$source_host docker save "$IMAGE" | DOCKER_HOST=$host docker load -q >/dev/null \
      || die "could not load $IMAGE into $host"
  fi
done
log "$IMAGE ready on ${hosts[*]}"
