# syntax=docker/dockerfile:1
# The image helm/rcm deploys (values.yaml `image`; every pod runs `rcm <args>` as uid 10001 on a read-only
# root filesystem). It holds only the wheel and its runtime dependencies: no dev tools, no embedded PostgreSQL
# (RCM_DATABASE_URL / RCM_APP_DATABASE_URL come from the chart's Secret). tests/test_wheel.py runs the same
# steps on every `make test`: build the wheel, install it into a clean venv, migrate, serve, /readyz.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
WORKDIR /src
# What the wheel is built from (see .dockerignore): the package plus the root files it carries as package data.
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
# The connectors (top-level packages of the same wheel, found through the rcm.connectors entry points).
COPY integrations ./integrations
COPY migrations ./migrations
COPY tenants ./tenants
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/rcm/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RCM_ENV=prod \
    RCM_DATA_DIR=/var/lib/rcm \
    RCM_PORT=8000
RUN --mount=type=bind,from=builder,source=/dist,target=/dist \
    python -m venv /opt/rcm \
    && /opt/rcm/bin/python -m pip install --no-cache-dir /dist/rcm-*.whl \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/rcm \
       --shell /usr/sbin/nologin rcm \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/rcm
USER 10001:10001
WORKDIR /var/lib/rcm
EXPOSE 8000
# Liveness only (the process answers); readiness (/readyz: database reachable, schema at head) is the chart's
# probe. Kubernetes ignores HEALTHCHECK; `docker run IMAGE rcm worker` wants --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('RCM_PORT', '8000')}/healthz\", timeout=4)"]
CMD ["rcm", "serve", "--host", "0.0.0.0"]
