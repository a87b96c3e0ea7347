"""Bearer tokens for POST /sql: a shared secret (SQL_HTTP_AUTH_TOKEN), or a JWT signed by a key
of a JWKS file (SQL_HTTP_JWKS_FILE), as neon()'s ``authToken`` sends it; PyJWT does the JOSE."""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import ConfigError

# Asymmetric algorithms only: a JWKS publishes public keys (an "oct" key would make the
# file a secret, and "none" is never accepted).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")


class TokenCheck:
    """Admits a request presenting the shared secret or a JWT that a JWKS key verifies."""

    def __init__(self, secret: str, jwks_file: str) -> None:
        self.secret = secret
        self.keys: dict[str | None, Any] = {}
        if jwks_file:
            self.keys = _load_jwks(jwks_file)

    @property
    def required(self) -> bool:
        return bool(self.secret or self.keys)

    def admits(self, headers: Mapping[str, str]) -> tuple[bool, str]:
        """Returns (admitted, why not) from the Authorization header."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() != "bearer ":
            return False, "missing bearer token"
        token = auth[7:].strip()
        if self.secret and hmac.compare_digest(token.encode(), self.secret.encode()):
            return True, ""
        if not self.keys:
            return False, "wrong bearer token"
        return self._verify_jwt(token)

    def _verify_jwt(self, token: str) -> tuple[bool, str]:
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.keys.get(kid) or (self.keys.get(None) if len(self.keys) == 1 else None)
            if key is None:
                return False, "no key in the JWKS for this token"
            jwt.decode(
                token,
                key,
                algorithms=[a for a in ALGORITHMS if a == key.algorithm_name],
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            return False, f"invalid token: {exc}"
        return True, ""


def _load_jwks(path: str) -> dict[str | None, Any]:
    """kid -> PyJWK (None for a single key without a kid).

    Raises:
        ConfigError: the file is missing, not a JWKS, or holds a key we would not accept.
    """
    try:
        import jwt
    except ImportError:
        raise ConfigError("SQL_HTTP_JWKS_FILE needs PyJWT: pip install '.[proxy]'") from None
    try:
        doc = json.loads(Path(path).read_text())
        jwks = jwt.PyJWKSet.from_dict(doc)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(f"SQL_HTTP_JWKS_FILE {path!r}: {exc}") from None
    keys: dict[str | None, Any] = {}
    for key in jwks.keys:
        if key.algorithm_name not in ALGORITHMS:
            raise ConfigError(
                f"SQL_HTTP_JWKS_FILE: key {key.key_id!r} uses {key.algorithm_name}; "
                f"accepted: {', '.join(ALGORITHMS)}"
            )
        keys[key.key_id] = key
    if not keys:
        raise ConfigError("SQL_HTTP_JWKS_FILE holds no key")
    return keys
