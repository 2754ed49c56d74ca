"""The pinned hash of an MCP tool: sha256 of the canonical JSON of its name, description and inputSchema.

Catalog entries pin it (`tools[].sha256`) so a tool that changes under the same name is drift, not news.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_tool(name: str, description: str | None, input_schema: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same tool always gives the same bytes."""
    document = {"name": name, "description": description or "", "inputSchema": input_schema}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def tool_hash(name: str, description: str | None, input_schema: Mapping[str, Any]) -> str:
    """Hex sha256 of canonical_tool: the value of `tools[].sha256` in a catalog entry."""
    return hashlib.sha256(canonical_tool(name, description, input_schema)).hexdigest()
