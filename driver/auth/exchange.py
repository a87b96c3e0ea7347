"""Authentication during start-up, client side: the answer to each request, and what may go
out before the server asks (pipelined start-up).

A pipelined start-up sends, right after the StartupMessage, the answer to the request the
server is predicted to make: the SCRAM client-first message (no secret in it) or, when the
caller's policy allows, the cleartext password. The prediction is a bet: if the server asks
for something else it reads our message as the answer to ITS request, fails, and closes the
connection ("Message Flow": no authentication step can be taken back). The client then
learns the real method (``Mispredicted.method``) and connects again once, knowing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import InterfaceError, ProtocolError
from . import messages as m

if TYPE_CHECKING:
    from ..scram import SCRAMClient

__all__ = [
    "MD5",
    "PASSWORD",
    "SCRAM",
    "SCRAM_MECHANISM",
    "SCRAM_PLUS",
    "TRUST",
    "AuthGuard",
    "Authenticator",
    "Mispredicted",
    "choose_mechanism",
    "md5_password",
]

SCRAM_MECHANISM = "SCRAM-SHA-256"
SCRAM_PLUS = "SCRAM-SHA-256-PLUS"
# Methods, named as in pg_hba.conf (and libpq's require_auth, but "none" is "trust" here).
TRUST, PASSWORD, MD5, SCRAM = "trust", "password", "md5", "scram-sha-256"

# AuthenticationRequest codes ("Message Formats")
_AUTH_CODES: dict[type, int] = {
    m.AuthenticationCleartextPassword: 3, m.AuthenticationMD5Password: 5,
    m.AuthenticationSASL: 10, m.AuthenticationSASLContinue: 11, m.AuthenticationSASLFinal: 12,
}  # fmt: skip
_METHODS: dict[type, str] = {
    m.AuthenticationCleartextPassword: PASSWORD, m.AuthenticationMD5Password: MD5,
    m.AuthenticationSASL: SCRAM,
}  # fmt: skip
_AUTH_NAMES = {2: "Kerberos V5", 6: "SCM credentials", 7: "GSSAPI", 8: "GSSAPI", 9: "SSPI"}
_ASKED = {TRUST: "no authentication", PASSWORD: "a cleartext password", MD5: "an MD5 password",
          SCRAM: "SCRAM-SHA-256"}  # fmt: skip

_EARLY = {PASSWORD: "the cleartext password", SCRAM: "the SCRAM client-first message"}
Learn = Callable[[str, tuple[str, ...]], None]


class AuthGuard(Protocol):
    """Vets each authentication step (``driver.authpolicy.AuthGuard`` implements it)."""

    def on_request(self, code: int) -> None: ...

    def choose_mechanism(self, mechanisms: Sequence[str]) -> tuple[str, bytes | None]: ...

    def on_ok(self) -> None: ...

    def may_send_password_early(self) -> bool: ...


class Mispredicted(ProtocolError):
    """The server authenticates with ``method`` (and, for SCRAM, offers ``mechanisms``), not
    as predicted, after the predicted message (or the first query) was already on its way.

    The server takes what we sent as the answer to its own request and ends the session, so
    this connection is lost; a new one that knows the method succeeds. Nothing secret was
    sent that the auth policy would not have sent anyway.
    """

    def __init__(self, message: str, method: str, mechanisms: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.method = method
        self.mechanisms = mechanisms


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """``"md5" + md5(md5(password + user) + salt)`` as the server expects ("Message Flow")."""
    import hashlib  # only for md5 servers: hashlib's OpenSSL load is a cost of every import

    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode()


def _scram_client(mechanism: str, user: str, password: str, binding: bytes | None) -> SCRAMClient:
    """A new SCRAM exchange. ``driver.scram`` (hashlib, secrets, the key cache) is imported
    here, on the first SCRAM authentication, not with the driver: trust, password and md5
    connections never need it."""
    from ..scram import SCRAMClient

    return SCRAMClient(mechanism, user, password, binding)


def choose_mechanism(
    mechanisms: Sequence[str], channel_binding: bytes | None
) -> tuple[str, bytes | None]:
    """The SASL mechanism when no AuthGuard decides: -PLUS over TLS if the server offers it.

    The exchange itself is ``driver.scram.SCRAMClient`` (it caches derived keys, so a
    reconnect pays no PBKDF2).
    """
    if channel_binding is not None and SCRAM_PLUS in mechanisms:
        return SCRAM_PLUS, channel_binding
    if SCRAM_MECHANISM not in mechanisms:
        raise InterfaceError(
            f"server offers SASL mechanisms {list(mechanisms)}; this driver supports "
            f"{SCRAM_MECHANISM}, and {SCRAM_PLUS} only over TLS"
        )
    return SCRAM_MECHANISM, None


class Authenticator:
    """The client's half of one authentication exchange, driven by ``PGProtocol``.

    Args:
        predict: the method the server is expected to ask for: ``"scram-sha-256"`` (send
            client-first now), ``"password"`` (send the password now; the caller has checked
            that the policy allows it), ``"trust"`` (nothing to send, ever), or None (wait
            and answer whatever comes).
        mechanisms: the SASL mechanisms the server offered last time, if known.
        learn: called once with the method the server actually uses (and its mechanisms).
    """

    def __init__(
        self,
        user: str,
        password: str | None,
        *,
        channel_binding: bytes | None = None,
        guard: AuthGuard | None = None,
        predict: str | None = None,
        mechanisms: Sequence[str] = (),
        learn: Learn | None = None,
    ) -> None:
        self._user = user
        self._password = password
        self._channel_binding = channel_binding
        self._guard = guard
        self._learn = learn
        self._predicted = predict
        self._offered = tuple(mechanisms)
        self._sent: str | None = None  # the method whose answer already went out unasked
        self._scram: SCRAMClient | None = None
        self._scram_verified = False
        self._server_first: bytes | None = None  # waiting for its keys (``work``)
        self.work: Callable[[], None] | None = None  # PBKDF2 to run off the event loop
        self.method: str | None = None  # what the server asked for, once it has
        self.complete = password is None or predict == TRUST

    def start(self) -> list[bytes]:
        """The messages that follow the StartupMessage in the same flight."""
        password, guard = self._password, self._guard
        if password is None:
            return []
        if self._predicted == PASSWORD and (guard is None or guard.may_send_password_early()):
            self._sent, self.complete = PASSWORD, True
            return [m.password_message(password.encode())]
        if self._predicted == SCRAM:
            offered = self._offered or (
                (SCRAM_PLUS, SCRAM_MECHANISM) if self._channel_binding else (SCRAM_MECHANISM,)
            )
            try:
                mechanism, binding = self._choose(offered)
            except InterfaceError:
                return []  # the policy will refuse whatever the server offers: let it say so
            self._scram = _scram_client(mechanism, self._user, password, binding)
            self._sent = SCRAM
            return [m.sasl_initial_response(mechanism, self._scram.first_message())]
        return []

    def _choose(self, mechanisms: Sequence[str]) -> tuple[str, bytes | None]:
        if self._guard is not None:
            return self._guard.choose_mechanism(mechanisms)
        return choose_mechanism(mechanisms, self._channel_binding)

    def on_request(self, msg: m.BackendMessage, *, committed: bool) -> list[bytes]:
        """Answer an authentication request ("Message Flow", "SASL Authentication").

        Args:
            committed: something that is not authentication (the first query) was queued
                behind the start-up, so the server will read it next: a request nobody
                predicted can no longer be answered.

        Returns:
            The messages to send (often none: predicted answers are already out).

        Raises:
            AuthPolicyError: the guard refuses the request (checked before anything else).
            Mispredicted: the server asks for another method than the one answered early.
            InterfaceError: unsupported method, or a password is needed and none was given.
            ProtocolError: out-of-order SASL messages or a wrong server signature.
        """
        if self._guard is not None:
            code = (
                msg.code if isinstance(msg, m.AuthenticationOther) else _AUTH_CODES.get(type(msg))
            )
            if code is not None:
                self._guard.on_request(code)
        if isinstance(msg, m.AuthenticationOther):
            name = _AUTH_NAMES.get(msg.code, f"method code {msg.code}")
            raise InterfaceError(
                f"server requested {name} authentication, which this driver does not support "
                "(supported: trust, password, md5, scram-sha-256)"
            )
        if isinstance(msg, m.AuthenticationSASLContinue | m.AuthenticationSASLFinal):
            return self._sasl_step(msg)
        method = _METHODS.get(type(msg))
        if method is None:
            raise ProtocolError(f"unexpected {type(msg).__name__} during authentication")
        offered = tuple(msg.mechanisms) if isinstance(msg, m.AuthenticationSASL) else ()
        self._found(method, offered)
        if self._password is None:
            raise InterfaceError(
                f"server requested a password for user {self._user!r} but none was given"
            )
        if self._sent is not None and method != self._sent:
            raise self._missed(method, offered)
        if self._sent is None and committed:
            raise self._missed(method, offered)
        if isinstance(msg, m.AuthenticationCleartextPassword):
            self.complete = True
            return [] if self._sent else [m.password_message(self._password.encode())]
        if isinstance(msg, m.AuthenticationMD5Password):
            self.complete = True
            return [m.password_message(md5_password(self._user, self._password, msg.salt))]
        assert isinstance(msg, m.AuthenticationSASL)
        mechanism, binding = self._choose(msg.mechanisms)
        if self._scram is not None:  # client-first went out with the StartupMessage
            if (mechanism, self._scram.gs2_header) != (
                self._scram.mechanism,
                type(self._scram).gs2_for(mechanism, binding),
            ):
                raise self._missed(SCRAM, offered)
            return []
        self._scram = _scram_client(mechanism, self._user, self._password, binding)
        return [m.sasl_initial_response(mechanism, self._scram.first_message())]

    def _sasl_step(
        self, msg: m.AuthenticationSASLContinue | m.AuthenticationSASLFinal
    ) -> list[bytes]:
        if self._scram is None or self.method != SCRAM:
            raise ProtocolError("SASL message without a SASL exchange in progress")
        if isinstance(msg, m.AuthenticationSASLContinue):
            self.complete = True
            self.work = self._scram.key_job(msg.data)
            if self.work is not None:  # answered by resume(), once the keys are derived
                self._server_first = msg.data
                return []
            return [m.sasl_response(self._scram.final_message(msg.data))]
        self._scram.verify(msg.data)  # raises ProtocolError if the server lacks the key
        self._scram_verified = True
        return []

    def resume(self) -> list[bytes]:
        """The answer held back while ``work`` ran; ``work`` is done (or ran inline)."""
        server_first, self._server_first = self._server_first, None
        if self._scram is None or server_first is None:
            return []
        self.work = None
        return [m.sasl_response(self._scram.final_message(server_first))]

    def on_ok(self) -> None:
        """AuthenticationOk: check that what had to happen did (SCRAM proof, the policy).

        Raises:
            AuthPolicyError: the policy demanded an authentication that did not happen.
            Mispredicted: no request came (trust) but a predicted answer was sent, which the
                server will now read as a query and fail on.
            ProtocolError: AuthenticationOk before the server proved it knows the password.
        """
        if self.method is None:
            if self._guard is not None:
                self._guard.on_ok()
            self._found(TRUST, ())
            if self._sent is not None:
                raise self._missed(TRUST, ())
            return
        if self._scram is not None and not self._scram_verified:
            raise ProtocolError("AuthenticationOk before the server proved its SCRAM key")
        if self._guard is not None:
            self._guard.on_ok()

    def _found(self, method: str, mechanisms: tuple[str, ...]) -> None:
        if self.method is None:
            self.method = method
            if self._learn is not None:
                self._learn(method, mechanisms)

    def _missed(self, method: str, mechanisms: tuple[str, ...]) -> Mispredicted:
        early = _EARLY.get(self._sent or "", "the first query")
        predicted = _ASKED.get(self._predicted or TRUST, self._predicted)
        return Mispredicted(
            f"the server asked for {_ASKED[method]}"
            + (f" (mechanisms {', '.join(mechanisms)})" if mechanisms else "")
            + f", but {early} had already been sent, predicting {predicted} (pipelined "
            "start-up); the server ends such a session, so connect again (the driver now "
            "knows the method), or pass pipeline_connect=False",
            method,
            mechanisms,
        )
