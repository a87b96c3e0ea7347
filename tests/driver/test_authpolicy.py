"""require_auth / channel_binding as in libpq 16, and the default refusal to send a password
over a path that is not encrypted end to end: rules in memory, then against the real server
(with a relay proving the refused password never left the client)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from driver.auth.policy import (
    AUTH_CLEARTEXT,
    AUTH_GSS,
    AUTH_MD5,
    AUTH_SASL,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    AUTH_SSPI,
    AuthPolicy,
    AuthPolicyError,
)
from driver.errors import InterfaceError
from driver.tlsconfig import TLSSettings
from driver.tlsconnect import negotiate
from driver.transport.base import Stream
from driver.transport.tcp import open_tcp
from driver.transport.websocket import open_websocket
from tools.pgwire import MiniClient
from tools.relay import CountingRelay

CB = b"\x01" * 32


# -- parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize(("setting", "allowed"), [
    ("scram-sha-256", {"scram-sha-256"}),
    ("password, md5", {"password", "md5"}),
    ("none", {"none"}),
    ("!password,!md5", {"gss", "sspi", "scram-sha-256", "none"}),
    ("!none", {"password", "md5", "gss", "sspi", "scram-sha-256"}),
])
def test_require_auth_lists_and_negations(setting: str, allowed: set[str]) -> None:
    assert AuthPolicy.parse(setting).allowed == allowed


@pytest.mark.parametrize("setting", [None, "", "  "])
def test_no_require_auth_allows_everything(setting: str | None) -> None:
    assert AuthPolicy.parse(setting).allowed is None


@pytest.mark.parametrize(("setting", "message"), [
    ("scram", "invalid require_auth value: 'scram'"),
    ("password,!md5", "negative require_auth method '!md5' cannot be mixed"),
    ("!md5,password", "require_auth method 'password' cannot be mixed with negative"),
    ("md5,md5", "'md5' is specified more than once"),
    ("!none,!none", "'none' is specified more than once"),
])
def test_bad_require_auth(setting: str, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        AuthPolicy.parse(setting)


def test_bad_channel_binding() -> None:
    with pytest.raises(InterfaceError, match="invalid channel_binding value: 'yes'"):
        AuthPolicy.parse(channel_binding="yes")


# -- the guard, step by step ------------------------------------------------------------

def scram_exchange(policy: AuthPolicy, mechanisms: list[str], *, encrypted: bool = True,
                   cb: bytes | None = CB) -> tuple[str, bytes | None]:
    guard = policy.guard(encrypted=encrypted, channel_binding=cb)
    guard.on_request(AUTH_SASL)
    chosen = guard.choose_mechanism(mechanisms)
    guard.on_request(AUTH_SASL_CONTINUE)
    guard.on_request(AUTH_SASL_FINAL)
    guard.on_ok()
    return chosen


def test_plus_is_chosen_when_tls_is_up_and_offered() -> None:
    offered = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    assert scram_exchange(AuthPolicy.parse(), offered) == ("SCRAM-SHA-256-PLUS", CB)
    # disable: never bind; without TLS: nothing to bind to
    assert scram_exchange(AuthPolicy.parse(channel_binding="disable"), offered) == (
        "SCRAM-SHA-256", None)
    assert scram_exchange(AuthPolicy.parse(), offered, encrypted=False, cb=None) == (
        "SCRAM-SHA-256", None)


def test_tls_without_plus_offered_still_says_it_could_bind() -> None:
    # cb data is returned so that scramp sends GS2 flag 'y': a server that does support
    # binding then knows the PLUS mechanism was stripped on the way (a downgrade).
    assert scram_exchange(AuthPolicy.parse(), ["SCRAM-SHA-256"]) == ("SCRAM-SHA-256", CB)


def test_channel_binding_require() -> None:
    policy = AuthPolicy.parse(channel_binding="require")
    with pytest.raises(AuthPolicyError, match="TLS is not in use") as err:
        policy.guard(encrypted=False, channel_binding=None)
    assert err.value.needs_encryption
    with pytest.raises(AuthPolicyError, match="does not offer SCRAM-SHA-256-PLUS"):
        scram_exchange(policy, ["SCRAM-SHA-256"])
    for code in (AUTH_CLEARTEXT, AUTH_MD5):
        with pytest.raises(AuthPolicyError, match="channel binding required but not supported"):
            policy.guard(encrypted=True, channel_binding=CB).on_request(code)
    with pytest.raises(AuthPolicyError, match="authenticated client without channel binding"):
        policy.guard(encrypted=True, channel_binding=CB).on_ok()  # trust / cert: no SASL


@pytest.mark.parametrize(("code", "said"), [
    (AUTH_CLEARTEXT, "server requested a cleartext password"),
    (AUTH_MD5, "server requested a hashed password"),
    (AUTH_GSS, "server requested GSSAPI authentication"),
    (AUTH_SSPI, "server requested SSPI authentication"),
    (AUTH_SASL, "server requested SASL authentication"),
    (4, "server requested an unknown authentication type"),
])
def test_require_auth_none_refuses_every_challenge(code: int, said: str) -> None:
    guard = AuthPolicy.parse("none").guard(encrypted=True, channel_binding=CB)
    with pytest.raises(AuthPolicyError, match=f'requirement "none" failed: {said}') as err:
        guard.on_request(code)
    assert not err.value.needs_encryption  # TLS would not change the answer


def test_a_server_skipping_the_end_of_scram_is_refused() -> None:
    # A fake server could send AuthenticationOk before proving it knows the password.
    guard = AuthPolicy.parse().guard(encrypted=True, channel_binding=CB)
    guard.on_request(AUTH_SASL)
    guard.choose_mechanism(["SCRAM-SHA-256-PLUS"])
    guard.on_request(AUTH_SASL_CONTINUE)
    with pytest.raises(AuthPolicyError, match="server did not complete authentication"):
        guard.on_ok()


def test_out_of_order_sasl_and_method_switches_are_refused() -> None:
    guard = AuthPolicy.parse().guard(encrypted=True, channel_binding=CB)
    with pytest.raises(AuthPolicyError, match="out of order"):
        guard.on_request(AUTH_SASL_FINAL)
    guard.on_request(AUTH_SASL)
    with pytest.raises(AuthPolicyError, match="after scram-sha-256 had started"):
        guard.on_request(AUTH_CLEARTEXT)


def test_not_none_demands_some_authentication() -> None:
    with pytest.raises(AuthPolicyError, match="server did not complete authentication"):
        AuthPolicy.parse("!none").guard(encrypted=True, channel_binding=CB).on_ok()
    AuthPolicy.parse("none").guard(encrypted=False, channel_binding=None).on_ok()


@pytest.mark.parametrize("code", [AUTH_CLEARTEXT, AUTH_MD5])
def test_passwords_need_an_encrypted_path_or_the_explicit_option(code: int) -> None:
    with pytest.raises(AuthPolicyError, match="allow_unencrypted_password=True") as err:
        AuthPolicy.parse().guard(encrypted=False, channel_binding=None).on_request(code)
    assert "sslmode=require" in str(err.value) and err.value.needs_encryption
    AuthPolicy.parse().guard(encrypted=True, channel_binding=None).on_request(code)
    AuthPolicy.parse(allow_unencrypted_password=True).guard(
        encrypted=False, channel_binding=None).on_request(code)


# -- against the real server, over TCP and the WebSocket proxy ----------------------------

Opener = Callable[[int], Awaitable[Stream]]


@dataclass
class Path:
    """How to reach the cluster through a counting relay: ``target`` is what the relay forwards
    to (Postgres itself, or the WebSocket proxy); ``open(relay_port)`` opens the stream."""

    target: int
    open: Opener
    websocket: bool


@pytest.fixture(params=["tcp", "ws"])
def path(request: pytest.FixtureRequest, pg: object) -> Path:
    if request.param == "tcp":
        return Path(pg.port, lambda port: open_tcp("127.0.0.1", port), False)  # type: ignore[attr-defined]
    proxy = request.getfixturevalue("proxy")

    async def via_proxy(port: int) -> Stream:
        return await open_websocket(
            f"ws://127.0.0.1:{port}/v2?address=127.0.0.1:{pg.port}")  # type: ignore[attr-defined]

    return Path(proxy.port, via_proxy, True)


async def attempt(pg: object, path: Path, role: str, sslmode: str, policy: AuthPolicy,
                  ) -> tuple[MiniClient, bytes]:
    """Log in through a relay; return the client and every Postgres byte the client sent
    (the unmasked WebSocket payloads when the path is a WebSocket)."""
    async with CountingRelay("127.0.0.1", path.target) as relay:
        neg = await negotiate(await path.open(relay.port), TLSSettings(sslmode=sslmode),
                              "127.0.0.1")
        client = MiniClient(neg.stream)
        try:
            await client.login(role, pg.password(role),  # type: ignore[attr-defined]
                               policy.guard(encrypted=neg.encrypted,
                                            channel_binding=neg.channel_binding))
            assert await client.query("select current_user") == [[role]]
        finally:
            await neg.stream.close()
        conn = relay.last()
        sent = b"".join(conn.ws_up.messages) if path.websocket else bytes(conn.up)
    return client, sent


@pytest.mark.parametrize("role", ["clear_user", "md5_user"])
async def test_password_refused_in_clear_and_never_sent(pg: object, path: Path,
                                                        role: str) -> None:
    with pytest.raises(AuthPolicyError, match="allow_unencrypted_password"):
        await attempt(pg, path, role, "disable", AuthPolicy.parse())


async def test_the_refused_password_never_left_the_client(pg: object, path: Path) -> None:
    async with CountingRelay("127.0.0.1", path.target) as relay:
        stream = await path.open(relay.port)
        with pytest.raises(AuthPolicyError):
            await MiniClient(stream).login("clear_user", "clear pass", AuthPolicy.parse().guard(
                encrypted=False, channel_binding=None))
        # WebSocket: the upgrade is one more round trip
        assert relay.round_trips == (2 if path.websocket else 1)
        await stream.close()
        conn = relay.last()
        sent = b"".join(conn.ws_up.messages) if path.websocket else bytes(conn.up)
        assert b"clear_user" in sent  # the startup message went out...
        assert b"clear pass" not in sent  # ...the password did not


@pytest.mark.parametrize("role", ["clear_user", "md5_user"])
async def test_password_sent_over_tls_or_when_allowed(pg: object, path: Path,
                                                      role: str) -> None:
    _, sent = await attempt(pg, path, role, "require", AuthPolicy.parse())
    assert b"clear pass" not in sent and role.encode() not in sent  # all ciphertext
    _, sent = await attempt(pg, path, role, "disable",
                            AuthPolicy.parse(allow_unencrypted_password=True))
    assert role.encode() in sent
    assert (b"clear pass" in sent) is (role == "clear_user")  # allowed, so sent in clear


async def test_require_auth_refusals_against_the_server(pg: object, path: Path) -> None:
    scram_only = AuthPolicy.parse("scram-sha-256")
    with pytest.raises(AuthPolicyError, match="server requested a cleartext password"):
        await attempt(pg, path, "clear_user", "require", scram_only)
    with pytest.raises(AuthPolicyError, match="server requested a hashed password"):
        await attempt(pg, path, "md5_user", "require", scram_only)
    with pytest.raises(AuthPolicyError, match='"!none" failed: server did not complete'):
        await attempt(pg, path, "trust_user", "require", AuthPolicy.parse("!none"))
    with pytest.raises(AuthPolicyError, match="server requested SASL authentication"):
        await attempt(pg, path, "scram_user", "require", AuthPolicy.parse("none,md5"))
    client, _ = await attempt(pg, path, "md5_user", "require", AuthPolicy.parse("md5,password"))
    client, _ = await attempt(pg, path, "scram_user", "disable", scram_only)
    assert client.mechanism == "SCRAM-SHA-256"  # SCRAM sends no password: fine in clear
    client, _ = await attempt(pg, path, "scram_user", "require",
                              AuthPolicy.parse(channel_binding="require"))
    assert client.mechanism == "SCRAM-SHA-256-PLUS"


# -- what the core may send before the server asks ----------------------------------------

@pytest.mark.parametrize(("policy", "encrypted", "early"), [
    (AuthPolicy.parse(), True, True),
    (AuthPolicy.parse(), False, False),  # would bypass the unencrypted-password rule
    (AuthPolicy.parse(allow_unencrypted_password=True), False, True),
    (AuthPolicy.parse("scram-sha-256"), True, False),  # would bypass require_auth
    (AuthPolicy.parse("!password"), True, False),
    (AuthPolicy.parse("password,md5"), True, True),
    (AuthPolicy.parse(channel_binding="require"), True, False),
])
def test_may_send_password_early_only_when_the_request_would_be_accepted(
        policy: AuthPolicy, encrypted: bool, early: bool) -> None:
    guard = policy.guard(encrypted=encrypted, channel_binding=CB if encrypted else None)
    assert guard.may_send_password_early() is early
    if early:  # consistent with what on_request would say when the server does ask
        guard.on_request(AUTH_CLEARTEXT)
    else:
        with pytest.raises(AuthPolicyError):
            guard.on_request(AUTH_CLEARTEXT)


def test_predicted_mechanism_matches_the_choice_against_postgres() -> None:
    postgres_offers = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    for policy, encrypted in [(AuthPolicy.parse(), True), (AuthPolicy.parse(), False),
                              (AuthPolicy.parse(channel_binding="disable"), True)]:
        guard = policy.guard(encrypted=encrypted, channel_binding=CB if encrypted else None)
        predicted = guard.predict_mechanism()
        guard.on_request(AUTH_SASL)
        offered = postgres_offers if encrypted else ["SCRAM-SHA-256"]
        assert guard.choose_mechanism(offered) == predicted


@pytest.mark.parametrize(("policy", "verified", "early"), [
    (AuthPolicy.parse(), False, True),  # a MITM could ask for a cleartext password anyway
    (AuthPolicy.parse(channel_binding="require"), False, False),
    (AuthPolicy.parse(channel_binding="require"), True, True),  # the certificate proved it
    (AuthPolicy.parse("scram-sha-256"), False, False),
    (AuthPolicy.parse("scram-sha-256,none"), False, True),  # the server may skip proving
    (AuthPolicy.parse("scram-sha-256,password"), False, True),  # password proves nothing
    (AuthPolicy.parse("!none"), False, True),
])
def test_may_send_query_early_unless_authentication_is_the_proof_of_the_server(
        policy: AuthPolicy, verified: bool, early: bool) -> None:
    guard = policy.guard(encrypted=True, channel_binding=CB, server_verified=verified)
    assert guard.may_send_query_early() is early


@pytest.mark.parametrize("code", [AUTH_CLEARTEXT, AUTH_MD5])
def test_passwords_go_in_clear_over_direct_tcp_as_libpq_sends_them(code: int) -> None:
    guard = AuthPolicy.parse().guard(encrypted=False, channel_binding=None, proxied=False)
    assert guard.may_send_password_early()
    guard.on_request(code)
    with pytest.raises(AuthPolicyError, match="server requested"):  # require_auth restricts
        AuthPolicy.parse("scram-sha-256").guard(
            encrypted=False, channel_binding=None, proxied=False).on_request(code)
