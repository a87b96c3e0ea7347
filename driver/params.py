"""Connection parameters: DSN URL, keyword overrides, PG* environment fallbacks, global config."""

from __future__ import annotations

import dataclasses
import getpass
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import InterfaceError

__all__ = [
    "SSL_MODES",
    "Config",
    "ConnectParams",
    "WSProxy",
    "config",
    "resolve",
    "sslmode_from_ssl_argument",
]

WSProxy = str | Callable[[str, int], str]
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass
class Config:
    """Process-wide defaults, like Neon's ``neonConfig``; per-connection arguments win.

    ``ws_proxy`` is ``"host:port/path"`` (``?address=HOST:PORT`` is appended) or a callable
    ``(host, port) -> "host:port/path?..."``; None means plain TCP. ``use_secure_websocket``
    picks ``wss://`` over ``ws://``. ``pipeline_connect``: None (the default) predicts
    authentication where safe (SCRAM client-first, or the method this process saw the same
    server use) and sends it with the StartupMessage; ``"password"`` predicts a cleartext
    password, as Neon's ``pipelineConnect: "password"`` (never sent before TLS unless the auth
    policy allows it); False sends nothing before the server asks.
    """

    ws_proxy: WSProxy | None = None
    use_secure_websocket: bool = True
    pipeline_connect: str | bool | None = None


config = Config()


@dataclass
class ConnectParams:
    """Everything needed to open one connection, fully resolved."""

    host: str = "localhost"
    port: int = 5432
    user: str = ""
    password: str | None = None
    database: str = ""
    sslmode: str = "prefer"
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    connect_timeout: float | None = 60.0
    # default deadline of every query method whose timeout= is not given (asyncpg's name)
    command_timeout: float | None = None
    server_settings: dict[str, str] = field(default_factory=dict)
    ws_proxy: WSProxy | None = None
    use_secure_websocket: bool = True
    pipeline_connect: str | None = None
    transport: str | None = None
    require_auth: str | None = None
    channel_binding: str = "prefer"
    allow_unencrypted_password: bool = False
    statement_cache_size: int = 100
    root_certs: str | None = None
    sslpassword: str | None = None
    ssl_min_protocol_version: str = "TLSv1.2"
    ssl_max_protocol_version: str | None = None
    ssl_context: ssl.SSLContext | None = None
    # verifies a wss:// proxy (None: the system trust store); not the TLS to Postgres
    ws_ssl_context: ssl.SSLContext | None = None

    def proxy_url(self) -> str | None:
        """The WebSocket URL for this target, or None for plain TCP."""
        if self.ws_proxy is None:
            return None
        scheme = "wss" if self.use_secure_websocket else "ws"
        if callable(self.ws_proxy):
            return f"{scheme}://{self.ws_proxy(self.host, self.port)}"
        if not self.ws_proxy:
            raise InterfaceError("ws_proxy is empty: give 'host:port/path' of a WebSocket proxy")
        host = f"[{self.host}]" if ":" in self.host else self.host
        sep = "&" if "?" in self.ws_proxy else "?"
        return f"{scheme}://{self.ws_proxy}{sep}address={host}:{self.port}"

    def describe(self) -> str:
        """``host:port`` plus the proxy URL, for error messages."""
        target = f"{self.host}:{self.port}"
        url = self.proxy_url()
        return f"{target} via {url}" if url else target


_ENV = {
    "PGHOST": "host",
    "PGPORT": "port",
    "PGUSER": "user",
    "PGPASSWORD": "password",
    "PGDATABASE": "database",
    "PGSSLMODE": "sslmode",
    "PGSSLROOTCERT": "sslrootcert",
    "PGCONNECT_TIMEOUT": "connect_timeout",
    "PGAPPNAME": "application_name",
    "PGREQUIREAUTH": "require_auth",
    "PGCHANNELBINDING": "channel_binding",
}
_QUERY_KEYS = {
    "host", "port", "user", "password", "dbname", "database", "sslmode", "sslrootcert",
    "sslcert", "sslkey", "sslpassword", "ssl_min_protocol_version", "ssl_max_protocol_version",
    "connect_timeout", "application_name", "options", "require_auth",
    "channel_binding",
}  # fmt: skip


def _parse_url(dsn: str) -> dict[str, Any]:
    if not dsn.strip():
        raise InterfaceError("empty DSN: expected postgres://user:password@host:port/dbname")
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise InterfaceError(
            f"DSN must start with postgres:// or postgresql://, got {dsn.split(':', 1)[0]!r}"
        )
    out: dict[str, Any] = {}
    try:
        if parts.username:
            out["user"] = unquote(parts.username)
        if parts.password is not None:
            out["password"] = unquote(parts.password)
        if parts.hostname:
            out["host"] = unquote(parts.hostname)
        if parts.port is not None:
            out["port"] = parts.port
    except ValueError as exc:
        raise InterfaceError(f"malformed DSN: {exc}") from exc
    if parts.path.strip("/"):
        out["database"] = unquote(parts.path.lstrip("/"))
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise InterfaceError(f"unsupported DSN parameter {key!r}")
        out["database" if key == "dbname" else key] = value
    return out


