"""Make recorded inputs plain, stable JSON: the way a reviewer should read them."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

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
        return {key: normalize(value[key]) for key in _ordered_keys(value)}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, pulumi.Resource):
        return f"(resource {type(value).__name__})"
    return value


def normalize_properties(properties: Any) -> dict[str, Any]:
    """normalize(rpc.deserialize_properties(properties)) in one pass, for the preview the plan runs.

    properties: a protobuf Struct (google.protobuf.struct_pb2, typed Any: the project has no stubs).

    Registrations arrive as protobuf structs; deserializing them into Python values and normalizing
    those took a tenth of a plan's time. This reads the struct once and builds the normalized values
    directly, by the same rules: nulls dropped from maps (kept in lists), the unknown sentinel named,
    and a secret anywhere in a property making the whole property secret (the SDK moves secretness
    up to the top-level property, which normalize then masks). Anything else the SDK can encode
    (assets, archives, resource references, output values) takes the general way.
    """
    if not pulumi_settings.is_dry_run():
        # Outside a preview the SDK reads the unknown sentinel as None, not as an unknown value.
        return normalize(rpc.deserialize_properties(properties))  # type: ignore[no-any-return]
    try:
        fields = properties.fields
        if rpc._special_sig_key in fields:
            raise _General
        normalized: dict[str, Any] = {}
        for key, value in fields.items():
            item, secret = _value(value)
            if secret:
                normalized[key] = dict.fromkeys(sorted(item), SECRET) if type(item) is dict else SECRET
            elif item is not None:
                normalized[key] = item
        return {key: normalized[key] for key in _ordered_keys(normalized)}
    except _General:
        return normalize(rpc.deserialize_properties(properties))  # type: ignore[no-any-return]


class _General(Exception):
    """A value _value does not shortcut: normalize the whole struct the general way."""


def _value(value: Any) -> tuple[Any, bool]:
    """The normalized value (a secret's unmasked), and whether it is or holds a secret."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text = value.string_value
        return (UNKNOWN if text == rpc.UNKNOWN else text), False
    if kind == "number_value":
        number = value.number_value
        return (int(number) if number.is_integer() else number), False
    if kind == "bool_value":
        return value.bool_value, False
    if kind == "null_value":
        return None, False
    if kind == "list_value":
        items = []
        secret = False
        for element in value.list_value.values:
            item, element_secret = _value(element)
            secret = secret or element_secret
            items.append(item)
        return items, secret
    if kind == "struct_value":
        return _struct(value.struct_value)
    raise _General


def _struct(struct: Any) -> tuple[Any, bool]:
    fields = struct.fields
    if rpc._special_sig_key in fields:
        signature = fields[rpc._special_sig_key]
        if (
            signature.WhichOneof("kind") == "string_value"
            and signature.string_value == rpc._special_secret_sig
            and "value" in fields
        ):
            return _value(fields["value"])[0], True
        raise _General
    items: dict[str, Any] = {}
    secret = False
    for key, value in fields.items():
        item, item_secret = _value(value)
        secret = secret or item_secret
        # A secret null is not null: it stays, as the SDK keeps it (wrapped).
        if item_secret or item is not None:
            items[key] = item
    return {key: items[key] for key in _ordered_keys(items)}, secret


def _ordered_keys(mapping: dict[str, Any]) -> list[str]:
    return [k for k in _FIRST_KEYS if k in mapping] + sorted(k for k in mapping if k not in _FIRST_KEYS)
