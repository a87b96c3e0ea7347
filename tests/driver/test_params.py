"""Connection parameters: URL parsing, keyword overrides, PG* fallbacks, global config."""

from __future__ import annotations

import pytest

import driver
from driver.params import resolve


def test_url_parts_are_percent_decoded() -> None:
    p = resolve("postgresql://us%40er:p%2Fw%3A@db.example:6543/my%20db")
    assert (p.user, p.password, p.host, p.port, p.database) == (
        "us@er", "p/w:", "db.example", 6543, "my db",
    )  # fmt: skip


def test_postgres_scheme_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"):
        monkeypatch.delenv(var, raising=False)
    p = resolve("postgres://alice@/")
    assert (p.host, p.port, p.user, p.database, p.sslmode) == (
        "localhost", 5432, "alice", "alice", "prefer",
    )  # fmt: skip


def test_query_parameters() -> None:
    p = resolve(
        "postgres://u@h/d?sslmode=require&application_name=app&options=-c%20search_path%3Dx"
        "&connect_timeout=7&dbname=other"
    )
    assert p.sslmode == "require" and p.connect_timeout == 7.0 and p.database == "other"
    assert p.server_settings == {"application_name": "app", "options": "-c search_path=x"}


def test_keywords_override_url_and_env_fills_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-env")
    monkeypatch.setenv("PGPORT", "7777")
    monkeypatch.setenv("PGDATABASE", "envdb")
    p = resolve("postgres://u@h/urldb", database="kwdb")
    assert (p.password, p.port, p.database) == ("from-env", 7777, "kwdb")
    assert resolve("postgres://u:urlpw@h").password == "urlpw"


def test_ipv6_host_and_proxy_url() -> None:
    p = resolve("postgres://u@[::1]:5433/d", ws_proxy="proxy:9876/v1")
    assert p.host == "::1"
    assert p.proxy_url() == "wss://proxy:9876/v1?address=[::1]:5433"
    p = resolve("postgres://u@h/d", ws_proxy=lambda h, port: f"p/{h}/{port}",
                use_secure_websocket=False)  # fmt: skip
    assert p.proxy_url() == "ws://p/h/5432"
    assert "via ws://p/h/5432" in p.describe()


def test_process_wide_config_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver.config, "ws_proxy", "relay:1/v2")
    monkeypatch.setattr(driver.config, "use_secure_websocket", False)
    assert resolve("postgres://u@h/d").proxy_url() == "ws://relay:1/v2?address=h:5432"
    assert resolve("postgres://u@h/d", transport="tcp").proxy_url() is None
    assert resolve("postgres://u@h/d", ws_proxy="mine:2").proxy_url().startswith("ws://mine:2")


@pytest.mark.parametrize(
    ("dsn", "kwargs", "match"),
    [
        ("", {}, "empty DSN"),
        ("http://h/d", {}, "postgres://"),
        ("postgres://u@h:99999999/d", {}, "(?i)port"),
        ("postgres://u@h/d?bogus=1", {}, "bogus"),
        ("postgres://u@h/d?sslmode=maybe", {}, "sslmode"),
        ("postgres://u@h/d", {"transport": "websocket"}, "ws_proxy"),
        ("postgres://u@h/d", {"transport": "carrier-pigeon"}, "transport"),
        ("postgres://u@h/d", {"colour": "blue"}, "colour"),
    ],
)
def test_bad_parameters_fail_at_once(dsn: str, kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(driver.InterfaceError, match=match):
        resolve(dsn, **kwargs)


def test_asyncpg_ssl_argument() -> None:
    import ssl

    assert resolve("postgres://u@h/d", ssl=False).sslmode == "disable"
    assert resolve("postgres://u@h/d", ssl=True).sslmode == "verify-full"
    ctx = ssl.create_default_context()
    p = resolve("postgres://u@h/d", ssl=ctx)
    assert p.ssl_context is ctx and p.sslmode == "require"


def test_sslrootcert_system_defaults_to_verify_full() -> None:
    from driver.params import resolve

    assert resolve("postgresql://u@h/db?sslrootcert=system").sslmode == "verify-full"
    assert resolve("postgresql://u@h/db").sslmode == "prefer"
    assert resolve("postgresql://u@h/db?sslrootcert=system&sslmode=verify-ca").sslmode == (
        "verify-ca"
    )
