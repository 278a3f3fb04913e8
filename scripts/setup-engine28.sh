#!/usr/bin/env bash
# Install and start a second Docker engine beside the one scripts/setup-engine.sh runs, like GitHub's hosted
# runners: Debian forky's Docker 28.5, buildx 0.29 and containerd 2.1 with the CLASSIC image store (overlay2),
# where the docker driver refuses registry cache export. Engine 1 (/var/run/docker.sock) is left alone.
#
# The forky packages are unpacked (dpkg -x) into /opt/regcache/docker28, not installed: the system keeps
# trixie's Docker 26. Use engine 2 with:  . /var/lib/regcache-setup/docker28/env
# Idempotent: a re-run with everything up only checks; a dead engine is restarted. Needs root on Debian 12/13.
set -euo pipefail

ROOT=/opt/regcache/docker28                  # unpacked forky packages
STATE=/var/lib/regcache-setup/docker28       # private apt state, daemon.json, DOCKER_CONFIG, env file
DATA=/var/lib/regcache-docker28              # --data-root
RUN=/run/regcache-docker28                   # socket, pidfile, --exec-root
SOCK=$RUN/docker.sock
PIDFILE=$RUN/docker.pid
LOG=/var/log/regcache-docker28.log
SUITE=forky
PKGS=(docker.io docker-cli docker-buildx containerd)   # not runc: forky's needs glibc 2.38, the system's works
WANT_DOCKER=28.5 WANT_BUILDX=0.29 WANT_CONTAINERD=2.1
# A bridge of its own in the host's network namespace. `--bridge none` would make dockerd delete the host's
# docker0 (engine 1's), and a network namespace of its own would hide the host's 127.0.0.1 from
# `--network host` containers, where the tests' registries listen.
BRIDGE=regcache0
BRIDGE_ADDR=10.213.0.1/24
NET=10.213.0.0/16                            # the rules below cover the bridge
# No --default-address-pool: dockerd 28 started with one deletes the host's docker0 whenever it finds a default
# network stored by its previous run (daemon_unix.go, "Clear stale bridge network"), i.e. on every restart.
# Networks created on engine 2 take the default pools, skipping subnets the host already routes.

log() { printf 'setup-engine28: %s\n' "$*" >&2; }
die() { printf 'setup-engine28: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it unpacks packages into /opt and starts dockerd)"
[ -f /etc/debian_version ] || die "only Debian 12/13 is supported"
for tool in apt-get dpkg-deb ip iptables setsid; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
command -v runc >/dev/null || die "runc not found; run scripts/setup-engine.sh first (it installs runc)"

docker2() { "$ROOT/usr/bin/docker" -H "unix://$SOCK" "$@"; }

# "Docker version 28.5.2+dfsg4, build …", "github.com/docker/buildx 0.29.1+ds1 …", "containerd … 2.1.9+unknown"
third_word() { "$@" 2>/dev/null | awk '{ sub(/,$/, "", $3); print $3; exit }'; }
versions() {
  printf 'dockerd %s, docker %s, buildx %s, containerd %s' \
    "$(third_word "$ROOT/usr/sbin/dockerd" --version)" "$(third_word "$ROOT/usr/bin/docker" --version)" \
    "$("$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" version 2>/dev/null | awk '{ print $2; exit }')" \
    "$(third_word "$ROOT/usr/bin/containerd" --version)"
}
unpacked_ok() {  # VERSIONS (from versions)
  case "$1" in
    "dockerd $WANT_DOCKER."*", docker $WANT_DOCKER."*", buildx $WANT_BUILDX."*", containerd $WANT_CONTAINERD."*) ;;
    *) return 1 ;;
  esac
}

engine_pid() {  # engine 2's dockerd, if it is alive (a killed one can linger as a zombie)
  local pid stat
  pid=$(cat "$PIDFILE" 2>/dev/null) && stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$stat" == *"(dockerd) "[!Z]* ]] && echo "$pid"
}
stop_engine() {
  local pid
  pid=$(engine_pid) || return 0
  log "stopping engine 2 (dockerd pid $pid)"
  kill "$pid"
  for _ in $(seq 100); do engine_pid >/dev/null || return 0; sleep 0.2; done
  die "dockerd pid $pid did not stop"
}

