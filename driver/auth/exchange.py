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
from ..protocol.backend import (
    AuthenticationCleartextPassword,
    AuthenticationMD5Password,
    AuthenticationOther,
    AuthenticationSASL,
    AuthenticationSASLContinue,
    AuthenticationSASLFinal,
    BackendMessage,
)
from ..protocol.frontend import password_message, sasl_initial_response, sasl_response
from .methods import MD5, NONE, PASSWORD, REQUESTS, SCRAM, SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM

if TYPE_CHECKING:
    from .scram import SCRAMClient

__all__ = ["AuthGuard", "Authenticator", "Learn", "Mispredicted", "md5_password"]

# What each predicted answer is, for error messages.
_EARLY = {PASSWORD: "the cleartext password", SCRAM: "the SCRAM client-first message"}
_SUPPORTED = ", ".join((NONE, PASSWORD, MD5, SCRAM))
Learn = Callable[[str, tuple[str, ...]], None]
AuthRequest = (
    AuthenticationCleartextPassword | AuthenticationMD5Password | AuthenticationSASL
    | AuthenticationSASLContinue | AuthenticationSASLFinal | AuthenticationOther
)  # fmt: skip


class AuthGuard(Protocol):
    """The policy for one connection attempt (``driver.auth.policy.AuthGuard``): it decides,
    and keeps the one record of which method and SASL step the server is at."""

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
    """A new SCRAM exchange. ``driver.auth.scram`` (hashlib, secrets, the key cache) is imported
    here, on the first SCRAM authentication, not with the driver: trust, password and md5
    connections never need it."""
    from .scram import SCRAMClient

    return SCRAMClient(mechanism, user, password, binding)


