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


def network_of(ip: str) -> str:
    """The block one holder usually has: a /24 of IPv4, a /64 of IPv6 (an ISP hands a home or a
    VM a whole /64, so per-address limits alone are no limit there)."""
    addr = _ip(ip)
    if addr is None:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network((addr, prefix), strict=False))


class Limits:
    """Counts relays (admitted upgrades until their handler ends) in total, per client IP and
    per client network, and keeps `reserve` of the total for networks holding no relay: a few
    addresses holding idle relays cannot lock everyone else out."""

    def __init__(self, total: int, per_ip: int, per_net: int = 0, reserve: int = 0) -> None:
        self.max_total = total
        self.max_per_ip = per_ip
        self.max_per_net = per_net
        self.reserve = min(reserve, total - 1) if total else 0
        self.total = 0
        self.by_ip: Counter[str] = Counter()
        self.by_net: Counter[str] = Counter()

    def acquire(self, ip: str) -> None:
        """Take a slot; the caller must call release(ip) exactly once afterwards.

        Raises:
            Refused: 503 when a limit is reached.
        """
        net = network_of(ip)
        if self.max_total and self.total >= self.max_total:
            raise Refused(503, "too many connections", "max_connections")
        if self.max_per_ip and self.by_ip[ip] >= self.max_per_ip:
            raise Refused(503, "too many connections from your address", "max_per_ip")
        if self.max_per_net and self.by_net[net] >= self.max_per_net:
            raise Refused(503, "too many connections from your network", "max_per_net")
        if self.reserve and self.by_net[net] and self.total >= self.max_total - self.reserve:
            # The last slots go to networks that hold none yet.
            raise Refused(503, "too many connections", "reserve")
        self.total += 1
        self.by_ip[ip] += 1
        self.by_net[net] += 1

    def release(self, ip: str) -> None:
        net = network_of(ip)
        self.total -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]
        self.by_net[net] -= 1
        if self.by_net[net] <= 0:
            del self.by_net[net]
