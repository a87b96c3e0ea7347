# syntax=docker/dockerfile:1
# The app image; the same image also runs the proxy (`python -m proxy`) and the loader
# (`python -m app.load`) in compose.yaml. Python dependencies come from requirements.lock
# (every package pinned with its hashes; regenerate as deploy/README.md says), so two builds of
# one commit install the same bytes. tests/deploy/test_image_tree.py builds this file tree
# without Docker and runs the CMD and HEALTHCHECK below from it.

# --- npm packages pinned by their lock files: map, Swagger UI, Pyodide, CodeMirror ------------
FROM node:20-bookworm-slim AS npm
WORKDIR /build
COPY app/map/package.json app/map/package-lock.json ./app/map/
COPY app/swagger/package.json app/swagger/package-lock.json ./app/swagger/
COPY web/pyodide/package.json web/pyodide/package-lock.json ./web/pyodide/
RUN npm ci --prefix app/map --no-audit --no-fund --loglevel=error \
    && npm ci --prefix app/swagger --no-audit --no-fund --loglevel=error \
    && npm ci --prefix web/pyodide --no-audit --no-fund --loglevel=error

# --- exactly the npm files the pages load, and each package's licence ----------------------
# The page's and the playground's asset groups (app/assets.py GROUPS), Swagger UI's files for
# /docs (app/docs.py _FILES) and the 1:110m outlines of /map/countries-110m.json (app/page.py).
# tests/deploy/test_image_tree.py holds this list to those modules: a file added there and
# forgotten here fails the suite, not a deployment.
FROM scratch AS pagefiles
COPY --from=npm /build/app/map/node_modules/leaflet/LICENSE /app/map/node_modules/leaflet/
COPY --from=npm /build/app/map/node_modules/leaflet/dist/leaflet.js \
     /build/app/map/node_modules/leaflet/dist/leaflet.css /app/map/node_modules/leaflet/dist/
COPY --from=npm /build/app/map/node_modules/leaflet/dist/images \
     /app/map/node_modules/leaflet/dist/images/
COPY --from=npm /build/app/map/node_modules/topojson-client/LICENSE \
     /app/map/node_modules/topojson-client/
COPY --from=npm /build/app/map/node_modules/topojson-client/dist/topojson-client.min.js \
     /app/map/node_modules/topojson-client/dist/
COPY --from=npm /build/app/map/node_modules/world-atlas/LICENSE \
     /build/app/map/node_modules/world-atlas/countries-*.json /app/map/node_modules/world-atlas/
COPY --from=npm /build/web/pyodide/node_modules/codemirror/LICENSE \
     /web/pyodide/node_modules/codemirror/
COPY --from=npm /build/web/pyodide/node_modules/codemirror/lib/codemirror.js \
     /build/web/pyodide/node_modules/codemirror/lib/codemirror.css \
     /web/pyodide/node_modules/codemirror/lib/
COPY --from=npm /build/web/pyodide/node_modules/codemirror/mode/python/python.js \
     /web/pyodide/node_modules/codemirror/mode/python/
COPY --from=npm /build/web/pyodide/node_modules/codemirror/mode/sql/sql.js \
     /web/pyodide/node_modules/codemirror/mode/sql/
COPY --from=npm /build/web/pyodide/node_modules/codemirror/addon/edit/matchbrackets.js \
     /web/pyodide/node_modules/codemirror/addon/edit/
COPY --from=npm /build/web/pyodide/node_modules/pyodide/pyodide.mjs \
     /build/web/pyodide/node_modules/pyodide/pyodide.asm.mjs \
     /build/web/pyodide/node_modules/pyodide/pyodide.asm.wasm \
     /build/web/pyodide/node_modules/pyodide/python_stdlib.zip \
     /build/web/pyodide/node_modules/pyodide/pyodide-lock.json \
     /web/pyodide/node_modules/pyodide/
COPY --from=npm /build/app/swagger/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /build/app/swagger/node_modules/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt \
     /build/app/swagger/node_modules/swagger-ui-dist/swagger-ui.css \
     /build/app/swagger/node_modules/swagger-ui-dist/favicon-32x32.png \
     /build/app/swagger/node_modules/swagger-ui-dist/LICENSE \
     /build/app/swagger/node_modules/swagger-ui-dist/NOTICE \
     /app/swagger/node_modules/swagger-ui-dist/

# --- Python dependencies in a virtualenv, from the lock file only ----------------------------
FROM python:3.11-slim-bookworm AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.lock /build/requirements.lock
# --require-hashes: a package whose bytes differ from the lock fails the build. --no-deps: the
# lock already lists every package. The project itself is not installed: it runs from source.
RUN pip install --require-hashes --no-deps -r /build/requirements.lock

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
COPY web ./web
COPY --from=pagefiles / ./
# The gzip copies app/assets.py serves (var/assets/), made once here and not by each replica;
# as root, before USER: the app reads them and cannot change them.
RUN python -m app.assets
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# uvicorn with its limits from the settings (app/serve.py): one worker per core, bounded
# headers, connections and keep-alive; X-Forwarded-For is left to the app (TRUSTED_PROXIES).
CMD ["python", "-m", "app.serve"]