class Authenticator:
    """The client's half of one authentication exchange, driven by ``PGProtocol``.

    Args:
        predict: the method the server is expected to ask for: ``"scram-sha-256"`` (send
            client-first now), ``"password"`` (send the password now; the caller has checked
            that the policy allows it), ``"none"`` (nothing to send, ever), or None (wait
            and answer whatever comes).
        guard: the policy's guard; without one (tests), any method is answered.
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
        if guard is None:
            from .policy import AuthPolicy

            guard = AuthPolicy(allow_unencrypted_password=True).guard(
                encrypted=False, channel_binding=channel_binding, proxied=False
            )
        self._guard: AuthGuard = guard
        self._learn = learn
        self._predicted = predict
        self._offered = tuple(mechanisms)
        self._sent: str | None = None  # the method whose answer already went out unasked
        self._scram: SCRAMClient | None = None
        self._server_first: bytes | None = None  # waiting for its keys (``work``)
        self.work: Callable[[], None] | None = None  # PBKDF2 to run off the event loop
        self.method: str | None = None  # what the server asked for, once it has
        self.complete = password is None or predict == NONE

    def start(self) -> list[bytes]:
        """The messages that follow the StartupMessage in the same flight."""
        password, guard = self._password, self._guard
        if password is None:
            return []
        if self._predicted == PASSWORD and guard.may_send_password_early():
            self._sent, self.complete = PASSWORD, True
            return [password_message(password.encode())]
        if self._predicted == SCRAM:
            offered = self._offered or (
                (SCRAM_PLUS_MECHANISM, SCRAM_MECHANISM)
                if self._channel_binding
                else (SCRAM_MECHANISM,)
            )
            try:
                mechanism, binding = guard.choose_mechanism(offered)
            except InterfaceError:
                return []  # the policy will refuse whatever the server offers: let it say so
            self._scram = _scram_client(mechanism, self._user, password, binding)
            self._sent = SCRAM
            return [sasl_initial_response(mechanism, self._scram.first_message())]
        return []

    def on_request(self, msg: BackendMessage, *, committed: bool) -> list[bytes]:
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
        if not isinstance(msg, AuthRequest):
            raise ProtocolError(f"unexpected {type(msg).__name__} during authentication")
        code = msg.code if isinstance(msg, AuthenticationOther) else msg.CODE
        self._guard.on_request(code)  # the policy first: it may refuse before anything else
        request = REQUESTS.get(code)
        if isinstance(msg, AuthenticationOther):
            name = request.asked if request is not None else f"method code {code}"
            raise InterfaceError(
                f"server requested {name}, which this driver does not support "
                f"(supported: {_SUPPORTED})"
            )
        if isinstance(msg, AuthenticationSASLContinue | AuthenticationSASLFinal):
            return self._sasl_step(msg)
        assert request is not None and request.method is not None  # codes 3, 5, 10
        method = request.method
        offered = tuple(msg.mechanisms) if isinstance(msg, AuthenticationSASL) else ()
        self._found(method, offered)
        if self._password is None:
            raise InterfaceError(
                f"server requested a password for user {self._user!r} but none was given"
            )
        if self._sent is not None and method != self._sent:
            raise self._missed(method, offered)
        if self._sent is None and committed:
            raise self._missed(method, offered)
        if isinstance(msg, AuthenticationCleartextPassword):
            self.complete = True
            return [] if self._sent else [password_message(self._password.encode())]
        if isinstance(msg, AuthenticationMD5Password):
            self.complete = True
            return [password_message(md5_password(self._user, self._password, msg.salt))]
        mechanism, binding = self._guard.choose_mechanism(msg.mechanisms)
        if self._scram is not None:  # client-first went out with the StartupMessage
            if (mechanism, self._scram.gs2_header) != (
                self._scram.mechanism,
                type(self._scram).gs2_for(mechanism, binding),
            ):
                raise self._missed(SCRAM, offered)
            return []
        self._scram = _scram_client(mechanism, self._user, self._password, binding)
        return [sasl_initial_response(mechanism, self._scram.first_message())]

    def _sasl_step(self, msg: AuthenticationSASLContinue | AuthenticationSASLFinal) -> list[bytes]:
        # the guard has checked the order of SASL steps; without a client there is no exchange
        if self._scram is None:
            raise ProtocolError("SASL message without a SASL exchange in progress")
        if isinstance(msg, AuthenticationSASLContinue):
            self.complete = True
            self.work = self._scram.key_job(msg.data)
            if self.work is not None:  # answered by resume(), once the keys are derived
                self._server_first = msg.data
                return []
            return [sasl_response(self._scram.final_message(msg.data))]
        self._scram.verify(msg.data)  # raises ProtocolError if the server lacks the key
        return []

    def resume(self) -> list[bytes]:
        """The answer held back while ``work`` ran; ``work`` is done (or ran inline)."""
        server_first, self._server_first = self._server_first, None
        if self._scram is None or server_first is None:
            return []
        self.work = None
        return [sasl_response(self._scram.final_message(server_first))]

    def on_ok(self) -> None:
        """AuthenticationOk: check that what had to happen did (SCRAM proof, the policy).

        Raises:
            AuthPolicyError: the policy demanded an authentication that did not happen.
            Mispredicted: no request came (trust) but a predicted answer was sent, which the
                server will now read as a query and fail on.
            ProtocolError: AuthenticationOk before the server proved it knows the password.
        """
        if self.method is None:
            self._guard.on_ok()
            self._found(NONE, ())
            if self._sent is not None:
                raise self._missed(NONE, ())
            return
        if self._scram is not None and not self._scram.verified:
            raise ProtocolError("AuthenticationOk before the server proved its SCRAM key")
        self._guard.on_ok()

    def _found(self, method: str, mechanisms: tuple[str, ...]) -> None:
        if self.method is None:
            self.method = method
            if self._learn is not None:
                self._learn(method, mechanisms)

    def _missed(self, method: str, mechanisms: tuple[str, ...]) -> Mispredicted:
        early = _EARLY.get(self._sent or "", "the first query")
        predicted = _asked(self._predicted or NONE)
        return Mispredicted(
            f"the server asked for {_asked(method)}"
            + (f" (mechanisms {', '.join(mechanisms)})" if mechanisms else "")
            + f", but {early} had already been sent, predicting {predicted} (pipelined "
            "start-up); the server ends such a session, so connect again (the driver now "
            "knows the method), or pass pipeline_connect=False",
            method,
            mechanisms,
        )


def _asked(method: str) -> str:
    """How error messages name what the server asked for with ``method``."""
    for request in REQUESTS.values():
        if request.method == method and not request.continues:
            return request.asked
    return "no authentication" if method == NONE else method
