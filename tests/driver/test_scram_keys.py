"""driver.scram: SCRAM-SHA-256(-PLUS) without scramp's client, checked against scramp's server
and the real cluster, and its key cache (a later connect pays no PBKDF2)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from scramp import ScramException, ScramMechanism

import driver.auth.scram as scram
from driver.auth.policy import AuthPolicy
from driver.auth.scram import SCRAMClient, clear_key_cache
from driver.errors import InterfaceError, ProtocolError
from driver.tlsconfig import TLSSettings
from driver.tlsconnect import negotiate
from driver.transport.tcp import open_tcp
from tools.pgcluster import Cluster
from tools.pgwire import MiniClient

CB = bytes(range(32))


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []
    real = scram._pbkdf2

    def counting(password: bytes, salt: bytes, iterations: int) -> bytes:
        calls.append(iterations)
        return real(password, salt, iterations)

    clear_key_cache()
    monkeypatch.setattr(scram, "_pbkdf2", counting)
    yield calls
    clear_key_cache()


def exchange(
    client: SCRAMClient,
    password: str,
    *,
    plus: bool = False,
    salt: bytes | None = None,
    server_cb: bytes = CB,
) -> None:
    """Run ``client`` against scramp's server for a role whose password is ``password``."""
    mech = ScramMechanism("SCRAM-SHA-256-PLUS" if plus else "SCRAM-SHA-256")
    info = mech.make_auth_info(password, iteration_count=4096, salt=salt)
    server = mech.make_server(
        lambda _user: info, channel_binding=(("tls-server-end-point", server_cb) if plus else None)
    )
    server.set_client_first(client.first_message().decode())
    final = client.final_message(server.get_server_first().encode())
    server.set_client_final(final.decode())
    client.verify(server.get_server_final().encode())


@pytest.mark.parametrize("password", ["pw", "scr@m:pass/ü", "pässwörd with spaces", "\u2168"])
def test_against_scramps_server(password: str, pbkdf2_calls: list[int]) -> None:
    exchange(SCRAMClient("SCRAM-SHA-256", "u", password, None), password)
    exchange(SCRAMClient("SCRAM-SHA-256-PLUS", "u", password, CB), password, plus=True)
    assert pbkdf2_calls == [4096, 4096]  # two salts (make_auth_info draws a new one)


def test_gs2_flags() -> None:
    assert SCRAMClient("SCRAM-SHA-256", "u", "p", None, nonce="N").first_message() == (
        b"n,,n=u,r=N"
    )
    assert SCRAMClient("SCRAM-SHA-256", "a=b,c", "p", CB, nonce="N").first_message() == (
        b"y,,n=a=3Db=2Cc,r=N"
    )
    assert SCRAMClient("SCRAM-SHA-256-PLUS", "", "p", CB, nonce="N").first_message() == (
        b"p=tls-server-end-point,,n=*,r=N"
    )


def test_the_server_checks_the_binding_and_the_password() -> None:
    with pytest.raises(ScramException):
        exchange(SCRAMClient("SCRAM-SHA-256-PLUS", "u", "pw", b"\0" * 32), "pw", plus=True)
    with pytest.raises(ScramException):
        exchange(SCRAMClient("SCRAM-SHA-256", "u", "wrong", None), "pw")


def test_keys_are_derived_once_per_password_salt_and_count(pbkdf2_calls: list[int]) -> None:
    salt = b"0123456789abcdef"
    for _ in range(3):
        exchange(SCRAMClient("SCRAM-SHA-256", "u", "pw", None), "pw", salt=salt)
    assert pbkdf2_calls == [4096]
    exchange(SCRAMClient("SCRAM-SHA-256", "u", "other", None), "other", salt=salt)
    assert len(pbkdf2_calls) == 2  # another password: other keys
    clear_key_cache()
    exchange(SCRAMClient("SCRAM-SHA-256", "u", "pw", None), "pw", salt=salt)
    assert len(pbkdf2_calls) == 3


def test_a_server_that_does_not_know_the_password_is_caught() -> None:
    client = SCRAMClient("SCRAM-SHA-256", "u", "pw", None, nonce="abc")
    salt = base64.b64encode(b"salt").decode()
    client.final_message(f"r=abcdef,s={salt},i=4096".encode())
    with pytest.raises(ProtocolError, match="signature is wrong"):
        client.verify(b"v=" + base64.b64encode(b"\0" * 32))
    with pytest.raises(ProtocolError, match="rejected the SCRAM exchange: invalid-proof"):
        client.verify(b"e=invalid-proof")


@pytest.mark.parametrize(
    ("server_first", "message"),
    [
        (b"r=xyz,s=c2FsdA==,i=4096", "does not extend"),
        (b"r=abc,s=c2FsdA==,i=4096", "does not extend"),  # no server part
        (b"r=abcd,s=c2FsdA==,i=0", "salt or iterations"),
        (b"r=abcd,i=4096", "salt or iterations"),
        (b"r=abcd,s=***,i=4096", "malformed SCRAM salt"),
        (b"m=ext,r=abcd,s=c2FsdA==,i=1", "extension"),
        (b"garbage", "malformed SCRAM server-first"),
        (b"\xff", "malformed SCRAM server-first"),
    ],
)
def test_malformed_server_first(server_first: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        SCRAMClient("SCRAM-SHA-256", "u", "pw", None, nonce="abc").final_message(server_first)


def test_bad_use() -> None:
    with pytest.raises(InterfaceError, match="needs channel binding"):
        SCRAMClient("SCRAM-SHA-256-PLUS", "u", "pw", None)
    with pytest.raises(InterfaceError, match="unsupported SASL mechanism"):
        SCRAMClient("SCRAM-SHA-1", "u", "pw", None)


@pytest.mark.parametrize("sslmode", ["disable", "require"])
async def test_against_postgres(pg: Cluster, sslmode: str, pbkdf2_calls: list[int]) -> None:
    for _ in range(2):
        neg = await negotiate(
            await open_tcp(pg.host, pg.port), TLSSettings(sslmode=sslmode), pg.host
        )
        client = MiniClient(neg.stream)
        guard = AuthPolicy.parse().guard(
            encrypted=neg.encrypted, channel_binding=neg.channel_binding
        )
        await client.login(
            "scram_user",
            pg.password("scram_user"),
            guard,  # type: ignore[arg-type]
            scram_client=SCRAMClient,
        )
        assert client.mechanism == ("SCRAM-SHA-256-PLUS" if neg.encrypted else "SCRAM-SHA-256")
        assert await client.query("select current_user") == [["scram_user"]]
        await neg.stream.close()
    assert pbkdf2_calls == [4096]  # the second connect reused the keys


def test_saslprep_shortcut_agrees_with_scramp() -> None:
    """Printable ASCII skips scramp's SASLprep; everything must prepare exactly as scramp does
    (non-ASCII spaces map to a space, soft hyphens vanish, refused ones stay as they are)."""
    from scramp.utils import saslprep

    from driver.auth.scram import _saslprep

    for pw in [
        "plain pass",
        "~!@#$%^&*()_+{}|:<>?",
        "scr@m:pass/ü",
        "a\u00a0b",
        "x\u00ady",
        "I\u2168",
    ]:
        assert _saslprep(pw) == saslprep(pw), pw
    for refused in ["tab\there", "\u0007bell"]:
        assert _saslprep(refused) == refused
