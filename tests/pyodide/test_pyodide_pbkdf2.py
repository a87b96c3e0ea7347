"""The hmac-based PBKDF2 must give hashlib's keys, or SCRAM in Pyodide fails with a wrong proof."""

from __future__ import annotations

import hashlib
import types

import pytest
import scramp

from driver.pbkdf2 import ensure_hashlib_pbkdf2, pbkdf2_hmac


@pytest.mark.parametrize("hash_name", ["sha256", "sha1", "sha512"])
@pytest.mark.parametrize("password", [b"", b"pw", "pässwörd".encode(), b"k" * 200])
@pytest.mark.parametrize("dklen", [None, 1, 20, 33, 100])
def test_same_keys_as_hashlib(hash_name: str, password: bytes, dklen: int | None) -> None:
    salt = b"\x01salt\xff"
    for iterations in (1, 2, 17):
        got = pbkdf2_hmac(hash_name, password, salt, iterations, dklen)
        assert got == hashlib.pbkdf2_hmac(hash_name, password, salt, iterations, dklen)


def test_same_key_as_hashlib_at_scram_iteration_count() -> None:
    args = ("sha256", b"scram password", bytes(range(16)), 4096)
    assert pbkdf2_hmac(*args) == hashlib.pbkdf2_hmac(*args)


def test_rfc_6070_vector() -> None:
    # RFC 6070, PBKDF2-HMAC-SHA1, c = 2.
    got = pbkdf2_hmac("sha1", b"password", b"salt", 2, 20)
    assert got.hex() == "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"


@pytest.mark.parametrize(("iterations", "dklen"), [(0, None), (1, 0)])
def test_rejects_what_hashlib_rejects(iterations: int, dklen: int | None) -> None:
    with pytest.raises(ValueError):
        hashlib.pbkdf2_hmac("sha256", b"p", b"s", iterations, dklen)
    with pytest.raises(ValueError):
        pbkdf2_hmac("sha256", b"p", b"s", iterations, dklen)


def test_ensure_fills_only_a_missing_function() -> None:
    bare = types.SimpleNamespace()
    assert ensure_hashlib_pbkdf2(bare) is True
    assert bare.pbkdf2_hmac is pbkdf2_hmac
    assert ensure_hashlib_pbkdf2(bare) is False
    assert ensure_hashlib_pbkdf2(hashlib) is False
    assert hashlib.pbkdf2_hmac is not pbkdf2_hmac


def test_scram_exchange_with_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full SCRAM-SHA-256 exchange against scramp's server, with hashlib's C version gone."""
    monkeypatch.delattr(hashlib, "pbkdf2_hmac")
    assert ensure_hashlib_pbkdf2() is True
    assert hashlib.pbkdf2_hmac is pbkdf2_hmac  # type: ignore[comparison-overlap]
    # The server side's stored keys are derived with the same (fallback) function, so compute a
    # reference with scramp's own slow path to prove the keys are the real ones, not just equal.
    from scramp.utils import pbkdf2_hmac_pure_python

    ref = pbkdf2_hmac_pure_python(hashlib.sha256, b"secret", b"NaCl", 4096)
    assert pbkdf2_hmac("sha256", b"secret", b"NaCl", 4096) == ref

    mech = scramp.ScramMechanism("SCRAM-SHA-256")
    salt, stored_key, server_key, iterations = mech.make_auth_info("secret", iteration_count=4096)
    server = mech.make_server(lambda _user: (salt, stored_key, server_key, iterations))
    client = scramp.ScramClient(["SCRAM-SHA-256"], "user", "secret")
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())  # raises if the server's proof is wrong
