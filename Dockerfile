# The action's image: Debian's python3, docker CLI and buildx, and regcache's pinned dependencies in a venv.
FROM debian:trixie-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv docker-cli docker-buildx ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

COPY requirements.txt /opt/regcache/requirements.txt
# pip-ca: an optional CA bundle for a TLS-intercepting proxy in front of PyPI; absent on GitHub.
RUN --mount=type=secret,id=pip-ca,required=false \
    python3 -m venv /opt/regcache/venv \
 && if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/regcache/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      -r /opt/regcache/requirements.txt \
 && find /opt/regcache/venv -name __pycache__ -prune -exec rm -rf {} + \
 && rm -rf /opt/regcache/venv/lib/python3*/site-packages/pip

COPY src /opt/regcache/src
ENV PYTHONPATH=/opt/regcache/src PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["/opt/regcache/venv/bin/python", "-m", "regcache"]