HAVE=$(versions)
if ! unpacked_ok "$HAVE"; then
  # A private apt configuration, so the system's sources stay as they are; no shared pkgcache is written.
  apt_dir=$STATE/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  # apt downloads as _apt when it can write there; otherwise it warns and downloads as root.
  if id _apt >/dev/null 2>&1; then chown _apt "$apt_dir/lists/partial" "$apt_dir/archives" "$apt_dir/archives/partial"; fi
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} $SUITE main" \
    > "$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
            -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
  log "fetching ${PKGS[*]} from $SUITE (private apt config in $apt_dir)"
  apt-get "${apt_opts[@]}" update -qq
  (cd "$apt_dir/archives" && rm -f ./*.deb && apt-get "${apt_opts[@]}" download "${PKGS[@]}" >/dev/null)
  # crane (go-containerregistry) is a second registry implementation; nice to have, not needed.
  (cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download crane >/dev/null 2>&1) \
    || log "no crane package in $SUITE; going on without it"

  stop_engine   # it may be running from an older tree
  rm -rf "$ROOT.new"
  mkdir -p "$ROOT.new"
  for deb in "$apt_dir"/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT.new"; done
  # docker-init links to tini-static, which is not unpacked: use the system's (trixie's docker.io pulls tini).
  [ -x /usr/bin/tini-static ] && ln -sfn /usr/bin/tini-static "$ROOT.new/usr/bin/docker-init"
  rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT"
  rm -f "$apt_dir"/archives/*.deb
  HAVE=$(versions)
  unpacked_ok "$HAVE" || die "$SUITE no longer has Docker $WANT_DOCKER / buildx $WANT_BUILDX / containerd \
$WANT_CONTAINERD (unpacked: $HAVE); point $apt_dir/sources.list at snapshot.debian.org or update WANT_* here"
  log "unpacked into $ROOT: $HAVE"
fi

# Client side: a DOCKER_CONFIG whose buildx plugin is forky's (the CLI looks there before the system's
# /usr/libexec/docker/cli-plugins, where trixie's buildx 0.13 is), and an env file to source.
mkdir -p "$STATE/config/cli-plugins"
ln -sfn "$ROOT/usr/libexec/docker/cli-plugins/docker-buildx" "$STATE/config/cli-plugins/docker-buildx"
env_text="export PATH=$ROOT/usr/bin:\"\$PATH\"
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$STATE/config"
[ "$(cat "$STATE/env" 2>/dev/null)" = "$env_text" ] || echo "$env_text" > "$STATE/env"
# Its own (empty) daemon config: /etc/docker/daemon.json turns on engine 1's containerd image store.
[ "$(cat "$STATE/daemon.json" 2>/dev/null)" = '{}' ] || echo '{}' > "$STATE/daemon.json"

# The bridge: dockerd takes its network from the address it finds on it.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  other=$(ip -4 -o route show match "${BRIDGE_ADDR%/*}" | grep -v -e '^default ' -e " dev $BRIDGE " || true)
  [ -z "$other" ] || die "$BRIDGE_ADDR is already routed on this machine ($other); change BRIDGE_ADDR/NET here"
  log "creating bridge $BRIDGE with $BRIDGE_ADDR"
  ip link add "$BRIDGE" type bridge
fi
ip -4 addr show dev "$BRIDGE" | grep -q " ${BRIDGE_ADDR} " || ip addr add "$BRIDGE_ADDR" dev "$BRIDGE"
ip link set "$BRIDGE" up

# dockerd 28 runs with --iptables=false: with iptables on, it rewrites the FORWARD chain into the 28.x layout
# (DOCKER-FORWARD) under engine 1's feet. Instead, a masquerade and two forward rules of our own give engine 2's
# bridge containers the same way out as engine 1's (FORWARD's policy is DROP, and bridged traffic goes through
# iptables here: br_netfilter). -C first, so a re-run adds nothing.
ensure_rule() {  # TABLE CHAIN RULE...
  iptables -w -t "$1" -C "$2" "${@:3}" 2>/dev/null && return 0
  if [ "$2" = FORWARD ]; then iptables -w -t "$1" -I "$2" 1 "${@:3}"; else iptables -w -t "$1" -A "$2" "${@:3}"; fi
}
ensure_rule nat POSTROUTING -s "$NET" ! -d "$NET" -j MASQUERADE -m comment --comment regcache-docker28
ensure_rule filter FORWARD -s "$NET" -j ACCEPT -m comment --comment regcache-docker28
ensure_rule filter FORWARD -d "$NET" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT \
  -m comment --comment regcache-docker28

had_docker0=$(ip -o link show docker0 2>/dev/null | cut -d: -f1 || true)
if ! docker2 info >/dev/null 2>&1; then
  if ! engine_pid >/dev/null; then
    log "starting dockerd $WANT_DOCKER (log: $LOG)"
    mkdir -p "$RUN" "$DATA"
    rm -f "$PIDFILE"
    # forky's bin dirs first: dockerd starts their containerd 2.1 (and its shim) and docker-proxy; runc is the
    # system's. setsid: it must outlive this script and its session.
    PATH="$ROOT/usr/bin:$ROOT/usr/sbin:$PATH" setsid nohup "$ROOT/usr/sbin/dockerd" \
      --config-file "$STATE/daemon.json" --data-root "$DATA" --exec-root "$RUN/exec" \
      -H "unix://$SOCK" --pidfile "$PIDFILE" \
      --bridge "$BRIDGE" --iptables=false --ip6tables=false \
      --cgroup-parent /regcache-docker28 \
      </dev/null >>"$LOG" 2>&1 &
  fi
  for _ in $(seq 150); do docker2 info >/dev/null 2>&1 && break; sleep 0.2; done
  docker2 info >/dev/null 2>&1 || { tail -n 20 "$LOG" >&2; die "dockerd $WANT_DOCKER did not start; see $LOG"; }
fi

# Engine 1's bridge must be the same interface as before: dockerd deletes docker0 with `--bridge none` or (on a
# restart) with --default-address-pool, and engine 1's containers cannot start without it.
if [ -n "$had_docker0" ] && [ "$(ip -o link show docker0 2>/dev/null | cut -d: -f1 || true)" != "$had_docker0" ]; then
  die "starting engine 2 removed or replaced engine 1's docker0; restart engine 1's dockerd"
fi

info=$(docker2 info --format '{{.ServerVersion}}|{{.Driver}}|{{range .DriverStatus}}{{index . 1}} {{end}}')
server=${info%%|*}; driver=${info#*|}; driver=${driver%%|*}
case "$server" in "$WANT_DOCKER".*) ;; *) die "engine 2 at $SOCK runs Docker $server, not $WANT_DOCKER.x" ;; esac
if [ "$driver" != overlay2 ] || [[ "$info" == *io.containerd.snapshotter* ]]; then
  die "engine 2 must use the classic image store (overlay2), but docker info says: $info"
fi
log "engine 2 ready at $SOCK (overlay2): $HAVE"
