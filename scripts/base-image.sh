#!/usr/bin/env bash
# Provide the local image debian:trixie-slim without Docker Hub: if the engine already has it, do nothing;
# otherwise debootstrap a minimal trixie from the machine's Debian mirror and `docker import` it.
# Idempotent. Needs root, debootstrap and a running Docker engine (scripts/setup-engine.sh).
# Further engines (DOCKER_HOST values) given as arguments get a copy (docker save | docker load).
#   scripts/base-image.sh [unix:///run/regcache-docker28/docker.sock ...]
set -euo pipefail

IMAGE=debian:trixie-slim
SUITE=trixie
SOURCES=/etc/apt/sources.list.d/debian.sources
DEFAULT_MIRROR=http://deb.debian.org/debian

log() { printf 'base-image: %s\n' "$*" >&2; }
die() { printf 'base-image: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs it)"
command -v docker >/dev/null || die "docker not found; run scripts/setup-engine.sh first"
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed); run scripts/setup-engine.sh"

copy_to_others() {
  local host
  for host in "$@"; do
    if ! DOCKER_HOST=$host docker image inspect "$IMAGE" >/dev/null 2>&1; then
      log "copying $IMAGE to $host"
      docker save "$IMAGE" | DOCKER_HOST=$host docker load -q >/dev/null || die "could not load $IMAGE into $host"
    fi
  done
}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  copy_to_others "$@"
  log "$IMAGE already present"
  exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap not found; apt-get install debootstrap (or run scripts/setup-engine.sh)"
[ -e "/usr/share/debootstrap/scripts/$SUITE" ] \
  || die "this debootstrap does not know '$SUITE'; upgrade the debootstrap package"

mirror=
if [ -r "$SOURCES" ]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' "$SOURCES")
fi
mirror=${mirror:-$DEFAULT_MIRROR}

workdir=$(mktemp -d /var/tmp/base-image.XXXXXX)
rootfs=$workdir/rootfs

cleanup() {
  local rc=$? m
  # debootstrap unmounts what it mounted, but make sure nothing is left before deleting anything.
  if [ -d "$workdir" ]; then
    while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$workdir/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$workdir" || log "warning: could not remove $workdir"
  fi
  [ "$rc" = 0 ] || log "failed (exit $rc)"
}
trap cleanup EXIT

log "debootstrap --variant=minbase $SUITE from $mirror into $rootfs (about a minute)"
if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1; then
  tail -n 30 "$workdir/debootstrap.log" >&2 || true
  [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
  die "debootstrap of $SUITE from $mirror failed (log above)"
fi

# Slim it like the official image: no package lists or apt caches.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb

log "importing $rootfs as $IMAGE"
tar --numeric-owner --one-file-system -C "$rootfs" -c . \
  | docker import \
      --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$IMAGE" >/dev/null \
  || die "docker import of $IMAGE failed"

version=$(docker run --rm "$IMAGE" cat /etc/debian_version) || die "the imported $IMAGE does not run"
copy_to_others "$@"
log "$IMAGE ready (Debian $version)"
