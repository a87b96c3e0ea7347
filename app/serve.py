"""`python -m app.serve`: uvicorn with the limits it offers, from the app's settings.

The image's command and anyone serving the app without a front use this, so the bounds are
the same everywhere: header size (h11 refuses a header section past `max_header_bytes` with a
400; httptools has no such bound, use it only behind the front), connection count
(`limit_concurrency`, answered with 503), keep-alive idle time, listen backlog, and one worker
per core by default. The access log is off by default (the front keeps none either): at a
thousand requests a second it costs more than the requests. X-Forwarded-For is left to the app
(TRUSTED_PROXIES), so uvicorn's own proxy-header handling is off.
"""

from __future__ import annotations

import os

import uvicorn

from app.settings import Settings, get_settings


def uvicorn_options(s: Settings) -> dict[str, object]:
    """uvicorn.run() keyword arguments for these settings (the demo uses them too)."""
    return {
        "host": s.host,
        "port": s.port,
        "workers": s.workers or os.cpu_count() or 1,
        "http": s.http_impl,
        "h11_max_incomplete_event_size": s.max_header_bytes,
        "limit_concurrency": s.limit_concurrency,
        "backlog": s.backlog,
        "timeout_keep_alive": s.timeout_keep_alive_s,
        "access_log": s.access_log,
        "proxy_headers": False,
        "server_header": False,
    }


def main() -> None:
    uvicorn.run("app.main:create_app", factory=True, **uvicorn_options(get_settings()))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
