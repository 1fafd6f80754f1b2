# The portal's image: `make image` builds it.
#   docker build --build-arg PORTAL_BUILD_COMMIT="$(git rev-parse HEAD)" -t devsecops-portal .
# It runs as a fixed non-root UID with a read-only root filesystem: only /tmp must be writable
# (the Helm chart mounts emptyDirs there and on the metrics directory).

ARG PYTHON_IMAGE=python:3.12-slim

# --- build: a virtualenv with the pinned dependencies, compiled catalogues and bytecode ------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/venv
COPY requirements.txt ./
RUN /opt/venv/bin/pip install --no-cache-dir --requirement requirements.txt
COPY gunicorn.conf.py babel.cfg ./
COPY scripts/i18n.py scripts/
COPY portal/ portal/
# .po -> .mo, then bytecode: the root filesystem is read-only at run time.
RUN /opt/venv/bin/python scripts/i18n.py compile \
    && /opt/venv/bin/python -m compileall -q portal gunicorn.conf.py /opt/venv/lib

# --- runtime: the interpreter, the virtualenv and the application; no compiler, no pip cache --
FROM ${PYTHON_IMAGE} AS runtime
ARG PORTAL_BUILD_COMMIT=unknown
LABEL org.opencontainers.image.title="devsecops-portal" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${PORTAL_BUILD_COMMIT}"
RUN groupadd --system --gid 10001 portal \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin portal
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORTAL_BUILD_COMMIT=${PORTAL_BUILD_COMMIT} \
    PORTAL_CONFIG=/etc/portal/portal.yaml \
    PROMETHEUS_MULTIPROC_DIR=/tmp/portal-metrics
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /build/gunicorn.conf.py ./
COPY --from=build /build/portal ./portal
USER 10001:10001
# 8000: the portal (behind the Ingress); 9100: Prometheus metrics (never exposed by the Ingress).
EXPOSE 8000 9100
# Exec form: gunicorn is PID 1 and receives SIGTERM itself (graceful shutdown on rollouts).
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "portal.wsgi:app"]
