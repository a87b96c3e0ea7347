"""Which authentication the client accepts: libpq 16's ``require_auth`` and ``channel_binding``,
plus this driver's rule that a password never crosses a WebSocket proxy in clear.

On a direct TCP (or Unix-socket) connection cleartext and MD5 passwords are sent when asked, as
libpq and asyncpg do (``require_auth`` restricts them). Through a WebSocket proxy without TLS to
Postgres the proxy is a third party on the path, able to read or replay the password, so it is
refused unless ``allow_unencrypted_password=True``.

The server picks the method; a hostile server (or a proxy pretending to be one) can pick a
weak one to harvest a password, or skip authentication to impersonate the database. The
protocol core asks ``AuthGuard`` before answering each authentication request and again on
AuthenticationOk, so these checks need no network to test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import AuthPolicyError, InterfaceError
from .methods import (
    AUTH_CLEARTEXT,
    AUTH_GSS,
    AUTH_GSS_CONTINUE,
    AUTH_MD5,
    AUTH_OK,
    AUTH_SASL,
    AUTH_SASL_CONTINUE,
    AUTH_SASL_FINAL,
    AUTH_SSPI,
    GSS,
    MD5,
    METHODS,
    NONE,
    PASSWORD,
    REQUESTS,
    SCRAM,
    SCRAM_MECHANISM,
    SCRAM_PLUS_MECHANISM,
    SSPI,
)

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
    "CHANNEL_BINDING_MODES",
    "AuthGuard",
    "AuthPolicy",
    "AuthPolicyError",
]

CHANNEL_BINDING_MODES = ("disable", "prefer", "require")
ALLOW_OPTION = "allow_unencrypted_password"
# methods in which the server proves it knows the password (mutual authentication)
_SERVER_PROVING = frozenset({SCRAM, GSS, SSPI})


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """The accepted methods (``allowed``; every method when ``None``) and related options.

    Build it with ``AuthPolicy.parse(...)`` from connection parameters. ``require_auth`` is
    kept as written, for error messages that quote the setting like libpq's do.
    """

    allowed: frozenset[str] | None = None
    require_auth: str | None = None
    channel_binding: str = "prefer"
    allow_unencrypted_password: bool = False

    @classmethod
    def parse(
        cls,
        require_auth: str | None = None,
        *,
        channel_binding: str = "prefer",
        allow_unencrypted_password: bool = False,
    ) -> AuthPolicy:
        """Validate the options as libpq 16 does ("Parameter Key Words", require_auth).

        Raises:
            InterfaceError: unknown method, a method given twice, negated and plain
                methods mixed, or an unknown channel_binding value.
        """
        if channel_binding not in CHANNEL_BINDING_MODES:
            raise InterfaceError(
                f"invalid channel_binding value: {channel_binding!r} "
                f"(expected one of {', '.join(CHANNEL_BINDING_MODES)})"
            )
        if require_auth is None or not require_auth.strip():
            return cls(None, None, channel_binding, allow_unencrypted_password)
        seen: set[str] = set()
        negated: bool | None = None
        for raw in require_auth.split(","):
            item = raw.strip()
            neg = item.startswith("!")
            method = item[1:] if neg else item
            if method not in METHODS:
                raise InterfaceError(
                    f"invalid require_auth value: {item!r} "
                    f"(methods: {', '.join(METHODS)}, each may be "
                    "negated with !)"
                )
            if negated is not None and neg != negated:
                raise InterfaceError(
                    f"negative require_auth method {item!r} cannot be mixed "
                    "with non-negative methods"
                    if neg
                    else f"require_auth method {item!r} cannot be mixed with negative methods"
                )
            if method in seen:
                raise InterfaceError(f"require_auth method {method!r} is specified more than once")
            negated = neg
            seen.add(method)
        allowed = frozenset(METHODS) - seen if negated else frozenset(seen)
        return cls(allowed, require_auth, channel_binding, allow_unencrypted_password)

    def guard(
        self,
        *,
        encrypted: bool,
        channel_binding: bytes | None,
        server_verified: bool = False,
        proxied: bool = True,
    ) -> AuthGuard:
        """Start checking one connection attempt.

        Args:
            encrypted: TLS is up between this client and the Postgres server itself.
            proxied: the bytes pass through a WebSocket proxy (a third party on the path);
                False for a direct TCP or Unix-socket connection. Unknown paths count as
                proxied.
            channel_binding: the ``tls-server-end-point`` data, None without TLS.
            server_verified: TLS checked the server's certificate chain
                (``Negotiated.verified``).

        Raises:
            AuthPolicyError: channel_binding=require on a connection without TLS (libpq
                fails this before sending the startup message, and so should the caller).
        """
        if self.channel_binding == "require" and (not encrypted or channel_binding is None):
            raise AuthPolicyError(
                "channel binding is required, but TLS is not in use "
                "(use sslmode=require or stronger)",
                needs_encryption=True,
            )
        return AuthGuard(self, encrypted, channel_binding, server_verified, proxied)

    @property
    def demands_server_proof(self) -> bool:
        """The settings ask the server to prove who it is during authentication: channel
        binding required, or only methods where the server proves it knows the password."""
        allowed = self.allowed
        return self.channel_binding == "require" or (
            allowed is not None and bool(allowed) and allowed <= _SERVER_PROVING
        )


class AuthGuard:
    """Checks one authentication exchange as it unfolds; the core calls it, in order:

    ``on_request(code)`` for every Authentication* message but AuthenticationOk, before
    answering it; ``choose_mechanism(mechanisms)`` on AuthenticationSASL, to know what to
    pass to scramp; ``on_ok()`` on AuthenticationOk, after the SCRAM server signature was
    verified. Each raises ``AuthPolicyError`` when the connection must be abandoned.
    """

    def __init__(
        self,
        policy: AuthPolicy,
        encrypted: bool,
        channel_binding: bytes | None,
        server_verified: bool = False,
        proxied: bool = True,
    ) -> None:
        self.policy = policy
        self.encrypted = encrypted
        # a password may go out in clear: no third party on the path, or the caller said so
        self.clear_ok = encrypted or not proxied or policy.allow_unencrypted_password
        self.channel_binding = channel_binding
        self.server_verified = server_verified
        self.method: str | None = None  # the method the server asked for, once known
        self.mechanism: str | None = None  # the SASL mechanism chosen
        self.sasl_done = False

    def on_request(self, code: int) -> None:
        """Accept or refuse an authentication request before anything is sent in reply."""
        request = REQUESTS.get(code)
        if request is None or request.method is None:
            what = request.asked if request is not None else f"authentication type {code}"
            self._fail(f"server requested an unknown authentication type ({what})")
            return
        method = request.method
        if code in (AUTH_SASL_CONTINUE, AUTH_SASL_FINAL):
            if self.method != SCRAM or self.sasl_done:
                raise AuthPolicyError("the server sent a SASL message out of order")
            self.sasl_done = code == AUTH_SASL_FINAL
            return
        if code == AUTH_GSS_CONTINUE and self.method == GSS:
            return
        if self.method is not None:
            raise AuthPolicyError(
                f"the server asked for {method} authentication after {self.method} had started"
            )
        allowed = self.policy.allowed
        asked = f"server requested {request.asked}"
        if allowed is not None and method not in allowed:
            self._fail(asked)
        if self.policy.channel_binding == "require" and method != SCRAM:
            raise AuthPolicyError(
                f"channel binding required but not supported by server's authentication request "
                f"({asked})"
            )
        if method in (PASSWORD, MD5) and not self.clear_ok:
            kind = "a cleartext" if method == PASSWORD else "an MD5-hashed"
            raise AuthPolicyError(
                f"the server asked for {kind} password, and this connection runs through a "
                "WebSocket proxy without TLS to PostgreSQL (the proxy, or anyone on its path, "
                "could read or replay it): refusing to send it. Use sslmode=require (or "
                f"verify-full), or pass {ALLOW_OPTION}=True to send it anyway",
                needs_encryption=True,
            )
        self.method = method

    def may_send_password_early(self) -> bool:
        """Whether a cleartext password may go out before the server asks for one.

        Pipelining the password (Neon's ``pipelineConnect: "password"``) skips every check
        ``on_request`` would make, so the core must ask this first and, when False, wait for
        the server's request instead. True only when the policy would accept the server's
        AuthenticationCleartextPassword on this connection anyway.
        """
        allowed = self.policy.allowed
        return (
            self.method is None
            and (allowed is None or PASSWORD in allowed)
            and self.policy.channel_binding != "require"
            and self.clear_ok
        )

    def may_send_query_early(self) -> bool:
        """Whether the first query may go out before the server has completed authentication
        (pipelined with the startup message or with the last SASL message).

        Not when the settings make authentication the proof of the server's identity
        (``channel_binding=require``, or ``require_auth`` limited to SCRAM) and TLS has not
        already proven it (an unverified certificate, or no TLS): a man in the middle, who
        would be caught when the proof fails, would have had the query by then. In every
        other case it could get it anyway (e.g. by asking for a cleartext password), so
        waiting would only cost a round trip.
        """
        return self.server_verified or not self.policy.demands_server_proof

    def predict_mechanism(self) -> tuple[str, bytes | None]:
        """The SASL mechanism ``choose_mechanism`` will pick if the server offers both, for a
        client-first message sent before AuthenticationSASL arrives (no secret in it). The
        core must still call ``on_request`` and ``choose_mechanism`` when the server's list
        comes, and fall back (reconnect) if the choice differs from the prediction: a server
        without -PLUS (pgbouncer) cannot accept a -PLUS client-first.
        """
        cb = self.channel_binding if self.policy.channel_binding != "disable" else None
        return (SCRAM_PLUS_MECHANISM, cb) if cb is not None else (SCRAM_MECHANISM, None)

    def choose_mechanism(self, mechanisms: Sequence[str]) -> tuple[str, bytes | None]:
        """Pick the SASL mechanism from the server's list ("SASL Authentication").

        Returns:
            ``(mechanism, cb_data)``: give scramp ``[mechanism]`` and, when ``cb_data`` is
            not None, ``channel_binding=("tls-server-end-point", cb_data)``. With TLS up and
            no PLUS offered, cb_data is still returned so the client sends the GS2 flag
            'y' (it supports binding), which lets the server detect a downgrade.
        """
        cb = self.channel_binding if self.policy.channel_binding != "disable" else None
        if cb is not None and SCRAM_PLUS_MECHANISM in mechanisms:
            self.mechanism = SCRAM_PLUS_MECHANISM
            return SCRAM_PLUS_MECHANISM, cb
        if self.policy.channel_binding == "require":
            raise AuthPolicyError(
                "channel binding is required, but the server does not offer "
                f"{SCRAM_PLUS_MECHANISM} (it offers {', '.join(mechanisms) or 'none'})"
            )
        if SCRAM_MECHANISM not in mechanisms:
            raise AuthPolicyError(
                "none of the server's SASL mechanisms is supported: "
                + (", ".join(mechanisms) or "(empty list)")
            )
        self.mechanism = SCRAM_MECHANISM
        return SCRAM_MECHANISM, cb

    def on_ok(self) -> None:
        """Check, on AuthenticationOk, that the authentication the policy demands happened."""
        if self.method is None:
            allowed = self.policy.allowed
            if allowed is not None and NONE not in allowed:
                self._fail("server did not complete authentication")
        elif self.method == SCRAM and not self.sasl_done:
            self._fail("server did not complete authentication")
        if self.policy.channel_binding == "require" and self.mechanism != SCRAM_PLUS_MECHANISM:
            raise AuthPolicyError(
                "channel binding required, but server authenticated client without channel binding"
            )

    def _fail(self, reason: str) -> None:
        setting = self.policy.require_auth
        if setting is None:
            raise AuthPolicyError(reason)
        raise AuthPolicyError(f'authentication method requirement "{setting}" failed: {reason}')
