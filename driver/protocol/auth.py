"""Password authentication helpers: the MD5 answer and the SCRAM mechanism choice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..errors import InterfaceError

__all__ = ["SCRAM_MECHANISM", "SCRAM_PLUS", "choose_mechanism", "md5_password"]

SCRAM_MECHANISM = "SCRAM-SHA-256"
SCRAM_PLUS = "SCRAM-SHA-256-PLUS"


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """``"md5" + md5(md5(password + user) + salt)`` as the server expects ("Message Flow")."""
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode()


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
