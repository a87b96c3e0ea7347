"""Where the visitor is: explicit coordinates, CDN headers, GeoIP of the client address, or a
default place, in that order.

The client address is the request's, which uvicorn's ProxyHeadersMiddleware (installed by
main.py with TRUSTED_PROXIES) takes from `X-Forwarded-For` hops added by proxies the operator
trusts only; anything else a client sends in that header could be forged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maxminddb.errors import InvalidDatabaseError

from app.geo import Point
from app.settings import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# header names (lower case) per CDN: latitude, longitude, city, country
CDN_HEADERS: dict[str, tuple[str, str, str, str]] = {
    "cloudflare": ("cf-iplatitude", "cf-iplongitude", "cf-ipcity", "cf-ipcountry"),
    "vercel": (
        "x-vercel-ip-latitude",
        "x-vercel-ip-longitude",
        "x-vercel-ip-city",
        "x-vercel-ip-country",
    ),
}


@dataclass(frozen=True, slots=True)
class Located:
    """A position and how it was found, as the response reports it."""

    point: Point
    via_ip: bool
    location: str
    # what the answer depends on besides the URL; "" when only on the URL
    depends_on: str


def default_geoip_path() -> Path | None:
    """The GeoLite2 City file shipped by `maxminddb-geolite2`, if that package is installed."""
    try:
        import _maxminddb_geolite2  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(_maxminddb_geolite2.geolite2_database())


class GeoIPReader:
    """A geoip2 City reader that reopens itself when the file is replaced on disk.

    Opened once per worker in the lifespan; `city()` compares the file's identity (inode, size,
    mtime) on each lookup, which costs one stat, so a refreshed database is picked up without
    a restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: Any = None
        self._identity: tuple[int, int, int] | None = None
        self._open()

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _open(self) -> None:
        import geoip2.database

        identity = self._stat()
        reader = geoip2.database.Reader(str(self.path))
        if self._reader is not None:
            self._reader.close()
        self._reader, self._identity = reader, identity

    def city(self, ip: IPAddress) -> Any:
        """The City record, or None when the address is not in the database.

        Raises:
            OSError, ValueError or InvalidDatabaseError: the file vanished or is broken.
        """
        import geoip2.errors

        if self._stat() != self._identity:
            log.info("GeoIP database %s changed on disk; reopening it", self.path)
            self._open()
        try:
            return self._reader.city(ip)
        except geoip2.errors.AddressNotFoundError:
            return None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def open_reader(path: Path | None) -> GeoIPReader | None:
    """The reader for `path` (default: the packaged GeoLite2), or None with one log line."""
    path = path or default_geoip_path()
    if path is None:
        log.warning("no GeoIP database: visitors without coordinates get the default place")
        return None
    try:
        return GeoIPReader(path)
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        log.warning("GeoIP database %s unusable (%s): using the default place", path, exc)
        return None


def parse_ip(text: str | None) -> IPAddress | None:
    """The address of a client host string, None for anything unparsable (e.g. a forged hop)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.9:443"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_public(ip: IPAddress) -> bool:
    """False for private, loopback, link-local, reserved, multicast and unspecified addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _float(text: str | None, low: float, high: float) -> float | None:
    try:
        x = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return x if math.isfinite(x) and low <= x <= high else None


def _place(*parts: str | None) -> str:
    return ", ".join(p for p in parts if p)


def from_cdn(headers: Mapping[str, str], cdn: str) -> Located | None:
    """A position from the CDN's geolocation headers, when that CDN is configured."""
    names = CDN_HEADERS.get(cdn)
    if names is None:
        return None
    lat = _float(headers.get(names[0]), -90, 90)
    lon = _float(headers.get(names[1]), -180, 180)
    if lat is None or lon is None:
        return None
    from urllib.parse import unquote

    place = _place(unquote(headers.get(names[2], "")), headers.get(names[3], ""))
    return Located(
        Point(lat, lon),
        True,
        f"{place or 'somewhere'} (from your IP address, via {cdn})",
        ",".join(names),
    )


def from_geoip(reader: GeoIPReader | None, ip: IPAddress | None) -> Located | None:
    """A position from the GeoIP database, or None (logged once, without a traceback)."""
    if reader is None or ip is None:
        return None
    if not is_public(ip):
        log.info("client address %s is not public: using the default place", ip)
        return None
    try:
        record = reader.city(ip)
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        log.warning("GeoIP lookup failed for %s: %s", ip, exc)
        return None
    if record is None or record.location.latitude is None or record.location.longitude is None:
        log.info("client address %s is not in the GeoIP database: using the default place", ip)
        return None
    place = _place(record.city.name, record.country.name)
    return Located(
        Point(float(record.location.latitude), float(record.location.longitude)),
        True,
        f"{place or 'somewhere'} (from your IP address)",
        "x-forwarded-for",
    )


def default_place(settings: Settings) -> Located:
    return Located(
        Point(settings.default_latitude, settings.default_longitude),
        True,
        f"{settings.default_place} (default: your location could not be found)",
        "x-forwarded-for",
    )


def locate(
    settings: Settings,
    reader: GeoIPReader | None,
    headers: Mapping[str, str],
    client_host: str | None,
) -> Located:
    """Where a request comes from when it gave no coordinates, by the documented order.

    `client_host` is the request's client as the proxy-headers middleware left it.
    """
    return (
        from_cdn(headers, settings.cdn_headers)
        or from_geoip(reader, parse_ip(client_host))
        or default_place(settings)
    )
