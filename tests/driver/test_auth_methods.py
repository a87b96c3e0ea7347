"""The one vocabulary of authentication (driver/auth/methods.py) agrees with the wire and with
every place that names a method: the parser's message classes, require_auth, the exchange."""

from __future__ import annotations

from driver.auth import methods
from driver.auth.policy import AuthPolicy
from driver.protocol import messages as m
from tests.driver import fakes as f


def test_every_request_class_carries_the_code_the_table_knows() -> None:
    for cls in (m.AuthenticationOk, m.AuthenticationCleartextPassword,
                m.AuthenticationMD5Password, m.AuthenticationSASL,
                m.AuthenticationSASLContinue, m.AuthenticationSASLFinal):  # fmt: skip
        assert cls.CODE in methods.REQUESTS
        extra = {5: b"salt", 10: b"SCRAM-SHA-256\0\0"}.get(cls.CODE, b"")
        body = f.auth(cls.CODE, extra)[5:]
        assert type(m.parse_message(b"R", body)) is cls


def test_require_auth_names_are_the_methods_of_the_table() -> None:
    named = {r.method for r in methods.REQUESTS.values() if r.method is not None}
    assert named | {methods.NONE} == set(methods.METHODS)
    assert AuthPolicy.parse("!none").allowed == set(methods.METHODS) - {methods.NONE}
    assert set(methods.MECHANISMS.values()) == {methods.SCRAM}


def test_continuations_follow_their_start() -> None:
    for request in methods.REQUESTS.values():
        if request.continues and request.method is not None:
            starts = [r for r in methods.REQUESTS.values()
                      if r.method == request.method and not r.continues]  # fmt: skip
            assert starts and starts[0].code < request.code
