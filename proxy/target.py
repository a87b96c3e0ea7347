"""Where a relay may go: parse the requested host:port, apply the allow-list, resolve, deny."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from .config import IPNetwork
from .policy import DEFAULT_ALLOW_SPECIAL_NETWORKS, denial

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1123 host names (labels of letters, digits, hyphens; underscores seen in the wild).
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?")


class Refused(Exception):
    """The upgrade is answered with `status` and `reason`, and nothing is connected."""

    def __init__(self, status: int, reason: str, label: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.label = label  # metrics label: a small fixed set


def malformed(reason: str) -> Refused:
    return Refused(400, reason, "malformed")


def forbidden(reason: str, label: str = "not_allowed") -> Refused:
    return Refused(403, reason, label)


@dataclass(frozen=True, slots=True)
class Target:
    """A syntactically valid target; `text` is exactly what the allow-list saw."""

    text: str
    host: str  # without brackets
    port: int


def parse_target(text: str) -> Target:
    """Split "host:port" strictly; anything a URL parser might read differently is refused.

    Raises:
        Refused: 400 with the first problem found.
    """
    if not text:
        raise malformed("missing target address")
    if len(text) > 300:
        raise malformed("target address too long")
    if any(c in text for c in "@/\\?#% \t\r\n") or not text.isprintable() or not text.isascii():
        raise malformed("target address must be host:port only (no userinfo, path or escapes)")
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise malformed("bad IPv6 literal (expected [addr]:port)")
        host, port_text = text[1:end], text[end + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise malformed("bad IPv6 literal") from None
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise malformed("missing port in target address")
        if ":" in host:
            raise malformed("IPv6 targets must be bracketed: [addr]:port")
        if not _HOSTNAME.fullmatch(host):
            raise malformed("bad host name in target address")
    if not port_text.isdigit() or len(port_text) > 5:
        raise malformed("port must be a number")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise malformed("port out of range 1-65535")
    return Target(text, host, port)


def check_allowed(target: Target, regex: re.Pattern[str] | None) -> None:
    """The regex must match the whole string: a substring match would let evil.com:5432 in.

    Raises:
        Refused: 403 when the regex does not match.
    """
    if regex is not None and regex.fullmatch(target.text) is None:
        raise forbidden("proxying to specified address not allowed")


def is_denied(
    ip: IPAddress,
    deny: Sequence[IPNetwork],
    allow_special: Sequence[IPNetwork] = DEFAULT_ALLOW_SPECIAL_NETWORKS,
) -> bool:
    """Whether the address policy refuses `ip` (see policy.denial for why)."""
    return denial(ip, deny, allow_special) is not None


async def resolve(
    target: Target,
    deny: Sequence[IPNetwork],
    within: float,
    allow_special: Sequence[IPNetwork] = DEFAULT_ALLOW_SPECIAL_NETWORKS,
) -> list[str]:
    """Resolve once and keep only permitted IPs; the relay connects to these, never the name.

    Connecting to the checked IPs (not re-resolving the name) closes the DNS-rebinding window.

    Returns:
        IP strings in resolver order, at least one.

    Raises:
        Refused: 403 if every address is denied; 502 if the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within or None):
            infos = await loop.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
    except (OSError, TimeoutError) as exc:
        raise Refused(502, f"cannot resolve target host: {exc}", "resolve_failed") from None
    allowed: list[str] = []
    denied: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = denial(ip, deny, allow_special)
        if why is None and str(ip) not in allowed:
            allowed.append(str(ip))
        elif why is not None and why not in denied:
            denied.append(why)
    if not allowed:
        raise forbidden(
            f"target resolves to a denied address ({'; '.join(denied)})"[:300], "denied_network"
        )
    return allowed
