"""Bearer tokens checked again at the router: pinned algorithm and key, claims read by the strict parser.

HAProxy checks tokens first; the router is the decision point, so it takes roles only from a token it
verified itself. Nothing in a token's header chooses how it is verified (alg, jwk, jku, x5u, kid are not
consulted), and its claims are parsed with the same strict reader as messages (duplicate claims refused).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import get_default_algorithms

from mcpfleet.router import strictjson
from mcpfleet.router.config import Auth

# Clock skew tolerated on nbf and iat (a token issued "in the future" by a skewed issuer clock).
LEEWAY_SECONDS = 30.0
MAX_TOKEN_LENGTH = 16 * 1024
CACHE_SIZE = 4096
_B64URL = re.compile(rb"^[A-Za-z0-9_-]*$")


class InvalidToken(Exception):
    """The token does not admit the caller; the message says why without quoting the token."""


@dataclass(frozen=True)
class Caller:
    """Who a verified token names, and its roles."""

    subject: str
    roles: frozenset[str]
    expires: float
    audiences: frozenset[str]


def _b64url(part: bytes) -> bytes:
    # Unpadded base64url only, as JWS compact serialization says; a padded or foreign alphabet is refused.
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise InvalidToken("not base64url")
    try:
        return base64.urlsafe_b64decode(part + b"=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None


def _number(claims: dict[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required or name in claims:
            raise InvalidToken(f"claim {name} missing" if name not in claims else f"claim {name} is null")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"claim {name} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidToken(f"claim {name} is not a finite number")
    return number


def _strings(value: Any, name: str, split: bool) -> list[str]:
    """A string (split on U+0020 alone when `split`, as OAuth scopes are) or a list of strings; anything
    else refused. `str.split()` would split on any Unicode whitespace: an identity provider's group
    named "support<TAB>engineer" would become two roles. So a value holding any other whitespace or a
    control character is refused rather than read either way."""
    if isinstance(value, str):
        items = [part for part in value.split(" ") if part] if split else [value]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise InvalidToken(f"claim {name} is not a string or a list of strings")
    if split and any(_UNREADABLE.search(item) for item in items):
        raise InvalidToken(f"claim {name} holds whitespace other than single spaces, or control characters")
    return items


# Whitespace other than the separator (Unicode's, which str.split() honours), and control characters.
_UNREADABLE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


class TokenVerifier:
    """Verifies tokens for one issuer and key; remembers verified tokens until they expire."""

    def __init__(self, auth: Auth, public_key_pem: bytes, clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.clock = clock
        self.algorithm = get_default_algorithms()[auth.algorithm]
        try:
            key = load_pem_public_key(public_key_pem)
            self.key = self.algorithm.prepare_key(key)
        except Exception as error:  # cryptography and PyJWT raise several types for a wrong key
            raise ValueError(f"the key is not an {auth.algorithm} public key ({error})") from None
        self._cache: OrderedDict[str, Caller] = OrderedDict()

    def verify(self, token: str, audience: str) -> Caller:
        """The caller a token names, if it is valid for `audience`; InvalidToken otherwise."""
        now = self.clock()
        caller = self._cache.get(token)
        if caller is None:
            caller = self._verify(token, now)
            self._cache[token] = caller
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
        if now >= caller.expires:
            self._cache.pop(token, None)
            raise InvalidToken("token expired")
        if audience not in caller.audiences:
            raise InvalidToken("token is not for this server")
        return caller

    def _verify(self, token: str, now: float) -> Caller:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("token too long")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("token is not ASCII") from None
        parts = raw.split(b".")
        if len(parts) != 3:
            raise InvalidToken("not a JWS compact token")
        header_part, payload_part, signature_part = parts
        try:
            header = strictjson.loads(_b64url(header_part))
            strictjson.dumps(header)
        except strictjson.NotStrictJson as error:
            raise InvalidToken(f"header: {error}") from None
        if not isinstance(header, dict):
            raise InvalidToken("header is not an object")
        # The pinned algorithm decides; the header must merely agree with it (so `none` and HS* are refused).
        if header.get("alg") != self.auth.algorithm:
            raise InvalidToken("algorithm is not the pinned one")
        if "crit" in header:
            raise InvalidToken("critical header extensions are not understood")
        signature = _b64url(signature_part)
        if not self.algorithm.verify(header_part + b"." + payload_part, self.key, signature):
            raise InvalidToken("bad signature")
        try:
            claims = strictjson.loads(_b64url(payload_part))
            strictjson.dumps(claims)
        except strictjson.NotStrictJson as error:
            raise InvalidToken(f"claims: {error}") from None
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not an object")
        return self._caller(claims, now)

    def _caller(self, claims: dict[str, Any], now: float) -> Caller:
        expires = _number(claims, "exp", required=True)
        assert expires is not None
        not_before = _number(claims, "nbf", required=False)
        issued = _number(claims, "iat", required=False)
        if now >= expires:
            raise InvalidToken("token expired")
        if not_before is not None and now + LEEWAY_SECONDS < not_before:
            raise InvalidToken("token not valid yet")
        if issued is not None and now + LEEWAY_SECONDS < issued:
            raise InvalidToken("token issued in the future")
        if claims.get("iss") != self.auth.issuer:
            raise InvalidToken("wrong issuer")
        if "aud" not in claims:
            raise InvalidToken("claim aud missing")
        audiences = _strings(claims["aud"], "aud", split=False)
        subject = claims.get(self.auth.subject_claim)
        if not isinstance(subject, str) or not subject.strip() or subject != subject.strip():
            raise InvalidToken(f"claim {self.auth.subject_claim} is not a non-empty string")
        roles: list[str] = []
        if self.auth.roles_claim in claims:
            roles = _strings(claims[self.auth.roles_claim], self.auth.roles_claim, split=True)
        return Caller(
            subject=subject,
            roles=frozenset(roles),
            expires=expires,
            # Every audience the token names: a server's (audiencePrefix + name) or the fleet endpoint's;
            # verify() admits only the one asked for.
            audiences=frozenset(audiences),
        )
