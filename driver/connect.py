"""connect(): resolve parameters, try each TLS attempt (dial.py), predict auth, run start-up."""

# ruff: noqa: ASYNC109 - asyncpg's connect() takes timeout=
from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from .auth.exchange import Mispredicted
from .auth.methods import MD5, NONE, PASSWORD, SCRAM
from .connection import Connection
from .dial import cancel, close_quietly, open_channel, tls_attempts
from .errors import AuthenticationError, InterfaceError, TransportError
from .params import ConnectParams, resolve
from .protocol import PGProtocol

if TYPE_CHECKING:
    from .auth.policy import AuthGuard
    from .transport.base import Stream

__all__ = ["cancel", "connect", "forget_auth_methods"]

log = logging.getLogger(__name__)
# connect()'s default for wait_ready: asyncpg's contract (errors at connect, server facts
# known). False would make every first query ride the last authentication flight.
WAIT_READY = True


async def connect(
    dsn: str | None = None,
    *,
    timeout: float | None = None,
    wait_ready: bool | None = None,
    connection_class: type[Connection] = Connection,
    **kwargs: Any,
) -> Connection:
    """Open a connection (asyncpg's ``connect()``), in as few round trips as the protocol
    allows.

    Pipelined start-up (``pipeline_connect``, on by default): the StartupMessage leaves with
    what can be predicted of authentication, the SCRAM client-first message (it holds no
    secret) or, only where the auth policy would send it on request anyway, the cleartext
    password. The method each server uses is remembered per process (host, port, user,
    database, proxy, TLS), so later connects predict it exactly. A server that asks for
    something else than predicted (trust or md5 when client-first was sent, say) ends that
    session; the driver then reconnects once, knowing the method, and reports the real cause
    if that fails too. ``pipeline_connect="password"`` predicts a cleartext password (Neon's
    ``pipelineConnect: "password"``) on a first connect; ``pipeline_connect=False`` sends
    nothing unasked.

    The first query in the last authentication flight (``wait_ready=False``): ``connect()``
    returns as soon as the LAST authentication message is queued, without waiting for
    AuthenticationOk and ReadyForQuery, and the first operation sends it together with its
    own messages in one flight (with trust, that is the StartupMessage itself: connect()
    then returns with no round trip to Postgres). That operation reads the server's verdict
    first: a refusal raises the server's typed error there (``InvalidPassword``,
    ``InvalidCatalogName``...) and closes the connection, and connect's deadline still
    bounds the start-up. ``await conn.ready()`` confirms at any time; until then
    ``get_server_pid()`` and the server parameters are not known. If no operation follows
    at once, the queued messages leave on their own after about a millisecond. The default,
    ``wait_ready=True``, keeps asyncpg's contract: connect() returns a confirmed connection
    or raises.

    Args:
        dsn: ``postgres://user:password@host:port/dbname?sslmode=...``; keyword arguments
            (host, port, user, password, database, sslmode, server_settings, ws_proxy,
            use_secure_websocket, transport, statement_cache_size, ...) override it, and the
            PG* environment variables fill what both leave out.
        timeout: one deadline, in seconds, for everything (DNS, WebSocket upgrade, TLS,
            startup, authentication); defaults to connect_timeout, else 60.
        wait_ready: False to return before the server confirmed the start-up, so that the
            first operation rides the last authentication flight (see above).
        connection_class: a subclass of :class:`Connection` to build instead (asyncpg's
            argument); its ``__init__`` gets Connection's arguments and must pass them on.

    Raises:
        InterfaceError: missing or malformed parameters, unsupported auth method.
        TransportError: the host, proxy or TLS handshake failed.
        PostgresError: the server refused (e.g. InvalidPassword, InvalidCatalogName).
        TimeoutError: the deadline passed.
    """
    check_connection_class(connection_class)
    params = resolve(dsn, **kwargs)
    deadline = timeout if timeout is not None else params.connect_timeout
    when = None if deadline is None else asyncio.get_running_loop().time() + deadline
    try:
        async with asyncio.timeout_at(when):
            return await _connect(params, when, deadline, WAIT_READY if wait_ready is None
                                  else wait_ready, connection_class)  # fmt: skip
    except TimeoutError as exc:
        raise TimeoutError(
            f"connecting to {params.describe()} timed out after {deadline:g} s"
        ) from exc


def check_connection_class(cls: object) -> None:
    """Refuse, at the call that was given it, what connect() could not build.

    Raises:
        InterfaceError: ``cls`` is not a subclass of Connection.
    """
    if not (isinstance(cls, type) and issubclass(cls, Connection)):
        raise InterfaceError(
            f"connection_class must be a subclass of driver.Connection, got {cls!r}"
        )


