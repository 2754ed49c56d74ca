"""Names on the fleet endpoint: `<server>__<name>` for tools and prompts, `mcpfleet://<server>/<uri>` for
resources and templates, and the keyset cursors of its lists (docs/router.md, "Names")."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

SEPARATOR: Final = "__"
URI_SCHEME: Final = "mcpfleet://"
MAX_NAME_LENGTH: Final = 128
"""A namespaced tool or prompt name longer than this is not served (what MCP clients accept)."""
MAX_CURSOR_LENGTH: Final = 8192
_SERVER = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def valid_server(name: str) -> bool:
    return _SERVER.fullmatch(name) is not None


def name_prefix(server: str) -> str:
    """What every namespaced name of the server starts with. No prefix is another's prefix (server names
    hold no `_`), so each server's names form one contiguous block in code-point order."""
    return server + SEPARATOR


def uri_prefix(server: str) -> str:
    """What every namespaced URI of the server starts with; prefix-free as `name_prefix` (no `/`)."""
    return f"{URI_SCHEME}{server}/"


def namespace_name(server: str, name: str) -> str:
    return server + SEPARATOR + name


def split_name(namespaced: str) -> tuple[str, str] | None:
    """(server, original name), split at the first `__`; None when that is not a namespaced name."""
    server, separator, name = namespaced.partition(SEPARATOR)
    if not separator or not name or not valid_server(server):
        return None
    return server, name


def namespace_uri(server: str, uri: str) -> str:
    return f"{URI_SCHEME}{server}/{uri}"


def split_uri(namespaced: str) -> tuple[str, str] | None:
    """(server, original URI, verbatim); None when that is not a namespaced URI."""
    if not namespaced.startswith(URI_SCHEME):
        return None
    server, slash, uri = namespaced[len(URI_SCHEME) :].partition("/")
    if not slash or not uri or not valid_server(server):
        return None
    return server, uri


class BadCursor(ValueError):
    """A cursor this endpoint did not issue."""


def encode_cursor(last: str) -> str:
    """The cursor after `last`: its base64url, unpadded."""
    return base64.urlsafe_b64encode(last.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> str:
    """The last name a cursor names; BadCursor when it is not one of ours (wrong alphabet, padding, not
    canonical, not UTF-8, too long)."""
    if len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise BadCursor("invalid cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != cursor:
            raise BadCursor("invalid cursor")
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadCursor("invalid cursor") from None
