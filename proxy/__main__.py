"""Entry point (`python -m proxy`, console script `wsproxy`): config, logging, signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from .config import Config, ConfigError, load
from .server import ProxyServer

log = logging.getLogger("proxy")


async def run(cfg: Config) -> None:
    """Serve until SIGTERM or SIGINT, then drain; returning means a clean exit (status 0)."""
    if cfg.allow_addr_regex is None:
        log.warning(
            "WARNING: ALLOW_ADDR_REGEX is empty: this proxy relays to ANY host:port "
            "(an open proxy). Set ALLOW_ADDR_REGEX to the databases it may reach."
        )
    else:
        log.info("allowed targets: %s (whole host:port)", cfg.allow_addr_regex.pattern)
    server = ProxyServer(cfg)
    if cfg.prometheus_bind is not None:
        server.metrics.serve(*cfg.prometheus_bind)
        log.info("metrics on %s:%d/metrics", *cfg.prometheus_bind)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    addrs = await server.start()
    scheme = "wss" if cfg.tls_cert else "ws"
    log.info("wsproxy listening on %s (%s)", ", ".join(addrs), scheme)
    await stopping.wait()
    log.info("signal received: no longer accepting connections")
    await server.shutdown(cfg.drain_timeout)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Our own lines cover opens, closes and refusals; keep websockets' errors (real bugs).
    logging.getLogger("websockets").setLevel(logging.ERROR)
    try:
        cfg = load(argv, os.environ)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        sys.exit(2)
    try:
        asyncio.run(run(cfg))
    except OSError as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
