"""connect(): resolve parameters, open the transport, negotiate TLS, run startup and auth."""

# ruff: noqa: ASYNC109 - asyncpg's connect() takes timeout=
from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from .connection import Connection
from .dsn import ConnectParams, resolve
from .errors import AuthenticationError, Error, TransportError
from .protocol import PGProtocol
from .protocol.messages import cancel_request
from .transport import open_stream

if TYPE_CHECKING:
    from .protocol.core import AuthGuard
    from .transport.base import Stream

__all__ = ["cancel", "connect"]

log = logging.getLogger(__name__)


async def connect(
    dsn: str | None = None, *, timeout: float | None = None, **kwargs: Any
) -> Connection:
    """Open a connection (asyncpg's ``connect()``).

    Args:
        dsn: ``postgres://user:password@host:port/dbname?sslmode=...``; keyword arguments
            (host, port, user, password, database, sslmode, server_settings, ws_proxy,
            use_secure_websocket, transport, statement_cache_size, ...) override it, and the
            PG* environment variables fill what both leave out.
        timeout: one deadline, in seconds, for everything (DNS, WebSocket upgrade, TLS,
            startup, authentication); defaults to connect_timeout, else 60.

    Raises:
        InterfaceError: missing or malformed parameters, unsupported auth method.
        TransportError: the host, proxy or TLS handshake failed.
        PostgresError: the server refused (e.g. InvalidPassword, InvalidCatalogName).
        TimeoutError: the deadline passed.
    """
    params = resolve(dsn, **kwargs)
    deadline = timeout if timeout is not None else params.connect_timeout
    try:
        async with asyncio.timeout(deadline):
            return await _connect(params)
    except TimeoutError as exc:
        raise TimeoutError(
            f"connecting to {params.describe()} timed out after {deadline:g} s"
        ) from exc


def _attempts(sslmode: str, url: str | None) -> tuple[bool, ...]:
    if sys.platform == "emscripten":  # Pyodide's ssl is a stub: no TLS to the server there
        from .transport.pyodide import browser_tls_attempts

        attempts = browser_tls_attempts(sslmode, url)
        if attempts is not None:
            return attempts
    if sslmode == "disable":
        return (False,)
    from .tlsconnect import tls_attempts

    return tls_attempts(sslmode)


async def _connect(params: ConnectParams) -> Connection:
    url = params.proxy_url()
    attempts = _attempts(params.sslmode, url)
    for i, use_tls in enumerate(attempts):
        last = i == len(attempts) - 1
        stream: Stream | None = None
        try:
            stream = await open_stream(params.host, params.port, url)
            stream, encrypted, binding = await _secure(stream, params, use_tls)
            proto = PGProtocol(
                params.user,
                params.database,
                params.password,
                params.server_settings,
                pipeline_password=params.pipeline_connect == "password",
                channel_binding=binding,
                guard=_guard(params, encrypted, binding),
            )
            conn = Connection(stream, proto, params, cache_size=params.statement_cache_size)
            await conn._startup()
            return conn
        except BaseException as exc:
            if stream is not None:
                await _close_quietly(stream)
            if last or not _retryable(exc):
                raise
            log.debug("connect attempt with TLS=%s failed, retrying: %r", use_tls, exc)
    raise AssertionError("unreachable")


def _retryable(exc: BaseException) -> bool:
    """libpq's sslmode=prefer/allow retry: TLS trouble, a pg_hba line only for the other mode,
    or (allow) a password the auth policy would not send without TLS."""
    from .authpolicy import AuthPolicyError

    if isinstance(exc, TransportError | AuthPolicyError):
        return True
    return isinstance(exc, AuthenticationError) and exc.sqlstate == "28000"


async def _secure(
    stream: Stream, params: ConnectParams, use_tls: bool
) -> tuple[Stream, bool, bytes | None]:
    """The seam for TLS: the SSLRequest exchange and handshake live in driver.tlsconnect."""
    if not use_tls:
        return stream, False, None
    from .tlsconfig import TLSSettings
    from .tlsconnect import negotiate

    settings = TLSSettings(
        sslmode=params.sslmode,
        sslrootcert=params.sslrootcert,
        root_certs=params.root_certs,
        sslcert=params.sslcert,
        sslkey=params.sslkey,
        sslpassword=params.sslpassword,
        ssl_min_protocol_version=params.ssl_min_protocol_version,
        ssl_max_protocol_version=params.ssl_max_protocol_version,
        ssl_context=params.ssl_context,
    )
    result = await negotiate(stream, settings, params.host, use_tls=True)
    return result.stream, result.encrypted, result.channel_binding


def _guard(params: ConnectParams, encrypted: bool, binding: bytes | None) -> AuthGuard | None:
    from .authpolicy import AuthPolicy

    policy = AuthPolicy.parse(
        params.require_auth,
        channel_binding=params.channel_binding,
        allow_unencrypted_password=params.allow_unencrypted_password,
    )
    return policy.guard(encrypted=encrypted, channel_binding=binding)


async def _close_quietly(stream: Stream) -> None:
    try:
        async with asyncio.timeout(1.0):
            await stream.close()
    except (Error, OSError, TimeoutError) as exc:
        log.debug("closing a failed connection attempt: %r", exc)


async def cancel(params: ConnectParams, pid: int, key: int) -> None:
    """Send a CancelRequest for backend ``pid`` on a new stream, the way the connection went.

    Waits until the server closes that stream, which it does after signalling the backend,
    so the cancel cannot hit a later query ("Canceling Requests in Progress").
    """
    stream = await open_stream(params.host, params.port, params.proxy_url())
    try:
        use_tls = _attempts(params.sslmode, params.proxy_url())[0]
        stream, _, _ = await _secure(stream, params, use_tls)
        await stream.write(cancel_request(pid, key))
        while await stream.read(1024):
            pass
    finally:
        await _close_quietly(stream)
