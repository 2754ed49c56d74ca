"""Catalog entries for the fleet rules' cases (catalog YAML form, enabled in every environment)."""

from __future__ import annotations

from typing import Any

EVERYWHERE: dict[str, dict[str, Any]] = {"local": {}, "dev": {}, "staging": {}, "prod": {}}


def entry(name: str, tools: list[Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A valid catalog entry; tools as names or {name, sha256} mappings."""
    result: dict[str, Any] = {
        "name": name,
        "title": f"{name.title()} server",
        "description": "A server used by the policy cases.",
        "version": "1.2.3",
        "owner": {"team": "platform", "contact": "platform@example.com"},
        "repository": {"url": f"https://github.com/example/{name}", "source": "github"},
        "image": {"repository": f"ghcr.io/example/{name}", "tag": "1.2.3"},
        "transport": {"type": "streamable-http", "port": 8080, "path": "/mcp"},
        "tools": [t if isinstance(t, dict) else {"name": t} for t in (tools or [])],
        "environments": EVERYWHERE,
    }
    result.update(fields)
    return result


def pinned(name: str) -> dict[str, str]:
    return {"name": name, "sha256": "ab" * 32}
