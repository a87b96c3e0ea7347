"""Which IP addresses a relay may connect to, whatever ALLOW_ADDR_REGEX says.

The regex judges the text the client asked for; this judges the address actually connected
to. An IPv6 address can carry an IPv4 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo)
and reach it through the host's stack or a translator, so every IPv4 address it carries is
judged too: `[::ffff:169.254.169.254]` is as denied as `169.254.169.254`.

The special-purpose ranges of the IANA registries (iana-ipv4-special-registry,
iana-ipv6-special-registry) are denied by default: they are where SSRF finds loopback
services, cloud metadata, link-local hosts and addresses that mean "this host" (`0.0.0.0` and
`::` connect to local services). An operator who needs one lists it in ALLOW_SPECIAL_NETWORKS;
the default lists loopback (the default target is a local Postgres) and the RFC 1918 private
ranges (where databases on a private network live).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# iana-ipv4-special-registry, plus multicast and the cloud metadata address in CGNAT space.
SPECIAL_IPV4 = (
    "0.0.0.0/8",  # "this network"; 0.0.0.0 connects to local services
    "10.0.0.0/8",  # private-use
    "100.64.0.0/10",  # shared address space (CGNAT; 100.100.100.200 is a metadata endpoint)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local (169.254.169.254: cloud metadata)
    "172.16.0.0/12",  # private-use
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.31.196.0/24",  # AS112-v4
    "192.52.193.0/24",  # AMT
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",  # private-use
    "192.175.48.0/24",  # direct delegation AS112
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255 limited broadcast
)
# iana-ipv6-special-registry (forms carrying IPv4 are also unwrapped, see embedded_ipv4).
SPECIAL_IPV6 = (
    "::/128",  # unspecified: connects to local services
    "::1/128",  # loopback
    "::/96",  # deprecated IPv4-compatible
    "::ffff:0:0/96",  # IPv4-mapped
    "64:ff9b::/96",  # NAT64 well-known prefix
    "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
    "100::/64",  # discard-only
    "2001::/23",  # IETF protocol assignments (Teredo 2001::/32 among them)
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing SIDs
    "fc00::/7",  # unique-local (fd00:ec2::254: cloud metadata)
    "fe80::/10",  # link-local
    "fec0::/10",  # deprecated site-local
    "ff00::/8",  # multicast
)
SPECIAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in SPECIAL_IPV4 + SPECIAL_IPV6
)
# The exceptions a fresh proxy makes: a local Postgres (the default target) and private IPv4.
DEFAULT_ALLOW_SPECIAL = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
DEFAULT_ALLOW_SPECIAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n) for n in DEFAULT_ALLOW_SPECIAL.split(",")
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_COMPAT = ipaddress.ip_network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> Iterator[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address may deliver to, by the standard embeddings."""
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo  # (server, client)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if (ip in _COMPAT and int(ip) > 1) or ip in _NAT64:  # :: and ::1 are not IPv4-compatible
        yield low32
    elif ip in _NAT64_LOCAL:  # RFC 8215: the IPv4 address may sit at any RFC 6052 offset
        yield low32
        yield ipaddress.IPv4Address((int(ip) >> 32) & 0xFFFFFFFF)


def forms(ip: IPAddress) -> list[IPAddress]:
    """The address itself, then every IPv4 address it carries."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        found.extend(embedded_ipv4(ip))
    return found


def denial(
    ip: IPAddress, deny: Sequence[IPNetwork], allow_special: Sequence[IPNetwork]
) -> str | None:
    """Why a relay may not connect to `ip`, or None when it may.

    Every form must pass (the address and each IPv4 address it carries): DENY_NETWORKS always
    wins, and a special-purpose range is refused unless ALLOW_SPECIAL_NETWORKS lists that form.
    So `[::ffff:127.0.0.1]` needs `::ffff:0:0/96` listed as well as loopback: an exception is
    never granted through a wrapper nobody named.
    """
    for form in forms(ip):
        if any(form in net for net in deny):
            return f"{form} is in DENY_NETWORKS"
        special = next((net for net in SPECIAL_NETWORKS if form in net), None)
        if special is not None and not any(form in net for net in allow_special):
            return f"{form} is special-purpose ({special})"
    return None
