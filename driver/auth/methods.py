"""The one vocabulary of authentication: AuthenticationRequest codes, libpq's ``require_auth``
method names and SASL mechanism names, in one table.

Methods are named as libpq's ``require_auth`` names them everywhere in the driver ("none" is
a server that asks for nothing, pg_hba.conf's ``trust``); SASL mechanisms keep their wire
names ("SCRAM-SHA-256"), and ``MECHANISMS`` says which method each belongs to.
"""

from __future__ import annotations

__all__ = [
    "AUTH_CLEARTEXT",
    "AUTH_GSS",
    "AUTH_GSS_CONTINUE",
    "AUTH_MD5",
    "AUTH_OK",
    "AUTH_SASL",
    "AUTH_SASL_CONTINUE",
    "AUTH_SASL_FINAL",
    "AUTH_SSPI",
    "GSS",
    "MD5",
    "MECHANISMS",
    "METHODS",
    "NONE",
    "PASSWORD",
    "REQUESTS",
    "SCRAM",
    "SCRAM_MECHANISM",
    "SCRAM_PLUS_MECHANISM",
    "SSPI",
    "Request",
]

# Methods, as libpq 16's require_auth names them ("Parameter Key Words").
NONE, PASSWORD, MD5, GSS, SSPI, SCRAM = "none", "password", "md5", "gss", "sspi", "scram-sha-256"
METHODS = (PASSWORD, MD5, GSS, SSPI, SCRAM, NONE)

# SASL mechanisms ("SASL Authentication"), and the method each one is.
SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM = "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"
MECHANISMS = {SCRAM_MECHANISM: SCRAM, SCRAM_PLUS_MECHANISM: SCRAM}


class Request:
    """One AuthenticationRequest code: the method it belongs to (None when this driver has
    no name for it), whether it starts that method or continues it, and how error messages
    describe it."""

    __slots__ = ("asked", "code", "continues", "method")

    def __init__(self, code: int, method: str | None, continues: bool, asked: str) -> None:
        self.code, self.method, self.continues, self.asked = code, method, continues, asked


# AuthenticationRequest codes ("Message Formats": Authentication*).
REQUESTS = {
    r.code: r
    for r in (
        Request(0, None, True, "no authentication"),  # AuthenticationOk
        Request(2, None, False, "Kerberos V5 authentication"),
        Request(3, PASSWORD, False, "a cleartext password"),
        Request(5, MD5, False, "a hashed password"),  # libpq's words, as its errors say
        Request(6, None, False, "SCM credentials authentication"),
        Request(7, GSS, False, "GSSAPI authentication"),
        Request(8, GSS, True, "GSSAPI authentication"),
        Request(9, SSPI, False, "SSPI authentication"),
        Request(10, SCRAM, False, "SASL authentication"),
        Request(11, SCRAM, True, "SASL authentication"),
        Request(12, SCRAM, True, "SASL authentication"),
    )
}
AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_GSS, AUTH_GSS_CONTINUE, AUTH_SSPI = 0, 3, 5, 7, 8, 9
AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL = 10, 11, 12
