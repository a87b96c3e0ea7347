"""Password authentication answers: cleartext, MD5 and SCRAM-SHA-256 ("SASL Authentication")."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from scramp import ScramClient  # type: ignore[import-untyped]

from ..errors import InterfaceError

__all__ = ["SCRAM_MECHANISM", "SCRAMClient", "md5_password"]

SCRAM_MECHANISM = "SCRAM-SHA-256"
SCRAM_PLUS = "SCRAM-SHA-256-PLUS"


def md5_password(user: str, password: str, salt: bytes) -> bytes:
    """``"md5" + md5(md5(password + user) + salt)`` as the server expects ("Message Flow")."""
    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
    return b"md5" + hashlib.md5(inner + salt).hexdigest().encode()


class SCRAMClient:
    """The client side of one SCRAM-SHA-256 exchange.

    With ``channel_binding`` (the ``tls-server-end-point`` hash of the server certificate)
    and a -PLUS mechanism, the exchange is bound to the TLS session.
    """

    def __init__(
        self, mechanism: str, user: str, password: str, channel_binding: bytes | None
    ) -> None:
        binding = ("tls-server-end-point", channel_binding) if channel_binding else None
        self.mechanism = mechanism
        # The server ignores this name (it uses the startup user), but scramp wants one.
        self._client = ScramClient([mechanism], user or "*", password, channel_binding=binding)

    @staticmethod
    def choose(
        mechanisms: Sequence[str], channel_binding: bytes | None
    ) -> tuple[str, bytes | None]:
        """The default choice when no AuthGuard decides: -PLUS over TLS if offered."""
        if channel_binding is not None and SCRAM_PLUS in mechanisms:
            return SCRAM_PLUS, channel_binding
        if SCRAM_MECHANISM not in mechanisms:
            raise InterfaceError(
                f"server offers SASL mechanisms {list(mechanisms)}; this driver supports "
                f"{SCRAM_MECHANISM}, and {SCRAM_PLUS} only over TLS"
            )
        return SCRAM_MECHANISM, None

    def first_message(self) -> bytes:
        return str(self._client.get_client_first()).encode()

    def final_message(self, server_first: bytes) -> bytes:
        self._client.set_server_first(server_first.decode())
        return str(self._client.get_client_final()).encode()

    def verify(self, server_final: bytes) -> None:
        """Raises scramp.ScramException if the server's signature is wrong."""
        self._client.set_server_final(server_final.decode())
