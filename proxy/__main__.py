"""Entry point (`python -m proxy`, console script `wsproxy`): config, logging, signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Sequence

from .allowlist import never_matches_host_port
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
        why = never_matches_host_port(cfg.allow_addr_regex)
        if why is not None:
            log.warning(
                "WARNING: ALLOW_ADDR_REGEX %r can never match a target, so every client "
                "will be refused: %s",
                cfg.allow_addr_regex.pattern,
                why,
            )
    server = ProxyServer(cfg)
    if cfg.prometheus_bind is not None:
        server.metrics.serve(*cfg.prometheus_bind)
        log.info("metrics on %s:%d/metrics", *cfg.prometheus_bind)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    addrs = await server.start()
    sql = None
    if cfg.sql_http_listen is not None:
        from .sqlhttp import SQLServer  # imports the driver: only when the endpoint is on

        sql = SQLServer(cfg, server.metrics)
        log.info("sql over http listening on %s (POST /sql)", ", ".join(await sql.start()))
    scheme = "wss" if cfg.tls_cert else "ws"
    log.info("wsproxy listening on %s (%s)", ", ".join(addrs), scheme)
    await stopping.wait()
    log.info("signal received: no longer accepting connections")
    if sql is not None:
        await sql.shutdown()
    await server.shutdown(cfg.drain_timeout)


def loop_factory(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    """The event loop EVENT_LOOP asks for: uvloop when installed unless it says "asyncio".

    uvloop's transports cut the relay's added latency per round trip several-fold (see
    bench/proxy_bench.py); the standard library's loop stays available to rule uvloop out.

    Returns:
        A loop factory for asyncio.Runner and a name for the start-up log line.

    Raises:
        ConfigError: EVENT_LOOP=uvloop but uvloop cannot be imported.
    """
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("EVENT_LOOP: uvloop is not installed") from None
        else:
            return uvloop.new_event_loop, f"uvloop {getattr(uvloop, '__version__', '')}".rstrip()
    return asyncio.new_event_loop, "asyncio"


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
        new_loop, loop_name = loop_factory(cfg.event_loop)
    except ConfigError as exc:
        log.error("bad configuration: %s", exc)
        sys.exit(2)
    log.info("event loop: %s", loop_name)
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(run(cfg))
    except ssl.SSLError as exc:  # before OSError, its base: the files exist (load checked)
        log.error("cannot start: TLS_CERT %s / TLS_KEY %s: %s", cfg.tls_cert, cfg.tls_key, exc)
        sys.exit(1)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        sys.exit(1)
    except ConfigError as exc:  # found when a part starts (SQL_HTTP_JWKS_FILE's keys)
        log.error("bad configuration: %s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
