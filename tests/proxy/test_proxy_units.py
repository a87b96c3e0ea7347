"""Pure functions of the proxy: target parsing, allow-list, deny-list, XFF, config, traffic log."""

from __future__ import annotations

import ipaddress
import logging
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.datastructures import Headers

from proxy.admission import client_ip
from proxy.allowlist import never_matches_host_port
from proxy.config import ConfigError, load, parse_duration, parse_networks
from proxy.policy import DEFAULT_ALLOW_SPECIAL_NETWORKS, denial, forms
from proxy.target import Refused, check_allowed, is_denied, parse_target
from proxy.traffic import TrafficLog
from tests.proxy.conftest import ROOT, pg_query, pg_startup


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("localhost:5432", "localhost", 5432),
        ("db.example.com:1", "db.example.com", 1),
        ("10.0.0.1:65535", "10.0.0.1", 65535),
        ("[::1]:5432", "::1", 5432),
        ("[2001:db8::5]:6543", "2001:db8::5", 6543),
        ("ep-cool-name-123.eu-central-1.aws.neon.tech:5432", None, 5432),
    ],
)
def test_good_targets_parse(text: str, host: str | None, port: int) -> None:
    t = parse_target(text)
    assert (t.host if host else None, t.port, t.text) == (host, port, text)


@given(st.text(max_size=40))
def test_parse_target_only_ever_refuses_with_400(text: str) -> None:
    try:
        t = parse_target(text)
    except Refused as exc:
        assert exc.status == 400
    else:
        assert 1 <= t.port <= 65535 and t.text == text and "@" not in text and "/" not in text


def test_allow_list_matches_the_whole_string() -> None:
    rx = re.compile(r"db\.example:5432")
    check_allowed(parse_target("db.example:5432"), rx)
    for bad in ("db.example:54321", "xdb.example:5432", "db.example.evil.com:5432"):
        with pytest.raises(Refused) as info:
            check_allowed(parse_target(bad), rx)
        assert info.value.status == 403
    check_allowed(parse_target("anything.at.all:1"), None)  # empty regex: allow all


def test_deny_list_covers_mapped_ipv4() -> None:
    deny = parse_networks("169.254.0.0/16,fe80::/10,fd00:ec2::254/128")
    for ip in ("169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254"):
        assert is_denied(ipaddress.ip_address(ip), deny)
    for ip in ("127.0.0.1", "::1", "10.1.2.3", "8.8.8.8"):
        assert not is_denied(ipaddress.ip_address(ip), deny)
    # Unique-local is special-purpose now: denied with or without DENY_NETWORKS.
    assert is_denied(ipaddress.ip_address("fd00:ec2::253"), ())


def test_forwarded_for_is_believed_only_from_trusted_peers() -> None:
    trusted = parse_networks("127.0.0.1/32,10.9.0.0/16")
    h = Headers([("X-Forwarded-For", "6.6.6.6, 1.2.3.4"), ("X-Forwarded-For", "10.9.0.7")])
    assert client_ip("127.0.0.1", h, trusted) == "1.2.3.4"  # skips the trusted hop
    assert client_ip("192.0.2.1", h, trusted) == "192.0.2.1"  # untrusted peer: ignored
    assert client_ip("127.0.0.1", Headers(), trusted) == "127.0.0.1"


def test_config_reads_wsproxy_env_and_flags_win() -> None:
    env = {
        "LISTEN_PORT": ":9876",
        "ALLOW_ADDR_REGEX": r"^[a-zA-Z\-0-9\.]*\.neon\.tech\:5432$",  # wsproxy's own default
        "APPEND_PORT": ":5432",
        "USE_HOST_HEADER": "true",
        "LOG_TRAFFIC": "1",
        "LOG_CONN_INFO": "false",
        "PROMETHEUS_BIND": ":2112",
        "IDLE_TIMEOUT": "1m30s",
        "MAX_MESSAGE_SIZE": "1MiB",
    }
    cfg = load([], env)
    assert (cfg.listen_host, cfg.listen_port) == ("", 9876)
    assert cfg.allow_addr_regex is not None
    assert cfg.allow_addr_regex.fullmatch("ep-x.neon.tech:5432")
    assert cfg.append_port == ":5432" and cfg.use_host_header and cfg.log_traffic
    assert not cfg.log_conn_info and cfg.prometheus_bind == ("", 2112)
    assert cfg.idle_timeout == 90 and cfg.max_message_size == 1 << 20
    cfg = load(["--listen-port", "127.0.0.1:1", "--use-host-header=false", "--log-traffic"], env)
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 1)
    assert not cfg.use_host_header and cfg.log_traffic
    assert load([], {"ALLOW_ADDR_REGEX": ""}).allow_addr_regex is None


