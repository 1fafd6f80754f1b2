# The portal's image, on either of two bases chosen by build arguments alone:
#   make image      the official python:3.12-slim for both stages (the default: anyone can build it)
#   make image-dhi  Docker Hardened Images (needs `docker login dhi.io`, a free Docker account):
#     docker build --build-arg PYTHON_BUILD_IMAGE=dhi.io/python:3.12-debian13-dev \
#                  --build-arg PYTHON_IMAGE=dhi.io/python:3.12-debian13 \
#                  --build-arg PORTAL_BUILD_COMMIT="$(git rev-parse HEAD)" -t devsecops-portal .
#
# What Docker documents about the hardened pair, and what this file relies on:
# - the `-dev` image runs as root with a shell and apt, for build stages; the runtime image runs
#   as the nonroot user, UID/GID 65532, and has no shell and no package manager
#   (https://docs.docker.com/dhi/migration/checklist/, https://docs.docker.com/dhi/explore/available/);
# - Python lives in /opt/python (a link to /opt/python-3.12.x) with /opt/python/bin first on
#   PATH, in the dev and in the runtime image alike: both take opt/** from the same pkg-python
#   artifact (github.com/docker-hardened-images/catalog: image/python/debian-13/3.12.yaml,
#   3.12-dev.yaml and package/python/debian-13/3.12.yaml). The official image has it in
#   /usr/local/bin (docker-library/python 3.12/slim-trixie/Dockerfile).
# - a virtualenv built in the -dev image and copied into the runtime image is Docker's own
#   Python migration example (https://docs.docker.com/dhi/migration/examples/python/).
#
# So the runtime stage needs nothing the hardened runtime leaves out: no RUN (no shell), no user
# to create (USER is numeric), exec-form CMD. The virtualenv's bin/python is a symlink to the
# `python` the build stage found on its PATH (/usr/local/bin/python or /opt/python/bin/python),
# and pyvenv.cfg's `home` names that directory: it exists at the same path in the runtime image
# of the same pair. `venv --copies` would not remove that dependency (the copied binary still
# loads libpython and the standard library from the base), so the rule is: the two build
# arguments name a pair, same Python minor version, same distribution. make image-dhi does.
#
# It runs as UID:GID 65532 with a read-only root filesystem: only /tmp must be writable (the Helm
# chart mounts emptyDirs there and on the metrics directory, and sets runAsUser/fsGroup 65532).
# 65532 is the hardened image's own nonroot user; python:3.12-slim has no passwd entry for it and
# needs none (numeric USER, HOME=/tmp, nothing looks the user's name up).

ARG PYTHON_BUILD_IMAGE=python:3.12-slim
ARG PYTHON_IMAGE=python:3.12-slim

# --- build: a virtualenv with the pinned dependencies, compiled catalogues and bytecode ------
FROM ${PYTHON_BUILD_IMAGE} AS build
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
# PATH extends the base's own (/opt/python/bin first in the hardened image); LD_LIBRARY_PATH
# and SSL_CERT_FILE of the hardened image are inherited untouched. MALLOC_ARENA_MAX: glibc gives
# each thread that allocates its own arena, which keeps freed memory; with 2, a worker at 1,500
# people grew +10 % in a 10-minute soak, not +33 % (bench/README.md, figure 7; musl ignores it).
ENV PATH=/opt/venv/bin:$PATH \
    MALLOC_ARENA_MAX=2 \
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
# shutdown on rollouts). Neither base sets an ENTRYPOINT (the hardened one's definition has only
# `cmd: [python3]`), so this is the whole command.
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py", "portal.wsgi:app"]
