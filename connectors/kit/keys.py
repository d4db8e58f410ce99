"""Signing keys for JWT client assertions: PEM or JWK private keys, RSA or EC.

RSA keys sign RS256; EC keys on P-256, P-384 and P-521 sign ES256, ES384 and ES512 (RFC 7518
§3.1). A JWK may be a single key or a JWK set holding exactly one key (RFC 7517 §5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

# PyJWT and cryptography are imported where a key is loaded or used, not here: a source that
# signs in with a token or a client secret (Okta's API token, Entra's secret) never needs them,
# and they are about 10 MB of every run's resident memory.

__all__ = ["SigningKey", "load_signing_key"]

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key, the JWS algorithm it signs with, and the JOSE header fields that name it."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str
    key_id: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of ``claims`` (``kid`` in the header when known, plus :attr:`headers`)."""
        import jwt

        headers = {**({"kid": self.key_id} if self.key_id else {}), **self.headers}
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers or None)


def load_signing_key(text: str, key_id: str | None = None, *, name: str = "private_key") -> SigningKey:
    """Load a PEM or JWK private key; ``key_id`` defaults to the JWK's ``kid``.

    Raises ValueError with a message that names the setting ``name`` and never quotes the key.
    """
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    text = text.strip()
    key: object
    kid = key_id
    if text.startswith("{"):
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
                data = data["keys"][0]  # a JWK set holding exactly one key
            jwk = jwt.PyJWK(data)
        except (ValueError, TypeError, jwt.PyJWKError) as exc:
            raise ValueError(f"{name} looks like JSON but is not a JWK private key ({type(exc).__name__})") from None
        key = jwk.key
        kid = kid or (data.get("kid") if isinstance(data.get("kid"), str) else None)
    else:
        try:
            key = load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{name} is neither an unencrypted PEM private key nor a JWK ({type(exc).__name__})"
            ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return SigningKey(key, "RS256", kid)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGORITHMS:
        return SigningKey(key, _EC_ALGORITHMS[key.curve.name], kid)
    raise ValueError(f"{name} must be an RSA or EC (P-256/384/521) *private* key")
