# The action's image: Debian's python3, docker CLI and buildx, and regcache's pinned dependencies in a venv.
# Two stages: the venv is made in the first (pip, PyPI, binutils); the second has only what runs.

FROM debian:trixie-slim AS venv
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates binutils \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
COPY requirements.txt /opt/regcache/requirements.txt
# pip-ca: an optional CA bundle for a TLS-intercepting proxy in front of PyPI; absent on GitHub.
# Then: no pip in the venv, extension modules without debug symbols, and bytecode compiled once here
# (unchecked-hash: the image never changes) so that no run compiles at start-up.
RUN --mount=type=secret,id=pip-ca,required=false \
    python3 -m venv /opt/regcache/venv \
 && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/regcache/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-compile \
      -r /opt/regcache/requirements.txt \
 && cd /opt/regcache/venv \
 && rm -rf bin/pip* bin/activate* lib/python3*/site-packages/pip lib/python3*/site-packages/pip-*.dist-info \
 && find lib -name '*.so' -exec strip --strip-unneeded {} + \
 && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash lib

FROM debian:trixie-slim
# No documentation, manual pages or translations from the packages below (the official slim image already
# excludes them; this keeps a base image that does not from growing). No ca-certificates: registries are
# reached by the engine and BuildKit (the daemon's own trust), and by requests with certifi's bundle.
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
      'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/locale/*' \
      > /etc/dpkg/dpkg.cfg.d/regcache-slim \
 && apt-get update \
 && apt-get install -y --no-install-recommends python3 docker-cli docker-buildx \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/* \
      /usr/lib/python3*/test /usr/lib/python3*/idlelib /usr/lib/python3*/ensurepip /usr/lib/python3*/pydoc_data
COPY --from=venv /opt/regcache/venv /opt/regcache/venv
COPY src /opt/regcache/src
RUN python3 -m compileall -q --invalidation-mode unchecked-hash /opt/regcache/src
ENV PYTHONPATH=/opt/regcache/src PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/regcache/venv/bin/python", "-m", "regcache"]
