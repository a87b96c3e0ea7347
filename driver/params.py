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

from .errors import ClientConfigurationError, InterfaceError

__all__ = [
    "LOAD_BALANCE", "SESSION_ATTRS", "SSL_MODES", "Config", "ConnectParams", "WSProxy", "config",
    "resolve", "sslmode_from_ssl_argument",
]  # fmt: skip

WSProxy = str | Callable[[str, int], str]
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq 16's target_session_attrs and load_balance_hosts values
SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
LOAD_BALANCE = ("disable", "random")


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
    # asyncpg's statement-cache knobs (0 turns each off): longer queries are not cached;
    # cached statements are re-prepared after this many seconds
    max_cacheable_statement_size: int = 15 * 1024
    max_cached_statement_lifetime: float = 300.0
    root_certs: str | None = None
    sslpassword: str | None = None
    ssl_min_protocol_version: str = "TLSv1.2"
    ssl_max_protocol_version: str | None = None
    ssl_context: ssl.SSLContext | None = None
    # verifies a wss:// proxy (None: the system trust store); not the TLS to Postgres
    ws_ssl_context: ssl.SSLContext | None = None
    # every (host, port) to try, in order (host and port above are the first, or the one
    # this connection is for); a DSN or host= may list several, as libpq and asyncpg allow
    targets: tuple[tuple[str, int], ...] = ()
    target_session_attrs: str = "any"
    load_balance_hosts: str = "disable"

    def for_target(self, host: str, port: int) -> ConnectParams:
        """These parameters for one of the targets only (one connection attempt)."""
        return dataclasses.replace(self, host=host, port=port, targets=((host, port),))

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
        """``host:port`` (each target's, when there are several) plus the proxy URL, for
        error messages."""
        if len(self.targets) > 1:
            return ", ".join(self.for_target(h, p).describe() for h, p in self.targets)
        host = f"[{self.host}]" if ":" in self.host else self.host
        target = f"{host}:{self.port}"
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
    "PGTARGETSESSIONATTRS": "target_session_attrs",
    "PGLOADBALANCEHOSTS": "load_balance_hosts",
}
_QUERY_KEYS = {
    "host", "port", "user", "password", "dbname", "database", "sslmode", "sslrootcert",
    "sslcert", "sslkey", "sslpassword", "ssl_min_protocol_version", "ssl_max_protocol_version",
    "connect_timeout", "application_name", "options", "require_auth",
    "channel_binding", "target_session_attrs", "load_balance_hosts",
}  # fmt: skip


def _parse_url(dsn: str) -> dict[str, Any]:
    if not dsn.strip():
        raise InterfaceError("empty DSN: expected postgres://user:password@host:port/dbname")
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise InterfaceError(f"malformed DSN: invalid IPv6 address ({exc})") from exc
    if parts.scheme not in ("postgres", "postgresql"):
        raise InterfaceError(
            f"DSN must start with postgres:// or postgresql://, got {dsn.split(':', 1)[0]!r}"
        )
    out: dict[str, Any] = {}
    userinfo, at, hostspec = parts.netloc.rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            out["user"] = unquote(user)
        if colon:
            out["password"] = unquote(password)
    if hostspec:
        hosts = _host_list(hostspec, unquote_parts=True)
        out["host"] = [h for h, _ in hosts]
        if any(p for _, p in hosts):
            out["port"] = [p or "" for _, p in hosts]
    if parts.path.strip("/"):
        out["database"] = unquote(parts.path.lstrip("/"))
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _QUERY_KEYS:
            raise InterfaceError(f"unsupported DSN parameter {key!r}")
        out["database" if key == "dbname" else key] = value
    return out


def _host_list(spec: str, *, unquote_parts: bool = False) -> list[tuple[str, str]]:
    """``h1:5432,[::1]:5433,h3`` -> [(host, port or "")], as libpq reads a URI's host part.

    Raises:
        InterfaceError: an IPv6 address without its closing bracket.
    """
    out = []
    for item in spec.split(","):
        if item.startswith("["):
            addr, bracket, rest = item[1:].partition("]")
            if not bracket or (rest and not rest.startswith(":")):
                raise InterfaceError(f"malformed DSN: invalid IPv6 address {item!r}")
            port = rest[1:]
        else:
            addr, _, port = item.partition(":")
        if unquote_parts:
            addr, port = unquote(addr), unquote(port)
        out.append((addr, port))
    return out


