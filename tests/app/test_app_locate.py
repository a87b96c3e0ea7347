"""Finding the visitor without coordinates: trusted X-Forwarded-For, CDN headers, GeoIP, and
the default place."""

from __future__ import annotations

import ipaddress
import logging
import shutil
from pathlib import Path

import pytest
from fastapi import Request

from app.locate import (
    GeoIPReader,
    default_geoip_path,
    from_cdn,
    is_public,
    locate,
    open_reader,
    parse_ip,
)
from app.main import create_app
from app.settings import Settings
from tests.app.apphelp import serve

# An address of the public GeoIP test data's network range that the packaged GeoLite2 file
# places in a city (London area); stable because the packaged file never changes.
PUBLIC_IP = "81.2.69.142"


def nets(*cidrs: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(c) for c in cidrs]


async def _client_seen(
    trusted: str, peer: str, forwarded_for: list[str]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client address the app's handlers see, after main.py's proxy-headers middleware."""
    proxies = nets(*trusted.split(",")) if trusted else []
    settings = Settings(db_mode="connect", trusted_proxies=proxies)
    app = create_app(settings)

    @app.get("/test/client")
    async def client(request: Request) -> dict[str, str | None]:
        return {"host": request.client.host if request.client else None}

    async with serve(settings, client_ip=peer, app=app) as (_, http):
        r = await http.get("/test/client", headers=[("x-forwarded-for", v) for v in forwarded_for])
    assert r.status_code == 200
    host: str | None = r.json()["host"]
    return parse_ip(host)


async def test_untrusted_peer_is_the_client_whatever_the_header_says() -> None:
    seen = await _client_seen("", "198.51.100.7", ["203.0.113.9"])
    assert seen == ipaddress.ip_address("198.51.100.7")
    # a trusted network that does not hold the peer changes nothing either
    seen = await _client_seen("10.0.0.0/8", "198.51.100.7", ["203.0.113.9"])
    assert seen == ipaddress.ip_address("198.51.100.7")


async def test_walk_right_to_left_over_trusted_proxies_only() -> None:
    trusted = "10.0.0.0/8"
    # a client forged the first entry; the real client is the first untrusted hop from the right
    xff = ["6.6.6.6, 203.0.113.9", "10.1.1.1"]
    assert await _client_seen(trusted, "10.0.0.2", xff) == ipaddress.ip_address("203.0.113.9")
    assert await _client_seen(trusted, "10.0.0.2", ["10.9.9.9"]) == ipaddress.ip_address("10.9.9.9")
    assert await _client_seen(trusted, "10.0.0.2", []) == ipaddress.ip_address("10.0.0.2")
    assert await _client_seen(trusted, "10.0.0.2", ["garbage"]) is None
    assert await _client_seen(trusted, "10.0.0.2", ["[2001:db8::1]:443"]) == ipaddress.ip_address(
        "2001:db8::1"
    )
    assert await _client_seen(trusted, "10.0.0.2", ["203.0.113.9:5555"]) == ipaddress.ip_address(
        "203.0.113.9"
    )


def test_private_loopback_and_reserved_addresses_are_not_public() -> None:
    for text in (
        "10.1.2.3",
        "127.0.0.1",
        "::1",
        "169.254.1.1",
        "240.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:192.168.1.1",
        "fc00::1",
    ):
        assert not is_public(ipaddress.ip_address(text)), text
    assert is_public(ipaddress.ip_address(PUBLIC_IP))
    assert is_public(ipaddress.ip_address("::ffff:" + PUBLIC_IP))


@pytest.fixture(scope="module")
def reader() -> GeoIPReader:
    r = open_reader(None)
    assert r is not None, "maxminddb-geolite2 should ship its GeoLite2 City file"
    return r


def test_geoip_finds_a_public_address(reader: GeoIPReader) -> None:
    where = locate(Settings(), reader, {}, PUBLIC_IP)
    assert where.via_ip
    assert "(from your IP address)" in where.location and "United Kingdom" in where.location
    assert 49 < where.point.latitude < 55 and -3 < where.point.longitude < 1


def test_a_private_client_gets_the_default_place(reader: GeoIPReader) -> None:
    # what a forged header from an untrusted peer leaves (see the two tests above)
    where = locate(Settings(), reader, {}, "127.0.0.1")
    assert where.location.startswith("San Francisco (default")
    assert (where.point.latitude, where.point.longitude) == (37.7749, -122.4194)


def test_unknown_addresses_fall_back_with_one_log_line(
    reader: GeoIPReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.locate")
    settings = Settings()
    where = locate(settings, reader, {}, "192.168.0.5")
    assert where.location.startswith("San Francisco")
    # documentation range: public-looking but absent from the database
    where = locate(settings, reader, {}, "2001:db8::5")
    assert where.location.startswith("San Francisco")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "not public" in messages[0]
    assert all(r.exc_info is None for r in caplog.records)


def test_cdn_headers_only_when_enabled() -> None:
    cf = {
        "cf-iplatitude": "48.85",
        "cf-iplongitude": "2.35",
        "cf-ipcity": "Paris",
        "cf-ipcountry": "FR",
    }
    assert locate(Settings(), None, cf, "127.0.0.1").location.startswith("San Francisco")
    where = locate(Settings(cdn_headers="cloudflare"), None, cf, "127.0.0.1")
    assert (where.point.latitude, where.point.longitude) == (48.85, 2.35)
    assert where.location == "Paris, FR (from your IP address, via cloudflare)"
    assert "cf-iplatitude" in where.depends_on
    vercel = {
        "x-vercel-ip-latitude": "35.68",
        "x-vercel-ip-longitude": "139.69",
        "x-vercel-ip-city": "T%C5%8Dky%C5%8D",
        "x-vercel-ip-country": "JP",
    }
    where = locate(Settings(cdn_headers="vercel"), None, vercel, "127.0.0.1")
    assert where.location.startswith("Tōkyō, JP")
    assert from_cdn({"cf-iplatitude": "nan", "cf-iplongitude": "2"}, "cloudflare") is None
    assert from_cdn({"cf-iplatitude": "91", "cf-iplongitude": "2"}, "cloudflare") is None


def test_reader_reopens_when_the_file_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    packaged = default_geoip_path()
    assert packaged is not None
    path = tmp_path / "city.mmdb"
    shutil.copyfile(packaged, path)
    r = GeoIPReader(path)
    before = r._reader
    assert r.city(ipaddress.ip_address(PUBLIC_IP)) is not None
    assert r._reader is before  # unchanged file: no reopen
    fresh = tmp_path / "city.new"
    shutil.copyfile(packaged, fresh)
    fresh.replace(path)  # how operators swap the file: atomic rename, new inode
    caplog.set_level(logging.INFO, logger="app.locate")
    assert r.city(ipaddress.ip_address(PUBLIC_IP)) is not None
    assert r._reader is not before
    assert any("reopening" in rec.getMessage() for rec in caplog.records)
    r.close()


def test_missing_or_broken_database_means_default_place(tmp_path: Path) -> None:
    assert open_reader(tmp_path / "absent.mmdb") is None
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a maxmind file")
    assert open_reader(bad) is None
