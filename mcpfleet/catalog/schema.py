"""The catalog's JSON Schema, generated from the models and committed as catalog/schema.json."""

from __future__ import annotations

import json
from typing import Any

from mcpfleet.catalog.models import Server


def catalog_schema() -> dict[str, Any]:
    schema = Server.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


def render_schema() -> str:
    """The exact text of catalog/schema.json."""
    return json.dumps(catalog_schema(), indent=2, ensure_ascii=False) + "\n"
