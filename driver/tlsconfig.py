"""libpq's TLS settings (sslmode, sslrootcert, sslcert, ...) turned into an SSLContext.

The meanings follow libpq ("SSL Mode Descriptions" in the PostgreSQL docs), except that
verification uses the system trust store unless a CA is given (libpq reads
~/.postgresql/root.crt), and a context offers a P-256 key share first: PostgreSQL up to 17
only accepts ``ssl_ecdh_curve`` (default prime256v1), so a client that leads with X25519, as
OpenSSL does by default, pays a HelloRetryRequest: one more round trip per connect.
"""

from __future__ import annotations

import ssl
import sys
from dataclasses import dataclass

from driver.errors import InterfaceError
from driver.params import SSL_MODES

__all__ = [
    "TLSSettings",
    "make_ssl_context",
    "prefer_p256_key_share",
]

# Key-exchange groups, P-256 first so its key share is the one sent in the ClientHello; the
# others stay supported (one HelloRetryRequest) for servers configured differently.
_GROUPS = b"P-256:X25519:P-384:P-521"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL ssl.h

_TLS_VERSIONS = {
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True, slots=True)
class TLSSettings:
    """The connection's TLS options, with libpq's names and defaults.

    ``sslrootcert`` is a CA file, or ``"system"`` for the system trust store (libpq 16);
    ``root_certs`` is PEM text (Neon's ``rootCerts``); ``ssl_context`` replaces everything
    else except ``sslmode`` (as asyncpg's ``ssl=`` does).
    """

    sslmode: str = "prefer"
    sslrootcert: str | None = None
    root_certs: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    sslpassword: str | None = None
    ssl_min_protocol_version: str = "TLSv1.2"
    ssl_max_protocol_version: str | None = None
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.sslmode not in SSL_MODES:
            raise InterfaceError(
                f"invalid sslmode {self.sslmode!r}: expected one of {', '.join(SSL_MODES)}"
            )
        if self.sslrootcert == "system" and self.sslmode != "verify-full":
            # libpq 16: the system store holds public CAs, which would vouch for anyone's
            # certificate for a name they own; only checking the name makes it safe.
            raise InterfaceError(
                f'weak sslmode "{self.sslmode}" may not be used with sslrootcert=system '
                '(use "verify-full")'
            )
        if (self.sslcert is None) != (self.sslkey is None):
            raise InterfaceError("sslcert and sslkey must be given together")
        _tls_version("ssl_min_protocol_version", self.ssl_min_protocol_version)
        if self.ssl_max_protocol_version is not None:
            _tls_version("ssl_max_protocol_version", self.ssl_max_protocol_version)

    @property
    def verifies_ca(self) -> bool:
        """Whether the server certificate chain is checked (libpq's require + root cert rule:
        naming a CA with sslmode=require verifies against it, as verify-ca does)."""
        if self.sslmode in ("verify-ca", "verify-full"):
            return True
        return self.sslmode == "require" and (
            self.sslrootcert is not None or self.root_certs is not None
        )

    @property
    def tls_required(self) -> bool:
        """True when the connection must fail rather than go on without TLS."""
        return self.sslmode in ("require", "verify-ca", "verify-full")


def make_ssl_context(settings: TLSSettings) -> ssl.SSLContext | None:
    """Build the client context for ``settings``; ``None`` for ``sslmode=disable``.

    Raises:
        InterfaceError: a CA, certificate or key file can't be loaded, or the options
            contradict each other.
    """
    if settings.sslmode == "disable":
        return None
    if settings.ssl_context is not None:
        return settings.ssl_context
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _tls_version(
        "ssl_min_protocol_version", settings.ssl_min_protocol_version
    )
    if settings.ssl_max_protocol_version is not None:
        ctx.maximum_version = _tls_version(
            "ssl_max_protocol_version", settings.ssl_max_protocol_version
        )
    if settings.verifies_ca:
        _load_trust(ctx, settings)
        ctx.check_hostname = settings.sslmode == "verify-full"
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        # allow/prefer/require without a CA: encryption only, as in libpq.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if settings.sslcert is not None and settings.sslkey is not None:
        try:
            ctx.load_cert_chain(settings.sslcert, settings.sslkey, password=settings.sslpassword)
        except (OSError, ssl.SSLError) as exc:
            raise InterfaceError(
                f"cannot load client certificate {settings.sslcert!r} / key "
                f"{settings.sslkey!r}: {exc}"
            ) from exc
    prefer_p256_key_share(ctx)
    return ctx


def _load_trust(ctx: ssl.SSLContext, settings: TLSSettings) -> None:
    try:
        if settings.sslrootcert not in (None, "system"):
            ctx.load_verify_locations(cafile=settings.sslrootcert)
        if settings.root_certs is not None:
            ctx.load_verify_locations(cadata=settings.root_certs)
    except (OSError, ssl.SSLError, ValueError) as exc:
        source = (
            "root_certs"
            if settings.sslrootcert in (None, "system")
            else (f"sslrootcert={settings.sslrootcert!r}")
        )
        raise InterfaceError(f"cannot load the CA certificates from {source}: {exc}") from exc
    if settings.sslrootcert == "system" or (
        settings.sslrootcert is None and settings.root_certs is None
    ):
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)


def _tls_version(option: str, value: str) -> ssl.TLSVersion:
    try:
        return _TLS_VERSIONS[value.lower()]
    except KeyError:
        raise InterfaceError(
            f"unsupported {option} {value!r}: expected TLSv1.2 or TLSv1.3"
        ) from None


def prefer_p256_key_share(ctx: ssl.SSLContext) -> bool:
    """Make ``ctx`` send a P-256 key share first while still supporting other groups.

    Python 3.11's ssl module has no API for the group list (``set_ecdh_curve`` would make
    P-256 the ONLY group, and break servers set up with another curve), so this calls
    OpenSSL's ``SSL_CTX_set1_groups_list`` on the context's own ``SSL_CTX`` through ctypes.
    The pointer is only used after a cross-check (OpenSSL's view of the context's options
    must equal the ssl module's), so on another interpreter or layout nothing is touched.

    Returns:
        True if the group list was set; False if the context keeps OpenSSL's defaults (then
        PostgreSQL <= 17 answers with a HelloRetryRequest, which costs a round trip).
    """
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info < (3, 15):
        return False  # the struct layout below is only known for these versions
    try:
        import _ssl
        import ctypes

        lib = ctypes.CDLL(_ssl.__file__)
        get_options = lib.SSL_CTX_get_options
        get_options.argtypes = [ctypes.c_void_p]
        get_options.restype = ctypes.c_uint64
        ctrl = lib.SSL_CTX_ctrl
        ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
        ctrl.restype = ctypes.c_long
        # PySSLContext starts with PyObject_HEAD, then the SSL_CTX pointer.
        ptr = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if not ptr or get_options(ptr) != int(ctx.options):
            return False
        return bool(ctrl(ptr, _SSL_CTRL_SET_GROUPS_LIST, 0, _GROUPS) == 1)
    except (ImportError, OSError, AttributeError, ValueError):
        return False
