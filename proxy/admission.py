"""Who may open a relay, to where, and how many: every check made before the upgrade."""

from __future__ import annotations

import hmac
import ipaddress
from collections import Counter
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers

from .config import Config, IPNetwork
from .target import Refused, Target, check_allowed, forbidden, malformed, parse_target


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def client_ip(peer_ip: str, headers: Headers, trusted: Sequence[IPNetwork]) -> str:
    """The real client: X-Forwarded-For is believed only from trusted proxies.

    Walk the chain from the right, skipping our own trusted hops; the first untrusted
    address is the client. A client can prepend anything, so the left end is never used.
    """
    addr = _ip(peer_ip)
    if addr is None or not any(addr in net for net in trusted):
        return peer_ip
    hops = [h.strip() for v in headers.get_all("X-Forwarded-For") for h in v.split(",")]
    client = peer_ip
    for hop in reversed([h for h in hops if h]):
        hop_ip = _ip(hop)
        if hop_ip is None:
            break
        client = str(hop_ip)
        if not any(hop_ip in net for net in trusted):
            break
    return client


def check_upgrade(headers: Headers) -> None:
    upgrade = ",".join(headers.get_all("Upgrade")).lower()
    if "websocket" not in upgrade:
        raise Refused(426, "WebSocket upgrade expected", "not_websocket")


def check_origin(headers: Headers, allowed: frozenset[str]) -> None:
    """Browsers always send Origin; with a list set, a missing Origin is refused too."""
    if not allowed:
        return
    origin = headers.get("Origin")
    if origin is None or origin not in allowed:
        raise forbidden("origin not allowed", "origin")


def check_token(headers: Headers, query: dict[str, list[str]], token: str) -> None:
    """Constant-time comparison, so the secret cannot be guessed byte by byte from timing."""
    if not token:
        return
    offered = query.get("token", [])
    auth = headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        offered = [*offered, auth[7:].strip()]
    if not any(hmac.compare_digest(o.encode(), token.encode()) for o in offered):
        raise forbidden("missing or wrong token", "token")


def requested_target(query: dict[str, list[str]], headers: Headers, cfg: Config) -> Target:
    """The target as wsproxy computes it (address param or Host header, plus APPEND_PORT).

    Raises:
        Refused: 400 when malformed, 403 when the allow-list says no.
    """
    if cfg.use_host_header:
        hosts = headers.get_all("Host")
        if len(hosts) != 1:
            raise malformed("exactly one Host header required")
        text = hosts[0]
    else:
        addresses = query.get("address", [])
        if len(addresses) > 1:
            raise malformed("several address parameters")
        if not addresses:
            raise malformed("missing address parameter")
        text = addresses[0]
    target = parse_target(text + cfg.append_port)
    check_allowed(target, cfg.allow_addr_regex)
    return target


def query_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query, keep_blank_values=True)


class Limits:
    """Counts relays (admitted upgrades until their handler ends) in total and per client IP."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.max_total = total
        self.max_per_ip = per_ip
        self.total = 0
        self.by_ip: Counter[str] = Counter()

    def acquire(self, ip: str) -> None:
        """Take a slot; the caller must call release(ip) exactly once afterwards.

        Raises:
            Refused: 503 when a limit is reached.
        """
        if self.max_total and self.total >= self.max_total:
            raise Refused(503, "too many connections", "max_connections")
        if self.max_per_ip and self.by_ip[ip] >= self.max_per_ip:
            raise Refused(503, "too many connections from your address", "max_per_ip")
        self.total += 1
        self.by_ip[ip] += 1

    def release(self, ip: str) -> None:
        self.total -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]
