"""Make recorded inputs plain, stable JSON: the way a reviewer should read them."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc

UNKNOWN = "(known after apply)"
SECRET = "[secret]"

# Objects start with what identifies them; everything else follows in sorted order.
_FIRST_KEYS = ("apiVersion", "kind", "metadata", "name", "namespace")


def normalize(value: Any) -> Any:
    """Secrets masked, unknowns named, 3.0 back to 3 (the engine sends every number as a float)."""
    if isinstance(value, dict):
        if rpc.is_rpc_secret(value):
            # A secret map keeps its keys (names, like a Secret's env var names) and loses its values,
            # so a rendered Secret stays a valid manifest.
            inner = value.get("value")
            return dict.fromkeys(sorted(inner), SECRET) if isinstance(inner, dict) else SECRET
        keys = [k for k in _FIRST_KEYS if k in value] + sorted(k for k in value if k not in _FIRST_KEYS)
        return {key: normalize(value[key]) for key in keys}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, pulumi.Resource):
        return f"(resource {type(value).__name__})"
    return value
