"""A real uvicorn server for one app instance, on a free loopback port, in a thread.

Readiness is uvicorn's own "Application startup complete" log record, not a poll or a sleep.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from app.main import create_app
from app.settings import Settings
from tools.pgcluster import free_port


class _StartedHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "Application startup complete" in record.getMessage():
            self.started.set()


@contextmanager
def uvicorn_server(settings: Settings) -> Iterator[str]:
    """Serve `create_app(settings)` and yield its base URL; stop it on exit."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="info",
        access_log=False,
        lifespan="on",
        log_config=None,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    handler = _StartedHandler()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        assert handler.started.wait(30), "uvicorn did not start in 30 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
