# The action's image: Debian's python3 and docker CLI, buildx built from source at a pinned version, and
# regcache's pinned dependencies in a venv.
# Four stages: buildx is compiled in the first (Debian's Go, the Go module proxy), the venv is made in the
# second (pip, PyPI, binutils), the third picks the files a run needs, and the last (from scratch) is only those.

# buildx v0.30.1, as on GitHub's hosted runners (Debian trixie packages 0.13.1). images/buildx/ is a module
# that requires github.com/docker/buildx at that version (go.sum pins every dependency); `go install …@v0.30.1`
# refuses because buildx's go.mod has an exclude directive. Debian trixie's Go is 1.24.4; buildx needs
# >= 1.24.3 (GOTOOLCHAIN=local: fail rather than download another toolchain). The ldflags are those of
# buildx's hack/build, so `docker buildx version` prints "github.com/docker/buildx v0.30.1 <revision>".
# pip-ca (below) also serves Go, through SSL_CERT_FILE, for a TLS-intercepting proxy in front of the module
# proxy. The cache mounts keep downloaded modules and compiled packages between builds on one builder. A
# download from the module proxy has no timeout of its own (one was seen hanging for minutes): the modules
# are fetched first, under a time limit, three times at most.
FROM debian:trixie-slim AS buildx
ARG BUILDX_VERSION=v0.30.1
ARG BUILDX_REVISION=9e66234aa13328a5e75b75aa5574e1ca6d6d9c01
RUN apt-get update \
 && apt-get install -y --no-install-recommends golang-go ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
ENV GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build
WORKDIR /build
COPY images/buildx/go.mod images/buildx/go.sum ./
RUN --mount=type=cache,id=regcache-gomodcache,target=/root/go/pkg/mod \
    --mount=type=cache,id=regcache-gocache,target=/root/.cache/go-build \
    --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export SSL_CERT_FILE=/run/secrets/pip-ca; fi \
 && test "$(go list -m -f '{{.Version}}' github.com/docker/buildx)" = "$BUILDX_VERSION" \
 && for attempt in 1 2 3; do \
      timeout 300 go list -deps github.com/docker/buildx/cmd/buildx >/dev/null && break; \
      [ "$attempt" = 3 ] && exit 1; echo "module download stalled or failed (attempt $attempt): again"; \
    done \
 && CGO_ENABLED=0 go build -trimpath -o /out/docker-buildx \
      -ldflags "-s -w -X github.com/docker/buildx/version.Version=$BUILDX_VERSION \
        -X github.com/docker/buildx/version.Revision=$BUILDX_REVISION \
        -X github.com/docker/buildx/version.Package=github.com/docker/buildx" \
      github.com/docker/buildx/cmd/buildx \
 && /out/docker-buildx version

FROM debian:trixie-slim AS venv
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates binutils \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY requirements-image.txt /opt/regcache/requirements.txt
# pip-ca: an optional CA bundle for a TLS-intercepting proxy in front of PyPI; absent on GitHub.
# --no-deps: requirements-image.txt is the whole set, without what only modules regcache never imports need
# (scripts/lock.sh). Then: no pip in the venv, extension modules without debug symbols, and bytecode
# compiled once here (unchecked-hash: the image never changes) so that no run compiles at start-up.
RUN --mount=type=secret,id=pip-ca,required=false \
    python3 -m venv /opt/regcache/venv \
 && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/regcache/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile --no-deps \
      -r /opt/regcache/requirements.txt \
 && cd /opt/regcache/venv \
 && rm -rf bin/pip* bin/activate* bin/Activate* lib/python3*/site-packages/pip \
      lib/python3*/site-packages/pip-*.dist-info \
 && find lib -name '*.so' -exec strip --strip-unneeded {} + \
 && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash lib

# The last stage's files are assembled here (images/action/rootfs.py): the interpreter and the part of the
# standard library a run can import, the venv, src/, docker and docker-buildx, and the shared libraries they
# load; nothing else (no shell, no package manager, no apt or dpkg state). Pure-Python code goes into zip
# archives, compiled: a pull pays per file as well as per byte.
FROM debian:trixie-slim AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 docker-cli \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY --from=venv /opt/regcache/venv /opt/regcache/venv
COPY --from=buildx /out/docker-buildx /usr/libexec/docker/cli-plugins/docker-buildx
COPY src /opt/regcache/src
COPY images/action/rootfs.py /build/rootfs.py
# The post step's entrypoint (action.yml post-entrypoint takes an executable, not arguments).
RUN printf '%s\n' '#!/opt/regcache/venv/bin/python' 'from regcache.post import main' 'raise SystemExit(main())' \
      > /opt/regcache/post && chmod 755 /opt/regcache/post \
 && python3 /build/rootfs.py /rootfs

# No shell: everything regcache runs, it runs without one. No ca-certificates: registries are reached by the
# engine and BuildKit (the daemon's own trust), and by requests with certifi's bundle.
FROM scratch
COPY --from=rootfs /rootfs /
ENV PATH=/usr/local/bin:/usr/bin PYTHONPATH=/opt/regcache/regcache.zip PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/regcache/venv/bin/python", "-m", "regcache"]
