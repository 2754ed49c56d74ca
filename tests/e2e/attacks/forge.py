"""JWS compact tokens assembled by hand, so a forgery can carry any header, any payload bytes (duplicate
claims included) and any signature: what an attacker sends rather than what a JWT library would allow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(value: Mapping[str, Any] | bytes) -> bytes:
    """JSON bytes of a mapping (compact), or bytes written by hand (duplicate keys, odd types) unchanged."""
    if isinstance(value, bytes):
        return value
    return json.dumps(dict(value), separators=(",", ":")).encode("utf-8")


def signing_input(header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes) -> bytes:
    return f"{b64url(compact(header))}.{b64url(compact(payload))}".encode("ascii")


def rs256(
    key: rsa.RSAPrivateKey, header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes
) -> str:
    data = signing_input(header, payload)
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{data.decode()}.{b64url(signature)}"


def hs256(secret: bytes, header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes) -> str:
    """HMAC-SHA256 with secret as the key: the HS/RS confusion when secret is the issuer's public PEM."""
    data = signing_input(header, payload)
    signature = hmac.new(secret, data, hashlib.sha256).digest()
    return f"{data.decode()}.{b64url(signature)}"


def unsigned(
    header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes, signature: str = ""
) -> str:
    return f"{signing_input(header, payload).decode()}.{signature}"


def jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """The public key as a JWK (RFC 7517), as an attacker embeds their own."""
    numbers = key.public_numbers()

    def integer(value: int) -> str:
        return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "e": integer(numbers.e), "n": integer(numbers.n)}


def split(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature
