"""Settings: wsproxy's environment names and formats, our additions, and a flag for each."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .policy import DEFAULT_ALLOW_SPECIAL, DEFAULT_ALLOW_SPECIAL_NETWORKS
from .policy import IPNetwork as IPNetwork

# Only a local Postgres: an unconfigured proxy must never be an open relay.
DEFAULT_ALLOW_ADDR_REGEX = r"(localhost|127\.0\.0\.1|\[::1\]):5432"
# Link-local and cloud metadata endpoints: the classic SSRF prize.
DEFAULT_DENY_NETWORKS = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128"


class ConfigError(ValueError):
    """A setting has a value we cannot use; the process exits with the message."""


@dataclass(frozen=True, slots=True)
class Config:
    listen_host: str = ""
    listen_port: int = 80
    allow_addr_regex: re.Pattern[str] | None = re.compile(DEFAULT_ALLOW_ADDR_REGEX)
    append_port: str = ""
    use_host_header: bool = False
    log_traffic: bool = False
    log_conn_info: bool = True
    prometheus_bind: tuple[str, int] | None = None
    tls_cert: str = ""
    tls_key: str = ""
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    max_connections_per_net: int = 200
    reserved_connections: int = 100  # resolved from RESERVED_CONNECTIONS ("10%" of 1000)
    no_traffic_timeout: float = 30.0
    memory_budget: int = 256 * 1024 * 1024
    idle_timeout: float = 3600.0
    connect_timeout: float = 10.0
    handshake_timeout: float = 10.0
    max_message_size: int = 16 * 1024 * 1024
    allowed_origins: frozenset[str] = frozenset()
    drain_timeout: float = 30.0
    ping_interval: float = 30.0
    auth_token: str = ""
    trusted_proxies: tuple[IPNetwork, ...] = ()
    deny_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)
    allow_special_networks: tuple[IPNetwork, ...] = DEFAULT_ALLOW_SPECIAL_NETWORKS
    event_loop: str = "auto"
    # SQL over HTTP (proxy/sqlhttp): off unless sql_http_listen is set
    sql_http_listen: tuple[str, int] | None = None
    sql_http_pool_size: int = 10
    sql_http_pool_idle_timeout: float = 60.0
    sql_http_statement_timeout: float = 30.0
    sql_http_max_body: int = 1 << 20
    sql_http_max_rows: int = 100_000
    sql_http_max_response: int = 10 << 20
    sql_http_rate_limit: int = 1000
    sql_http_cors_origins: str = ""
    sql_http_auth_token: str = ""
    sql_http_jwks_file: str = ""


def parse_bool(text: str) -> bool:
    """What Go's strconv.ParseBool accepts (wsproxy parses env with it), plus yes/no/on/off."""
    low = text.strip().lower()
    if low in ("1", "t", "true", "yes", "y", "on"):
        return True
    if low in ("0", "f", "false", "no", "n", "off", ""):
        return False
    raise ConfigError(f"not a boolean: {text!r}")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds as a number ("2.5") or a Go duration ("1m30s", "500ms"), so either habit works."""
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION.finditer(t):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos != len(t) or not t:
            raise ConfigError(f"not a duration: {text!r}") from None
    if value < 0:
        raise ConfigError(f"negative duration: {text!r}")
    return value


def parse_size(text: str) -> int:
    """Bytes, optionally with a binary suffix (K, M, G), since sizes are usually round MiB."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]i?B?)?\s*", text, re.IGNORECASE)
    if not m:
        raise ConfigError(f"not a size: {text!r}")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(m.group(2) or "")[:1].lower()]
    return int(m.group(1)) * mult


def check_readable_file(name: str, path: str) -> None:
    """Name the setting and the path, so a typo reads as one line, not an ssl traceback.

    Raises:
        ConfigError: the file is absent, a directory, or not readable by this user.
    """
    if not os.path.exists(path):
        raise ConfigError(f"{name}: file not found: {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{name}: not a file: {path}")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{name}: file not readable by this user: {path}")


def parse_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise ConfigError(f"not an integer: {text!r}") from None
    if n < 0:
        raise ConfigError(f"negative count: {text!r}")
    return n


def parse_share(text: str) -> int | float:
    """A count ("100") or a fraction given as a percentage ("10%" -> 0.1)."""
    t = text.strip()
    if t.endswith("%"):
        try:
            pct = float(t[:-1])
        except ValueError:
            raise ConfigError(f"not a percentage: {text!r}") from None
        if not 0 <= pct <= 100:
            raise ConfigError(f"percentage out of range 0-100: {text!r}")
        return pct / 100
    return parse_count(t)


def parse_hostport(text: str) -> tuple[str, int]:
    """Go's listen syntax: ":9876" (all interfaces), "host:9876" or "[::1]:9876"."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"expected [host]:port, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def parse_optional_hostport(text: str) -> tuple[str, int] | None:
    return parse_hostport(text) if text.strip() else None


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def parse_regex(text: str) -> re.Pattern[str] | None:
    """An empty regex allows every target, exactly as in wsproxy (the server warns loudly)."""
    if text == "":
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        # load() prefixes the setting's name; saying it again here read as a stutter.
        raise ConfigError(f"{text!r} is not a regular expression: {exc}") from None


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def parse_event_loop(text: str) -> str:
    low = text.strip().lower()
    if low not in EVENT_LOOPS:
        raise ConfigError(f"expected one of {', '.join(EVENT_LOOPS)}, got {text!r}")
    return low


@dataclass(frozen=True, slots=True)
class _Setting:
    env: str
    default: str
    help: str
    parse: Callable[[str], Any]
    is_bool: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.env.lower().replace("_", "-")


_SETTINGS: tuple[_Setting, ...] = (
    _Setting("LISTEN_PORT", ":80", "address to listen on, [host]:port", parse_hostport),
    _Setting(
        "ALLOW_ADDR_REGEX",
        DEFAULT_ALLOW_ADDR_REGEX,
        "regex the whole target host:port must match; empty allows every target",
        parse_regex,
    ),
    _Setting("APPEND_PORT", "", "string appended to the target, e.g. ':5432'", str),
    _Setting("USE_HOST_HEADER", "false", "take the target from the Host header", parse_bool, True),
    _Setting(
        "LOG_TRAFFIC", "false", "log message sizes and Postgres message types", parse_bool, True
    ),
    _Setting("LOG_CONN_INFO", "true", "log each connection's open and close", parse_bool, True),
    _Setting(
        "PROMETHEUS_BIND",
        "",
        "[host]:port serving /metrics; empty disables",
        parse_optional_hostport,
    ),
    _Setting("TLS_CERT", "", "PEM certificate chain; with TLS_KEY serves wss://", str),
    _Setting("TLS_KEY", "", "PEM private key for TLS_CERT", str),
    _Setting("MAX_CONNECTIONS", "1000", "relays at once; more get 503 (0 = no limit)", parse_count),
    _Setting(
        "MAX_CONNECTIONS_PER_IP",
        "100",
        "relays per client IP; more get 503 (0 = no limit)",
        parse_count,
    ),
    _Setting(
        "MAX_CONNECTIONS_PER_NET",
        "200",
        "relays per client network (/24 of IPv4, /64 of IPv6); more get 503 (0 = no limit)",
        parse_count,
    ),
    _Setting(
        "RESERVED_CONNECTIONS",
        "10%",
        "slots of MAX_CONNECTIONS kept for networks holding no relay yet, a count or a "
        "percentage (0 = none)",
        parse_share,
    ),
    _Setting(
        "NO_TRAFFIC_TIMEOUT",
        "30s",
        "close a relay whose client sent nothing this long after the upgrade (0 = never)",
        parse_duration,
    ),
    _Setting(
        "MEMORY_BUDGET",
        "256MiB",
        "bytes all relays may hold in buffers; above it new upgrades get 503 (0 = no limit)",
        parse_size,
    ),
    _Setting(
        "IDLE_TIMEOUT",
        "1h",
        "close a relay after this long without traffic (0 = never)",
        parse_duration,
    ),
    _Setting("CONNECT_TIMEOUT", "10s", "time allowed to connect upstream", parse_duration),
    _Setting(
        "HANDSHAKE_TIMEOUT", "10s", "time allowed for the TLS and HTTP upgrade", parse_duration
    ),
    _Setting(
        "MAX_MESSAGE_SIZE",
        "16MiB",
        "largest client WebSocket message; larger closes with 1009",
        parse_size,
    ),
    _Setting(
        "ALLOWED_ORIGINS", "", "comma-separated Origin values admitted; empty admits all", str
    ),
    _Setting(
        "DRAIN_TIMEOUT", "30s", "on SIGTERM, how long active relays may finish", parse_duration
    ),
    _Setting(
        "PING_INTERVAL",
        "30s",
        "server ping period keeping load balancers open (0 = off)",
        parse_duration,
    ),
    _Setting(
        "AUTH_TOKEN",
        "",
        "shared secret required as 'Authorization: Bearer' or ?token= (empty = not required)",
        str,
    ),
    _Setting(
        "TRUSTED_PROXIES",
        "",
        "CIDRs whose X-Forwarded-For names the real client",
        parse_networks,
    ),
    _Setting(
        "DENY_NETWORKS",
        DEFAULT_DENY_NETWORKS,
        "CIDRs never connected to, whatever the regex says and whatever "
        "ALLOW_SPECIAL_NETWORKS lists",
        parse_networks,
    ),
    _Setting(
        "ALLOW_SPECIAL_NETWORKS",
        DEFAULT_ALLOW_SPECIAL,
        "CIDRs excepted from the built-in deny list of IANA special-purpose ranges (0.0.0.0/8, "
        "::, loopback, link-local, fc00::/7, 100.64.0.0/10, documentation, NAT64, 6to4, "
        "Teredo, multicast...); IPv6 forms carrying an IPv4 address are also judged as that "
        "address; empty excepts none",
        parse_networks,
    ),
    _Setting(
        "EVENT_LOOP",
        "auto",
        "auto (uvloop when installed), uvloop, or asyncio (the standard library's loop)",
        parse_event_loop,
    ),
    # SQL over HTTP: Neon's /sql protocol on a listener of its own (proxy/sqlhttp)
    _Setting(
        "SQL_HTTP_LISTEN",
        "",
        "[host]:port serving POST /sql (Neon's SQL-over-HTTP protocol, the neon() client) "
        "from pooled backend connections; empty disables the endpoint",
        parse_optional_hostport,
    ),
    _Setting("SQL_HTTP_POOL_SIZE", "10", "backend connections per host/db/role", parse_count),
    _Setting(
        "SQL_HTTP_POOL_IDLE_TIMEOUT", "60s", "close pooled backends idle this long", parse_duration
    ),
    _Setting(
        "SQL_HTTP_STATEMENT_TIMEOUT",
        "30s",
        "statement_timeout of pooled backends (0 = none)",
        parse_duration,
    ),
    _Setting("SQL_HTTP_MAX_BODY", "1MiB", "largest request body; larger gets 413", parse_size),
    _Setting(
        "SQL_HTTP_MAX_ROWS",
        "100000",
        "rows per response; more gets 507 (0 = no limit)",
        parse_count,
    ),
    _Setting(
        "SQL_HTTP_MAX_RESPONSE",
        "10MiB",
        "bytes per response; larger gets 507 (0 = no limit)",
        parse_size,
    ),
    _Setting(
        "SQL_HTTP_RATE_LIMIT",
        "1000",
        "requests per second per client IP; more get 429 (0 = no limit)",
        parse_count,
    ),
    _Setting(
        "SQL_HTTP_CORS_ORIGINS",
        "",
        "comma-separated browser Origins allowed to call /sql, or '*'; empty sends no CORS",
        str,
    ),
    _Setting(
        "SQL_HTTP_AUTH_TOKEN",
        "",
        "secret required as 'Authorization: Bearer' on /sql (empty = not required)",
        str,
    ),
    _Setting(
        "SQL_HTTP_JWKS_FILE",
        "",
        "JWKS file: /sql also admits a bearer JWT signed by one of its keys (exp required)",
        str,
    ),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsproxy",
        description="WebSocket-to-TCP relay for Postgres, compatible with Neon's wsproxy. "
        "Every flag can also be set by the environment variable shown; the flag wins.",
    )
    for s in _SETTINGS:
        shown = s.default if s.default else "empty"
        helptext = f"{s.help} [env {s.env}, default: {shown}]".replace("%", "%%")
        if s.is_bool:
            p.add_argument(s.flag, nargs="?", const="true", metavar="BOOL", help=helptext)
        else:
            p.add_argument(s.flag, metavar=s.env, help=helptext)
    return p


def _resolve_share(share: int | float, total: int) -> int:
    return int(total * share) if isinstance(share, float) else share


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Build the config from flags, then environment, then defaults.

    Raises:
        ConfigError: a value does not parse; the caller prints it and exits non-zero.
        SystemExit: from argparse, for --help or an unknown flag.
    """
    args = vars(_parser().parse_args(argv))
    env = env if env is not None else {}
    raw: dict[str, str] = {}
    for s in _SETTINGS:
        value = args[s.env.lower()]
        raw[s.env] = value if value is not None else env.get(s.env, s.default)
    parsed: dict[str, Any] = {}
    for s in _SETTINGS:
        try:
            parsed[s.env] = s.parse(raw[s.env])
        except ConfigError as exc:
            raise ConfigError(f"{s.env}: {exc}") from None
    if bool(parsed["TLS_CERT"]) != bool(parsed["TLS_KEY"]):
        raise ConfigError("TLS_CERT and TLS_KEY must be set together")
    for name in ("TLS_CERT", "TLS_KEY"):
        if parsed[name]:
            check_readable_file(name, parsed[name])
    host, port = parsed["LISTEN_PORT"]
    max_total = parsed["MAX_CONNECTIONS"]
    origins = frozenset(o.strip() for o in parsed["ALLOWED_ORIGINS"].split(",") if o.strip())
    return Config(
        listen_host=host,
        listen_port=port,
        allow_addr_regex=parsed["ALLOW_ADDR_REGEX"],
        append_port=parsed["APPEND_PORT"],
        use_host_header=parsed["USE_HOST_HEADER"],
        log_traffic=parsed["LOG_TRAFFIC"],
        log_conn_info=parsed["LOG_CONN_INFO"],
        prometheus_bind=parsed["PROMETHEUS_BIND"],
        tls_cert=parsed["TLS_CERT"],
        tls_key=parsed["TLS_KEY"],
        max_connections=parsed["MAX_CONNECTIONS"],
        max_connections_per_ip=parsed["MAX_CONNECTIONS_PER_IP"],
        max_connections_per_net=parsed["MAX_CONNECTIONS_PER_NET"],
        reserved_connections=_resolve_share(parsed["RESERVED_CONNECTIONS"], max_total),
        no_traffic_timeout=parsed["NO_TRAFFIC_TIMEOUT"],
        memory_budget=parsed["MEMORY_BUDGET"],
        idle_timeout=parsed["IDLE_TIMEOUT"],
        connect_timeout=parsed["CONNECT_TIMEOUT"],
        handshake_timeout=parsed["HANDSHAKE_TIMEOUT"],
        max_message_size=parsed["MAX_MESSAGE_SIZE"],
        allowed_origins=origins,
        drain_timeout=parsed["DRAIN_TIMEOUT"],
        ping_interval=parsed["PING_INTERVAL"],
        auth_token=parsed["AUTH_TOKEN"],
        trusted_proxies=parsed["TRUSTED_PROXIES"],
        deny_networks=parsed["DENY_NETWORKS"],
        allow_special_networks=parsed["ALLOW_SPECIAL_NETWORKS"],
        event_loop=parsed["EVENT_LOOP"],
        **{s.env.lower(): parsed[s.env] for s in _SETTINGS if s.env.startswith("SQL_HTTP_")},
    )
