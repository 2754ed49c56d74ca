"""Bearer tokens for `mcpfleet verify`: one for every server, or one per server (tokens are audience-bound),
and one for the fleet endpoint under its path (`"/mcp"`, which no server name can be).

A token's text never appears in an error, a report or a log: problems name the file and the server only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mcpfleet.errors import display_path

# RFC 6750 b64token: what may follow `Bearer ` in an Authorization header.
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


class TokenFileError(Exception):
    """The token file cannot be used; the message names the file and never quotes its content."""


@dataclass(frozen=True)
class Tokens:
    """The tokens of one run: a shared one, or a mapping from server name to its own."""

    shared: str | None = field(default=None, repr=False)
    per_server: dict[str, str] = field(default_factory=dict, repr=False)
    source: str | None = None
    """The file they came from, as the user typed it (for messages)."""

    def for_server(self, server: str) -> str | None:
        return self.shared if self.shared is not None else self.per_server.get(server)

    def for_endpoint(self, path: str) -> str | None:
        """The token of an endpoint that is no server's (the fleet endpoint), keyed by its path."""
        return self.shared if self.shared is not None else self.per_server.get(path)

    def names(self, path: str) -> bool:
        """Whether the file holds a token of its own for the endpoint at path."""
        return path in self.per_server


def load_tokens(path: Path) -> Tokens:
    """Read path: a file holding one bearer token, or a YAML/JSON mapping of server name (or the fleet
    endpoint's path, `/mcp`) to token."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise TokenFileError(f"{shown}: cannot read the token file ({reason})") from None
    stripped = text.strip()
    if not stripped:
        raise TokenFileError(f"{shown}: the token file is empty")
    if "\n" not in stripped and _B64TOKEN.match(stripped):
        return Tokens(shared=stripped, source=shown)
    try:
        data = yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        # The parser's message quotes the offending text, which may be a token: give the position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TokenFileError(f"{shown}: neither one token nor a YAML/JSON mapping{where}") from None
    if not isinstance(data, dict):
        raise TokenFileError(
            f"{shown}: expected one bearer token, or a mapping of server name to token"
            " (a token holds no spaces and fits one line)"
        )
    per_server: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise TokenFileError(f"{shown}: server names must be strings")
        if not isinstance(value, str) or not _B64TOKEN.match(value.strip()):
            raise TokenFileError(f"{shown}: the token of server {key!r} is not a bearer token string")
        per_server[key] = value.strip()
    if not per_server:
        raise TokenFileError(f"{shown}: the mapping names no server")
    return Tokens(per_server=per_server, source=shown)
