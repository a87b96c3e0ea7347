"""PBKDF2-HMAC for runtimes whose hashlib lacks it (Pyodide), so SCRAM-SHA-256 still works there.

scramp derives the SCRAM salted password with `hashlib.pbkdf2_hmac` when it exists and with a
much slower pure-Python loop when it does not (older scramp releases have no fallback at all).
Filling the gap in `hashlib` itself, and only when it is missing, fixes every scramp version
without touching scramp's internals and never replaces the C implementation where there is one.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["ensure_hashlib_pbkdf2", "pbkdf2_hmac"]

_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def pbkdf2_hmac(
    hash_name: str,
    password: bytes | bytearray | memoryview,
    salt: bytes | bytearray | memoryview,
    iterations: int,
    dklen: int | None = None,
) -> bytes:
    """Derive a key exactly as `hashlib.pbkdf2_hmac` does (RFC 8018, section 5.2).

    The keyed inner and outer hash states are computed once and copied per iteration, and the
    running XOR is kept as one integer: together about 3x faster than calling `hmac.new` per
    iteration, which matters because SCRAM asks for 4096 iterations per connect.

    Args:
        hash_name: a hashlib digest name, e.g. "sha256".
        password: the secret, already normalised (SASLprep) by the caller.
        salt: the salt the server sent.
        iterations: the iteration count the server sent (at least 1).
        dklen: derived key length; the digest size when None.

    Returns:
        The derived key, `dklen` bytes long.

    Raises:
        ValueError: for an iteration count or key length below 1, or an unknown hash name.
    """
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if dklen is not None and dklen < 1:
        raise ValueError("key length must be greater than 0.")
    key = bytes(password)
    salt = bytes(salt)
    inner = hashlib.new(hash_name)
    outer = hashlib.new(hash_name)
    block_size = inner.block_size
    if len(key) > block_size:
        key = hashlib.new(hash_name, key).digest()
    key = key.ljust(block_size, b"\0")
    inner.update(key.translate(_IPAD))
    outer.update(key.translate(_OPAD))

    def prf(msg: bytes) -> bytes:
        icpy = inner.copy()
        ocpy = outer.copy()
        icpy.update(msg)
        ocpy.update(icpy.digest())
        return ocpy.digest()

    size = inner.digest_size
    dklen = dklen or size
    blocks: list[bytes] = []
    index = 1
    while size * len(blocks) < dklen:
        u = prf(salt + index.to_bytes(4, "big"))
        acc = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = prf(u)
            acc ^= int.from_bytes(u, "big")
        blocks.append(acc.to_bytes(size, "big"))
        index += 1
    return b"".join(blocks)[:dklen]


def ensure_hashlib_pbkdf2(module: Any = hashlib) -> bool:
    """Give `hashlib` a `pbkdf2_hmac` if it has none; call before starting SCRAM.

    Cheap and idempotent, so the auth code can call it on every SCRAM exchange instead of at
    import time (importing the driver then changes nothing in the process).

    Args:
        module: the module to complete; tests pass a stand-in instead of the real hashlib.

    Returns:
        True when this call installed the fallback, False when the module already had one.
    """
    if hasattr(module, "pbkdf2_hmac"):
        return False
    module.pbkdf2_hmac = pbkdf2_hmac
    return True
