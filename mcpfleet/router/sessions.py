"""Sealed session ids: what a legacy client sees instead of the server's own session id.

An AES-GCM token binding the server, the caller who opened the session, the pod that holds it and the
server's own id (or, for a session of the fleet endpoint, the caller alone). Any router replica holding
the keys can open it, so nothing is stored and a session survives the loss of a replica; a forged or
random id fails authentication and creates no state.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcpfleet.router import strictjson

PREFIX = "mf1."
"""Version of the sealing format: a later format gets a new prefix, and old ids are refused, not misread."""
_AAD = b"mcpfleet-router-session/1"
NONCE_BYTES = 12
MAX_SEALED_LENGTH = 2048
MAX_INNER_LENGTH = 512
OPENED_CACHE = 4096
"""Sealed ids opened lately, kept opened: every message of a session carries the same id."""

Kind = Literal["http", "sse", "fleet"]
KINDS = ("http", "sse", "fleet")


class UnknownSession(Exception):
    """Not a session id this router (or a replica sharing its keys) issued."""


@dataclass(frozen=True)
class Session:
    """What a sealed id binds."""

    kind: Kind
    """`http`: a Streamable HTTP session (the server's Mcp-Session-Id); `sse`: an SSE message endpoint;
    `fleet`: a session of the fleet endpoint, answered by the router itself (no server, no pod)."""
    server: str
    subject: str
    pod: str
    """The pod holding the session, `ip:port` (empty for `fleet`)."""
    inner: str
    """The server's own session id (`http`), the announced message endpoint's path and query (`sse`), or
    the fleet session's own random id (`fleet`)."""
    issued: int


class Sealer:
    """Seals with the first key, opens with any (keys rotate without dropping sessions)."""

    def __init__(self, keys: list[bytes]) -> None:
        self._ciphers: list[AESGCM] = []
        self._opened: dict[str, Session] = {}
        self.replace(keys)

    def replace(self, keys: list[bytes]) -> None:
        """Another key list, as a whole (the key file changed): sessions sealed with a key it no longer
        holds are unknown from now on."""
        if not keys:
            raise ValueError("at least one session key is needed")
        self._ciphers = [AESGCM(key) for key in keys]
        self._opened = {}

    def seal(self, kind: Kind, server: str, subject: str, pod: str, inner: str) -> str:
        if len(inner) > MAX_INNER_LENGTH:
            raise ValueError("the server's session id is too long to seal")
        plain = strictjson.dumps(
            {"k": kind, "s": server, "u": subject, "p": pod, "i": inner, "t": int(time.time())}
        )
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._ciphers[0].encrypt(nonce, plain, _AAD)
        return PREFIX + base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> Session:
        """What a sealed id binds, or UnknownSession. Ids that opened are kept opened (the oldest make
        room first); ids that do not open are never kept, so forged ones cannot crowd out real ones."""
        session = self._opened.get(token)
        if session is None:
            session = self._open(token)
            if len(self._opened) >= OPENED_CACHE:
                del self._opened[next(iter(self._opened))]
            self._opened[token] = session
        return session

    def _open(self, token: str) -> Session:
        if not token.startswith(PREFIX) or len(token) > MAX_SEALED_LENGTH:
            raise UnknownSession("not a session id of this gateway")
        body = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise UnknownSession("not a session id of this gateway") from None
        if len(raw) <= NONCE_BYTES + 16 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != body:
            raise UnknownSession("not a session id of this gateway")
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        for cipher in self._ciphers:
            try:
                plain = cipher.decrypt(nonce, sealed, _AAD)
            except InvalidTag:
                continue
            return _session(strictjson.loads(plain))
        raise UnknownSession("not a session id of this gateway")


def _session(fields: Any) -> Session:
    # Only this code seals, so a well-formed payload is the norm; a malformed one means a key leaked or a bug.
    if not isinstance(fields, dict) or fields.get("k") not in KINDS:
        raise UnknownSession("malformed session")
    values = [fields.get(name) for name in ("s", "u", "p", "i")]
    if not all(isinstance(v, str) for v in values) or not isinstance(fields.get("t"), int):
        raise UnknownSession("malformed session")
    server, subject, pod, inner = (str(v) for v in values)
    return Session(fields["k"], server, subject, pod, inner, fields["t"])
