#!/usr/bin/env bash
# Install and start a Docker engine whose default builder can export BuildKit cache, plus the tools the
# tests and the demo need (a real registry, htpasswd, a static busybox for offline base images, shellcheck
# for scripts/lint).
# Idempotent: safe to run on every CI run and every new machine. Needs root on Debian 12 or 13.
set -euo pipefail

log() { printf 'setup-engine: %s\n' "$*" >&2; }
die() { printf 'setup-engine: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs Debian packages and starts dockerd)"
[ -f /etc/debian_version ] || die "only Debian 12/13 is supported; install docker >= 25 with buildx, \
docker-registry (CNCF distribution), htpasswd, busybox-static and shellcheck yourself, then start dockerd \
with the containerd image store"

STATE=/var/lib/regcache-setup
mkdir -p "$STATE"
export DEBIAN_FRONTEND=noninteractive

apt_updated=
apt_update_once() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
}

need_pkgs=()
command -v docker-registry >/dev/null || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null || need_pkgs+=(apache2-utils)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx wget && file -L /bin/busybox 2>/dev/null | grep -q static \
  || need_pkgs+=(busybox-static)
command -v debootstrap >/dev/null || need_pkgs+=(debootstrap)
command -v file >/dev/null || need_pkgs+=(file)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt_update_once
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Any Docker >= 25 with buildx will do, whichever package installed it: Debian's docker.io, or Docker's own
# docker-ce as on GitHub's ubuntu-latest runners (there, switch dockerd to the containerd image store before
# this script: systemd owns dockerd; see .github/workflows/ci.yml).
engine_version() {
  dockerd --version 2>/dev/null | sed -n 's/^Docker version \([0-9][0-9.]*\).*/\1/p'
}
engine_ok() {
  command -v dockerd >/dev/null && [ -x /usr/libexec/docker/cli-plugins/docker-buildx ] \
    && dpkg --compare-versions "$(engine_version || true)" ge 25 2>/dev/null
}

if ! engine_ok; then
  # shellcheck source=/dev/null  # the machine's own file, not this repository's
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = trixie ] || [ "$codename" = forky ]; then
    log "installing docker.io, docker-buildx, containerd from $codename"
    apt_update_once
    apt-get install -y -qq docker.io docker-cli docker-buildx containerd >/dev/null
  else
    # bookworm's docker.io 20.10 cannot export cache and has no buildx: take trixie's packages through a
    # private apt configuration so the system's sources stay untouched (they need only libc6 >= 2.34).
    log "fetching docker.io, docker-cli, docker-buildx, containerd from trixie (private apt config)"
    apt_dir=$STATE/apt
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} trixie main" \
      > "$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives")
    apt-get "${apt_opts[@]}" update -qq
    (cd "$apt_dir/archives" && rm -f ./*.deb \
      && apt-get "${apt_opts[@]}" download docker.io docker-cli docker-buildx containerd >/dev/null)
    apt_update_once
    (cd "$apt_dir/archives" && apt-get install -y -qq ./containerd_*.deb ./docker.io_*.deb ./docker-cli_*.deb \
      ./docker-buildx_*.deb >/dev/null)
  fi
  engine_ok || die "docker.io >= 25 with docker-buildx did not install"
fi

# Prefer the engine's own client (matching buildx plugin dirs) over any other docker on PATH.
DOCKER=/usr/bin/docker
DAEMON_JSON=/etc/docker/daemon.json

engine_has_containerd_store() {
  "$DOCKER" info --format '{{range .DriverStatus}}{{index . 1}} {{end}}' 2>/dev/null \
    | grep -q io.containerd.snapshotter.v1
}

# Set features.containerd-snapshotter=true in the daemon.json at $1, keeping every other setting in it (a
# missing file counts as {}). Prints "changed" when it wrote the file, "unchanged" when the key was already
# true; fails, leaving the file as it was, when the file is not a JSON object.
merge_containerd_snapshotter() {
  python3 -c '
import json, os, sys, tempfile
path = sys.argv[1]
try:
    with open(path, encoding="utf-8") as f:
        text = f.read()
except FileNotFoundError:
    text = ""
try:
    config = json.loads(text) if text.strip() else {}
except ValueError as e:
    sys.exit(f"{path} is not valid JSON ({e}): fix it, or add \"features\": {{\"containerd-snapshotter\": true}} yourself")
features = config.get("features", {}) if isinstance(config, dict) else None
if not isinstance(features, dict):
    sys.exit(f"{path}: expected a JSON object with an object \"features\"; add \"containerd-snapshotter\": true yourself")
if features.get("containerd-snapshotter") is True:
    print("unchanged")
    sys.exit(0)
features["containerd-snapshotter"] = True
config["features"] = features
directory = os.path.dirname(os.path.abspath(path))
os.makedirs(directory, exist_ok=True)
fd, tmp = tempfile.mkstemp(dir=directory, prefix=".daemon.json.")
try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    try:
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    except FileNotFoundError:
        os.chmod(tmp, 0o644)
    os.replace(tmp, path)
except BaseException:
    os.unlink(tmp)
    raise
print("changed")
' "$1"
}

# The docker driver exports cache only with the containerd image store. An engine that already runs with it
# is left alone (daemon.json untouched, no restart); otherwise the one key is merged into daemon.json, and a
# running dockerd restarted only when that changed the file.
if ! engine_has_containerd_store; then
  merged=$(merge_containerd_snapshotter "$DAEMON_JSON") || die "cannot set features.containerd-snapshotter in $DAEMON_JSON"
  if [ "$merged" = changed ]; then
    log "set features.containerd-snapshotter=true in $DAEMON_JSON"
    if pgrep -x dockerd >/dev/null; then
      log "restarting dockerd for the containerd image store"
      pkill -x dockerd; for _ in $(seq 50); do pgrep -x dockerd >/dev/null || break; sleep 0.2; done
    fi
  fi
fi

if ! "$DOCKER" info >/dev/null 2>&1; then
  log "starting dockerd"
  rm -f /var/run/docker.pid
  nohup /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 150); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$DOCKER" info >/dev/null 2>&1 || die "dockerd did not start; see /var/log/dockerd.log"
fi
engine_has_containerd_store \
  || die "dockerd is running without the containerd image store; stop it and run this script again"
"$DOCKER" buildx version >/dev/null || die "docker buildx is not available"
log "engine ready: $("$DOCKER" version --format 'docker {{.Server.Version}}'), $("$DOCKER" buildx version)"