async def _connect(
    params: ConnectParams,
    when: float | None,
    seconds: float | None,
    wait_ready: bool,
    cls: type[Connection],
) -> Connection:
    url = params.proxy_url()
    attempts = tls_attempts(params.sslmode, url)
    for i, use_tls in enumerate(attempts):
        last = i == len(attempts) - 1
        missed = False
        while True:
            stream: Stream | None = None
            try:
                stream, encrypted, binding, verified = await open_channel(params, use_tls)
                guard = _guard(params, encrypted, binding, verified)
                target = (params.host, params.port, params.user, params.database, url,
                          encrypted)  # fmt: skip
                predict, mechanisms, pipeline = _prediction(params, guard, target)
                proto = PGProtocol(
                    params.user,
                    params.database,
                    params.password,
                    params.server_settings,
                    channel_binding=binding,
                    guard=guard,
                    predict=predict,
                    mechanisms=mechanisms,
                    learn=functools.partial(_learn, target),
                )
                conn = cls(stream, proto, params, cache_size=params.statement_cache_size)
                # the first query may ride the last auth flight only where that is safe
                early = pipeline and not wait_ready and guard.may_send_query_early()
                await conn._startup(pipeline=early, hear_first=not last, deadline=when,
                                    timeout=seconds)  # fmt: skip
                return conn
            except Mispredicted as exc:
                if stream is not None:
                    await close_quietly(stream)
                if missed:
                    raise
                missed = True  # the server's method is known now: once more, predicting it
                log.debug("pipelined start-up mispredicted, reconnecting: %s", exc)
            except BaseException as exc:
                if stream is not None:
                    await close_quietly(stream)
                if last or not _retryable(exc):
                    raise
                log.debug("connect attempt with TLS=%s failed, retrying: %r", use_tls, exc)
                break
    raise AssertionError("unreachable")


# What each server asked for last time, per (host, port, user, database, proxy URL, TLS):
# memory only, bounded; the method is no secret.
_Target = tuple[str, int, str, str, str | None, bool]
_methods: OrderedDict[_Target, tuple[str, tuple[str, ...]]] = OrderedDict()
_METHODS_KEPT = 256
_OFF = (False, "off", "false", "disable", "0")


def _learn(target: _Target, method: str, mechanisms: tuple[str, ...]) -> None:
    _methods[target] = (method, mechanisms)
    _methods.move_to_end(target)
    while len(_methods) > _METHODS_KEPT:
        _methods.popitem(last=False)


def forget_auth_methods() -> None:
    """Forget what servers asked for (tests; or after changing pg_hba.conf in-process)."""
    _methods.clear()


def _prediction(
    params: ConnectParams, guard: AuthGuard, target: _Target
) -> tuple[str | None, tuple[str, ...], bool]:
    """(method to predict, SASL mechanisms known, whether connect() may return early).

    SCRAM is the default guess (PostgreSQL's default since 14); client-first holds no secret,
    so a wrong guess costs one reconnect and no exposure. A cleartext password is predicted
    only where the policy would send it on request anyway (TLS, or an explicit opt-in).
    """
    mode = params.pipeline_connect
    if mode in _OFF:
        return None, (), False
    if params.password is None:
        return NONE, (), True  # nothing to send, whatever the server asks
    method, mechanisms = _methods.get(target) or ((PASSWORD if mode == "password" else SCRAM), ())
    allowed = guard.policy.allowed
    if method == PASSWORD and not guard.may_send_password_early():
        return None, (), True
    if method == MD5 or (method == SCRAM and allowed is not None and SCRAM not in allowed):
        return None, (), True  # an MD5 answer needs the server's salt first
    return method, mechanisms, True


def _retryable(exc: BaseException) -> bool:
    """libpq's sslmode=prefer/allow retry: TLS trouble, a pg_hba line only for the other mode,
    or (allow) a password the auth policy would not send without TLS."""
    from .errors import AuthPolicyError

    if isinstance(exc, AuthPolicyError):
        # only a refusal TLS would lift is worth another attempt; any other keeps its message
        return exc.needs_encryption
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, AuthenticationError) and exc.sqlstate == "28000"


def _guard(
    params: ConnectParams, encrypted: bool, binding: bytes | None, verified: bool = False
) -> AuthGuard:
    from .auth.policy import AuthPolicy

    policy = AuthPolicy.parse(
        params.require_auth,
        channel_binding=params.channel_binding,
        allow_unencrypted_password=params.allow_unencrypted_password,
    )
    return policy.guard(
        encrypted=encrypted,
        channel_binding=binding,
        server_verified=verified,
        proxied=params.proxy_url() is not None or sys.platform == "emscripten",
    )
