"""The client side of SCRAM-SHA-256(-PLUS) ("SASL Authentication"), with the derived keys
kept in memory so that a process connecting again pays no PBKDF2.

Each connect of a serverless function would otherwise spend most of its CPU budget on 4096
rounds of HMAC-SHA-256 (RFC 7677), always with the same password, salt and iteration count
(the server stores one salt per role). The keys are cached by a hash of those three inputs,
never written anywhere, and are exactly as sensitive as the password they come from.

``driver.auth.exchange.Authenticator`` drives it: ``first_message()``,
``final_message(server_first)``, ``verify(server_final)``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

from ..errors import InterfaceError, ProtocolError
from .methods import SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM
from .pbkdf2 import select_pbkdf2_hmac

__all__ = ["MAX_ITERATIONS", "SCRAMClient", "clear_key_cache", "derive_off_loop"]

# The most PBKDF2 iterations a server may ask for. PostgreSQL's default is 4096 and its
# scram_iterations setting goes up to INT_MAX, but real deployments stay far below a million;
# a hostile server asking 2,000,000,000 would otherwise cost ~20 minutes of CPU per connect.
MAX_ITERATIONS = 10_000_000
# Up to this many iterations (a few ms of CPU) the keys are derived inline: a thread hop would
# cost more than it saves. Beyond it, off the event loop (``key_job``).
INLINE_ITERATIONS = 100_000

_CACHE_SIZE = 64
_cache: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()
_lock = threading.Lock()
_PBKDF2_HMAC = select_pbkdf2_hmac()  # hashlib's, or a pure one where hashlib lacks it (Pyodide)


def clear_key_cache() -> None:
    """Forget every derived key (e.g. after a password rotation)."""
    with _lock:
        _cache.clear()


def _saslprep(password: str) -> str:
    """SASLprep (RFC 4013) as the server applies it, via scramp only when it can matter.

    Printable ASCII is its own SASLprep (the mappings and prohibitions only touch non-ASCII
    and control characters), and importing scramp costs ~35 ms of start-up, so most
    passwords skip it. Like the server, a password SASLprep refuses is used as is.
    """
    if password.isascii() and password.isprintable():
        return password
    from importlib import import_module  # scramp ships no type information

    try:
        return str(import_module("scramp.utils").saslprep(password))
    except Exception:
        return password


def _pbkdf2(password: bytes, salt: bytes, iterations: int) -> bytes:
    return _PBKDF2_HMAC("sha256", password, salt, iterations)


def _ident(password: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.sha256(
        len(salt).to_bytes(4, "big") + salt + iterations.to_bytes(8, "big") + password
    ).digest()


def _cached(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes] | None:
    ident = _ident(password, salt, iterations)
    with _lock:
        hit = _cache.get(ident)
        if hit is not None:
            _cache.move_to_end(ident)
        return hit


def _keys(password: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """(ClientKey, ServerKey) of RFC 5802, derived once per (password, salt, iterations)."""
    hit = _cached(password, salt, iterations)
    if hit is not None:
        return hit
    ident = _ident(password, salt, iterations)
    salted = _pbkdf2(password, salt, iterations)
    keys = (_hmac(salted, b"Client Key"), _hmac(salted, b"Server Key"))
    with _lock:
        _cache[ident] = keys
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return keys


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _attributes(message: bytes, what: str) -> dict[str, str]:
    try:
        text = message.decode("utf-8")
        return dict(part.split("=", 1) for part in text.split(","))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(f"malformed SCRAM {what} message") from None


class SCRAMClient:
    """One SCRAM exchange. ``channel_binding`` is the ``tls-server-end-point`` data when TLS
    is up: required for the -PLUS mechanism, and without -PLUS it makes the GS2 flag 'y'
    (the client could bind; a server that can too then knows the mechanism was downgraded).
    """

    def __init__(
        self,
        mechanism: str,
        user: str,
        password: str,
        channel_binding: bytes | None,
        *,
        nonce: str | None = None,
    ) -> None:
        if mechanism not in (SCRAM_MECHANISM, SCRAM_PLUS_MECHANISM):
            raise InterfaceError(f"unsupported SASL mechanism {mechanism!r}")
        if mechanism == SCRAM_PLUS_MECHANISM and channel_binding is None:
            raise InterfaceError(f"{SCRAM_PLUS_MECHANISM} needs channel binding data (TLS)")
        self.mechanism = mechanism
        self._gs2 = self.gs2_for(mechanism, channel_binding)
        self._cb = (channel_binding or b"") if mechanism == SCRAM_PLUS_MECHANISM else b""
        prepared = _saslprep(password)
        self._password = prepared.encode("utf-8")
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        # Postgres ignores this name (the startup message has it); other servers want one.
        name = (user or "*").replace("=", "=3D").replace(",", "=2C")
        self._first_bare = f"n={name},r={self._nonce}"
        self._server_signature: bytes | None = None
        self._derived: tuple[bytes, bytes] | None = None  # (ClientKey, ServerKey), once known
        self.verified = False  # the server proved it knows the password (server-final)

    @staticmethod
    def gs2_for(mechanism: str, channel_binding: bytes | None) -> str:
        """The GS2 header (RFC 5802): 'p' binds, 'y' could bind but the server can't, 'n' no
        TLS. Two exchanges are interchangeable only if mechanism and header both match."""
        if mechanism == SCRAM_PLUS_MECHANISM:
            return "p=tls-server-end-point,,"
        return "y,," if channel_binding is not None else "n,,"

    @property
    def gs2_header(self) -> str:
        return self._gs2

    def first_message(self) -> bytes:
        return (self._gs2 + self._first_bare).encode()

    def key_job(self, server_first: bytes) -> Callable[[], None] | None:
        """The PBKDF2 work ``final_message()`` needs, to run off the event loop, or None when
        the keys are known already (the cache) or cheap (INLINE_ITERATIONS at most): connect's
        deadline must hold during it.

        Raises:
            ProtocolError: as ``final_message()`` does (checked before any work).
        """
        _, salt, iterations = self._server_first(server_first)
        if iterations <= INLINE_ITERATIONS or _cached(self._password, salt, iterations):
            return None

        def derive() -> None:
            self._derived = _keys(self._password, salt, iterations)

        return derive

    def _server_first(self, server_first: bytes) -> tuple[str, bytes, int]:
        attrs = _attributes(server_first, "server-first")
        if "m" in attrs:
            raise ProtocolError("the server requires a SCRAM extension this client lacks")
        nonce, salt_b64, count = attrs.get("r", ""), attrs.get("s"), attrs.get("i", "")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise ProtocolError("the server's SCRAM nonce does not extend the client's")
        if salt_b64 is None or not count.isdigit() or int(count) < 1:
            raise ProtocolError("malformed SCRAM server-first message (salt or iterations)")
        if int(count) > MAX_ITERATIONS:
            raise ProtocolError(
                f"the server asks for {count} SCRAM iterations, more than the "
                f"{MAX_ITERATIONS:,} this driver accepts (PostgreSQL's default is 4096)"
            )
        try:
            salt = base64.b64decode(salt_b64, validate=True)
        except ValueError:
            raise ProtocolError("malformed SCRAM salt") from None
        return nonce, salt, int(count)

    def final_message(self, server_first: bytes) -> bytes:
        """Answer server-first; derives (or reuses) the keys.

        Raises:
            ProtocolError: a malformed message, a nonce that does not extend ours, or an
                iteration count that is not a positive number or above MAX_ITERATIONS.
        """
        nonce, salt, iterations = self._server_first(server_first)
        client_key, server_key = self._derived or _keys(self._password, salt, iterations)
        cbind = base64.b64encode(self._gs2.encode() + self._cb).decode()
        without_proof = f"c={cbind},r={nonce}"
        auth = f"{self._first_bare},{server_first.decode()},{without_proof}".encode()
        stored_key = hashlib.sha256(client_key).digest()
        signature = _hmac(stored_key, auth)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = _hmac(server_key, auth)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        """Check that the server knew the password too (before trusting AuthenticationOk).

        Raises:
            ProtocolError: the server reported an error or its signature is wrong.
        """
        attrs = _attributes(server_final, "server-final")
        if "e" in attrs:
            raise ProtocolError(f"the server rejected the SCRAM exchange: {attrs['e']}")
        if self._server_signature is None:
            raise ProtocolError("SCRAM server-final before server-first")
        try:
            given = base64.b64decode(attrs.get("v", ""), validate=True)
        except ValueError:
            raise ProtocolError("malformed SCRAM server signature") from None
        if not hmac.compare_digest(given, self._server_signature):
            raise ProtocolError(
                "the server's SCRAM signature is wrong: it does not know the "
                "password (or someone is in the middle)"
            )
        self.verified = True


async def derive_off_loop(job: Callable[[], None]) -> None:
    """Run a ``key_job()`` in a worker thread, so the event loop (and connect's deadline)
    keeps going; inline where there are no threads (Pyodide). A deadline that passes leaves
    the thread to finish on its own: its work is bounded by MAX_ITERATIONS."""
    if sys.platform == "emscripten":
        job()
        return
    import asyncio

    await asyncio.to_thread(job)
