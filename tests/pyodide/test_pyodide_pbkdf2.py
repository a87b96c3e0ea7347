"""The hmac-based PBKDF2 must give hashlib's keys, or SCRAM in Pyodide fails with a wrong proof."""

from __future__ import annotations

import hashlib
import types

import pytest

from driver.auth.pbkdf2 import pbkdf2_hmac, select_pbkdf2_hmac


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


def test_select_prefers_hashlib_and_falls_back_only_when_missing() -> None:
    assert select_pbkdf2_hmac() is hashlib.pbkdf2_hmac
    assert select_pbkdf2_hmac(types.SimpleNamespace()) is pbkdf2_hmac
    assert not hasattr(hashlib, "pbkdf2_hmac") or hashlib.pbkdf2_hmac is not pbkdf2_hmac