def resolve(dsn: str | None = None, **kwargs: Any) -> ConnectParams:
    """Merge, by priority: keyword arguments, the DSN, PG* environment variables, `config`.

    Raises:
        InterfaceError: the DSN is empty or malformed, or a value has the wrong form.
    """
    merged: dict[str, Any] = {}
    for env, key in _ENV.items():
        if os.environ.get(env):
            merged[key] = os.environ[env]
    if dsn is not None:
        merged.update(_parse_url(dsn))
    merged.update({k: v for k, v in kwargs.items() if v is not None})

    settings = dict(merged.pop("server_settings", None) or {})
    if "application_name" in merged:
        settings.setdefault("application_name", str(merged.pop("application_name")))
    if "options" in merged:
        settings.setdefault("options", str(merged.pop("options")))

    try:
        port = int(merged.pop("port", 5432))
        timeout = merged.pop("connect_timeout", merged.pop("timeout", 60.0))
        timeout = float(timeout) if timeout not in (None, "", "0", 0) else None
        command_timeout = merged.pop("command_timeout", None)
        command_timeout = float(command_timeout) if command_timeout is not None else None
    except (TypeError, ValueError) as exc:
        raise InterfaceError(f"invalid port, connect_timeout or command_timeout: {exc}") from exc
    if command_timeout is not None and command_timeout <= 0:
        raise InterfaceError(f"command_timeout must be positive, got {command_timeout}")
    # asyncpg's loop=: accepted for its API; the driver always runs on the running loop.
    merged.pop("loop", None)
    # asyncpg's ssl= (tlsconfig has its meanings): wins over the DSN and PGSSLMODE; an
    # explicit sslmode= keyword may only restate it (or choose the mode for a given context).
    ssl_arg = merged.pop("ssl", None)
    if ssl_arg is not None:
        mode, context = sslmode_from_ssl_argument(ssl_arg)
        explicit = kwargs.get("sslmode")
        if context is not None:
            merged["ssl_context"] = context
            merged["sslmode"] = explicit or mode
        elif explicit is not None and explicit != mode:
            raise InterfaceError(f"ssl={ssl_arg!r} and sslmode={explicit!r} contradict each other")
        else:
            merged["sslmode"] = mode
    # libpq 16: sslrootcert=system means "trust the system store", and defaults to verify-full
    # (weaker modes would make naming the trust store pointless, so libpq refuses them).
    default_mode = "verify-full" if merged.get("sslrootcert") == "system" else "prefer"
    sslmode = str(merged.pop("sslmode", default_mode))
    if sslmode not in SSL_MODES:
        raise InterfaceError(f"invalid sslmode {sslmode!r}; expected one of {SSL_MODES}")

    user = str(merged.pop("user", "") or getpass.getuser())
    fields = {f.name for f in dataclasses.fields(ConnectParams)}
    unknown = set(merged) - fields
    if unknown:
        raise InterfaceError(f"unknown connection argument(s): {', '.join(sorted(unknown))}")
    merged.setdefault("ws_proxy", config.ws_proxy)
    merged.setdefault("use_secure_websocket", config.use_secure_websocket)
    merged.setdefault("pipeline_connect", config.pipeline_connect)
    transport = merged.get("transport")
    if transport not in (None, "tcp", "websocket"):
        raise InterfaceError(f"transport must be 'tcp' or 'websocket', got {transport!r}")
    if transport == "websocket" and merged["ws_proxy"] is None:
        raise InterfaceError(
            "transport='websocket' needs a proxy: pass ws_proxy='host:port/path' "
            "or set driver.config.ws_proxy"
        )
    if transport == "tcp":
        merged["ws_proxy"] = None
    return ConnectParams(
        port=port,
        connect_timeout=timeout,
        command_timeout=command_timeout,
        sslmode=sslmode,
        user=user,
        database=str(merged.pop("database", "") or user),
        server_settings={str(k): str(v) for k, v in settings.items()},
        **merged,
    )


def apply(params: ConnectParams, overrides: Mapping[str, Any]) -> ConnectParams:
    """A copy of params with some fields replaced (used by pools for per-connection tweaks)."""
    return dataclasses.replace(params, **overrides)


def sslmode_from_ssl_argument(value: object) -> tuple[str, ssl.SSLContext | None]:
    """asyncpg's ``ssl=`` connect argument as (sslmode, context), with asyncpg's meanings.

    A security setting must never be read loosely: ``ssl=True`` means what it means in
    asyncpg (``create_default_context()``: the certificate chain AND the host name are
    verified), not "encrypt somehow", and ``ssl="disable"`` is plain TCP even though the
    string is truthy.

    * ``True``: ``verify-full``; ``False``: ``disable`` (no SSLRequest is sent);
    * a string: the sslmode of that name (``verify_full`` is accepted as asyncpg's enum
      spelling), with libpq's meanings (``allow``/``prefer`` fall back, ``require``
      encrypts without verifying unless a CA is named, ``verify-ca`` checks the chain,
      ``verify-full`` the chain and the host name);
    * an ``ssl.SSLContext``: used exactly as given, TLS required (asyncpg's ``require``),
      so the context's own ``verify_mode`` and ``check_hostname`` decide what is checked.

    Raises:
        InterfaceError: any other value, or an unknown mode name.
    """
    if isinstance(value, ssl.SSLContext):
        return "require", value
    if value is True:
        return "verify-full", None
    if value is False:
        return "disable", None
    if isinstance(value, str):
        mode = value.strip().lower().replace("_", "-")
        if mode in SSL_MODES:
            return mode, None
        raise InterfaceError(f"invalid ssl={value!r}: expected one of {', '.join(SSL_MODES)}")
    raise InterfaceError(
        f"ssl= must be a bool, an sslmode name or an ssl.SSLContext, not {type(value).__name__}"
    )