def _targets(host: Any, port: Any) -> tuple[tuple[str, int], ...]:
    """Pair hosts and ports as libpq does: one port for every host, or one port each.

    ``host``: a string (a comma-separated list, as in PGHOST or ``host=`` of a DSN) or a list;
    ``port``: an int, a comma-separated string, or a list (an empty item means 5432).

    Raises:
        InterfaceError: the counts differ, or a port is not a number in 1..65535.
    """
    if isinstance(host, str):
        hosts = [h for h, _ in _host_list(host)] if "," in host else [host]
    elif isinstance(host, list | tuple):
        hosts = [str(h) for h in host]
    else:
        raise InterfaceError(f"host must be a string or a list of strings, got {host!r}")
    if port is None:
        ports: list[Any] = [5432]
    elif isinstance(port, str):
        ports = port.split(",")
    elif isinstance(port, list | tuple):
        ports = list(port)
    else:
        ports = [port]
    try:
        numbers = [int(p) if p not in ("", None) else 5432 for p in ports]
    except (TypeError, ValueError) as exc:
        raise InterfaceError(f"invalid port {port!r}: {exc}") from exc
    if any(not 0 < n < 65536 for n in numbers):
        raise InterfaceError(f"invalid port {port!r}: expected 1..65535")
    if not hosts or any(not h for h in hosts):
        raise InterfaceError(f"empty host name in {host!r}")
    if len(numbers) == 1:
        numbers *= len(hosts)
    if len(numbers) != len(hosts):
        raise InterfaceError(f"could not match {len(numbers)} port numbers to {len(hosts)} hosts")
    return tuple(zip(hosts, numbers, strict=True))


def _positive_seconds(value: Any) -> float | None:
    """command_timeout, checked as asyncpg checks it (booleans are not numbers here).

    Raises:
        ClientConfigurationError: not a number greater than 0 (also a ValueError).
    """
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value)
        if not seconds > 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ClientConfigurationError(
            f"invalid command_timeout value: expected greater than 0 float (got {value!r})"
        ) from None
    return seconds


_CACHE_KNOBS = (
    "statement_cache_size", "max_cacheable_statement_size", "max_cached_statement_lifetime",
)  # fmt: skip


def _at_least_zero(name: str, value: Any) -> Any:
    """A statement-cache knob, checked as asyncpg checks it (an int, or a number of seconds
    for the lifetime).

    Raises:
        ClientConfigurationError: None, a boolean, a negative number, or not a number.
    """
    number = (int, float) if name == "max_cached_statement_lifetime" else (int,)
    if isinstance(value, bool) or not isinstance(value, number) or value < 0:
        raise ClientConfigurationError(
            f"{name} is expected to be greater or equal to 0, got {value!r}"
        )
    return value


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

    targets = _targets(merged.pop("host", "localhost"), merged.pop("port", None))
    attrs = str(merged.pop("target_session_attrs", "any") or "any")
    if attrs not in SESSION_ATTRS:
        raise ClientConfigurationError(
            f"target_session_attrs is expected to be one of {SESSION_ATTRS}, got {attrs!r}"
        )
    balance = str(merged.pop("load_balance_hosts", "disable") or "disable")
    if balance not in LOAD_BALANCE:
        raise ClientConfigurationError(
            f"load_balance_hosts is expected to be one of {LOAD_BALANCE}, got {balance!r}"
        )
    try:
        timeout = merged.pop("connect_timeout", merged.pop("timeout", 60.0))
        timeout = float(timeout) if timeout not in (None, "", "0", 0) else None
    except (TypeError, ValueError) as exc:
        raise InterfaceError(f"invalid connect_timeout: {exc}") from exc
    command_timeout = _positive_seconds(merged.pop("command_timeout", None))
    for knob in _CACHE_KNOBS:
        if knob in kwargs:  # None given as a keyword is refused too, as asyncpg does
            merged[knob] = _at_least_zero(knob, kwargs[knob])
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
        host=targets[0][0],
        port=targets[0][1],
        targets=targets,
        target_session_attrs=attrs,
        load_balance_hosts=balance,
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
