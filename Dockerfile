# The portal's image: `make image` builds it.
#   docker build --build-arg PORTAL_BUILD_COMMIT="$(git rev-parse HEAD)" -t devsecops-portal .
# It runs as UID:GID 65532 with a read-only root filesystem: only /tmp must be writable (the Helm
# chart mounts emptyDirs there and on the metrics directory, and sets runAsUser/fsGroup 65532).
# 65532 is the nonroot user of Docker Hardened Images, whose runtime images have no shell
# (https://docs.docker.com/dhi/migration/checklist/): the runtime stage runs nothing (no RUN, no
# useradd) and python:3.12-slim, with no passwd entry for 65532, needs none (numeric USER,
# HOME=/tmp, nothing looks the user's name up).

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

# --- runtime: the interpreter, the virtualenv and the application; no RUN, no shell needed ----
FROM ${PYTHON_IMAGE} AS runtime
ARG PORTAL_BUILD_COMMIT=unknown
LABEL org.opencontainers.image.title="devsecops-portal" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${PORTAL_BUILD_COMMIT}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PORTAL_BUILD_COMMIT=${PORTAL_BUILD_COMMIT} \
    PORTAL_CONFIG=/etc/portal/portal.yaml \
    PROMETHEUS_MULTIPROC_DIR=/tmp/portal-metrics
WORKDIR /app
# Owned by root, readable by everyone: the portal's user cannot change its own code.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /build/gunicorn.conf.py ./
COPY --from=build /build/portal ./portal
USER 65532:65532
# 8000: the portal (behind the Ingress); 9100: Prometheus metrics (never exposed by the Ingress).
EXPOSE 8000 9100
# Exec form: no shell involved, and gunicorn is PID 1 and receives SIGTERM itself (graceful
# shutdown on rollouts).
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "portal.wsgi:app"]