@pytest.mark.parametrize(
    "env",
    [
        {"LISTEN_PORT": "9876"},
        {"USE_HOST_HEADER": "maybe"},
        {"ALLOW_ADDR_REGEX": "("},
        {"IDLE_TIMEOUT": "soon"},
        {"MAX_CONNECTIONS": "-1"},
        {"TLS_CERT": "/x.pem"},
        {"TRUSTED_PROXIES": "not-a-net"},
    ],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        load([], env)


def test_durations_accept_seconds_and_go_syntax() -> None:
    assert parse_duration("2.5") == 2.5 and parse_duration("500ms") == 0.5
    assert parse_duration("1h2m3s") == 3723


def test_help_documents_every_setting_with_its_default() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "proxy", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    flat = " ".join(out.split())
    for name in (
        "LISTEN_PORT",
        "ALLOW_ADDR_REGEX",
        "APPEND_PORT",
        "USE_HOST_HEADER",
        "LOG_TRAFFIC",
        "LOG_CONN_INFO",
        "PROMETHEUS_BIND",
        "TLS_CERT",
        "TLS_KEY",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_IP",
        "IDLE_TIMEOUT",
        "CONNECT_TIMEOUT",
        "HANDSHAKE_TIMEOUT",
        "MAX_MESSAGE_SIZE",
        "ALLOWED_ORIGINS",
        "DRAIN_TIMEOUT",
        "PING_INTERVAL",
        "AUTH_TOKEN",
        "TRUSTED_PROXIES",
        "DENY_NETWORKS",
        "ALLOW_SPECIAL_NETWORKS",
        "MAX_CONNECTIONS_PER_NET",
        "RESERVED_CONNECTIONS",
        "NO_TRAFFIC_TIMEOUT",
        "MEMORY_BUDGET",
    ):
        assert f"--{name.lower().replace('_', '-')}" in flat
        assert re.search(rf"env {name}, default: \S+", flat), name


def test_bad_config_exits_2_with_a_message() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "proxy"],
        env={"LISTEN_PORT": "nope", "PATH": ""},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 2 and "LISTEN_PORT" in r.stderr


def _traffic(chunks_client: list[bytes], chunks_server: list[bytes]) -> list[str]:
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("test.traffic")
    logger.addHandler(Grab())
    logger.setLevel(logging.INFO)
    t = TrafficLog(1, logger)
    for c in chunks_client:
        t.from_client(c)
    for s in chunks_server:
        t.from_server(s)
    return records


