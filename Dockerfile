# syntax=docker/dockerfile:1
# The app image; the same image also runs the proxy (`python -m proxy`) and the loader
# (`python -m app.load`) in compose.yaml. Dependencies come from pyproject.toml's `app` extra,
# the same list the test suite installs, in a layer cached until pyproject.toml changes.

# --- offline map outlines, pinned by app/map/package-lock.json --------------------------------
FROM node:20-bookworm-slim AS map
WORKDIR /build/app/map
COPY app/map/package.json app/map/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- Python dependencies in a virtualenv ---------------------------------------------------
FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
# Empty packages let pip resolve the project's own metadata without copying the sources, so
# this layer is rebuilt only when pyproject.toml changes; the project itself is not installed
# (the final stage runs from source, next to sql/). Versions are the ranges in pyproject.toml,
# exactly what `make test` installs, hence no pins here.
# hadolint ignore=DL3013
RUN mkdir driver proxy app \
    && touch driver/__init__.py proxy/__init__.py app/__init__.py \
    && pip install ".[app]" \
    && pip uninstall -y pgws

# --- runtime -------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /srv --no-create-home \
       --shell /usr/sbin/nologin app
WORKDIR /srv
COPY --from=deps /opt/venv /opt/venv
COPY driver ./driver
COPY proxy ./proxy
COPY app ./app
COPY sql ./sql
COPY --from=map /build/app/map/node_modules/world-atlas/countries-110m.json \
     ./app/map/node_modules/world-atlas/countries-110m.json
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# X-Forwarded-For is handled by the app (TRUSTED_PROXIES), so uvicorn must not rewrite it.
CMD ["sh", "-c", "exec uvicorn app.main:create_app --factory --host 0.0.0.0 --port \"$PORT\" --no-proxy-headers --no-server-header"]