def _msg(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!I", len(body) + 4) + body


def test_traffic_log_names_messages_even_split_at_every_byte() -> None:
    secret = b"hunter2-secret"
    stream = pg_startup("u") + _msg(b"p", secret + b"\0") + pg_query("select 1")
    for cut in range(1, len(stream)):
        lines = _traffic([stream[:cut], stream[cut:]], [])
        names = " ".join(line.split(": ", 1)[1] for line in lines)
        assert names.replace("(continued)", "").split() == ["StartupMessage", "p", "Q"]
        assert all(secret.decode() not in line for line in lines)


def test_traffic_log_goes_opaque_after_ssl_is_accepted() -> None:
    ssl_request = struct.pack("!II", 8, 80877103)
    lines = _traffic([ssl_request], [b"S"])
    assert lines[0].endswith("SSLRequest") and lines[1].endswith("SSLResponse TLS")
    rows = _msg(b"D", b"x" * 10) * 3 + _msg(b"C", b"SELECT 3\0") + _msg(b"Z", b"I")
    assert _traffic([], [rows])[0].endswith("D*3 C Z")


def test_console_script_wsproxy_runs() -> None:
    """`wsproxy` is installed by the project (pyproject's [project.scripts])."""
    script = Path(sys.executable).parent / "wsproxy"
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("usage: wsproxy")


@pytest.mark.parametrize(
    ("ip", "carried"),
    [
        ("::ffff:169.254.169.254", "169.254.169.254"),
        ("::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),
        ("2002:a9fe:a9fe::1", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo client (RFC 4380)
    ],
)
def test_every_ipv4_an_ipv6_address_carries_is_judged(ip: str, carried: str) -> None:
    addr = ipaddress.ip_address(ip)
    assert ipaddress.ip_address(carried) in forms(addr)
    # Even with the wrapper's range excepted, the IPv4 inside is judged on its own.
    wrapper = ipaddress.ip_network(f"{ip}/128")
    allow = (*DEFAULT_ALLOW_SPECIAL_NETWORKS, wrapper)
    why = denial(addr, (), allow)
    assert why is not None and carried in why, why
    assert not is_denied(ipaddress.ip_address("8.8.8.8"), (), allow)


def test_loopback_and_unspecified_are_not_ipv4_compatible_forms() -> None:
    assert forms(ipaddress.ip_address("::1")) == [ipaddress.ip_address("::1")]
    assert denial(ipaddress.ip_address("::1"), (), DEFAULT_ALLOW_SPECIAL_NETWORKS) is None
    assert denial(ipaddress.ip_address("::"), (), DEFAULT_ALLOW_SPECIAL_NETWORKS) is not None


@pytest.mark.parametrize(
    ("ip", "allowed"),
    [
        ("127.0.0.1", True),  # default exceptions: loopback and RFC 1918
        ("10.1.2.3", True),
        ("192.168.1.1", True),
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("100.100.100.200", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # an exception is never taken through a wrapper
        ("192.0.2.1", False),
        ("ff02::1", False),
    ],
)
def test_default_address_policy(ip: str, allowed: bool) -> None:
    why = denial(ipaddress.ip_address(ip), (), DEFAULT_ALLOW_SPECIAL_NETWORKS)
    assert (why is None) is allowed, why


@pytest.mark.parametrize(
    ("regex", "never"),
    [
        (r"localhost", True),
        (r"db\.internal", True),
        (r"db.example.com", True),  # cannot end with the port's digit
        (r"[a-z.]+", True),
        (r"(localhost|127\.0\.0\.1|\[::1\]):5432", False),
        (r".*", False),
        (r"db\.x(:5432)?", False),
        (r"\S+", False),
        (r"(a)\1:1", False),  # back-references are not modelled: no warning
    ],
)
def test_regexes_that_can_never_match_host_port_are_recognised(regex: str, never: bool) -> None:
    assert (never_matches_host_port(re.compile(regex)) is not None) is never


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy"],
        env={"PATH": "", "LISTEN_PORT": "127.0.0.1:0", **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )


def test_a_missing_tls_file_is_named_without_a_traceback(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not used")
    r = _start({"TLS_CERT": str(cert), "TLS_KEY": str(tmp_path / "nope.key")})
    assert r.returncode == 2
    assert f"TLS_KEY: file not found: {tmp_path / 'nope.key'}" in r.stderr
    assert "Traceback" not in r.stderr
    r = _start({"TLS_CERT": str(cert), "TLS_KEY": str(cert)})  # present but not PEM
    assert r.returncode == 1 and "cannot start: TLS_CERT" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_bad_regex_is_reported_once() -> None:
    r = _start({"ALLOW_ADDR_REGEX": "(db"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("ALLOW_ADDR_REGEX") == 1, r.stderr
    assert "'(db' is not a regular expression" in r.stderr


def test_a_regex_without_port_warns_at_start_up(proxy_factory: type) -> None:
    p = proxy_factory({"ALLOW_ADDR_REGEX": r"db\.internal"})
    line = p.wait_for("can never match")
    assert "WARNING" in line and "':5432'" in line
    q = proxy_factory({"ALLOW_ADDR_REGEX": r"db\.internal:5432"})
    assert "can never match" not in q.log
