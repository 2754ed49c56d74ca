"""Strict JSON: one reading of a document or a refusal, and the canonical bytes of what was read.

The router decides on what this module parses and forwards what it serializes, so a server can never
read a different message: anything two JSON parsers could read differently is refused here.
"""

from __future__ import annotations

import json
import math
from typing import Any

UTF8_BOM = b"\xef\xbb\xbf"
# CPython's default int-to-str limit, fixed here so a process-wide setting cannot widen what is accepted.
MAX_INT_DIGITS = 4300


class NotStrictJson(ValueError):
    """The document is not one unambiguous JSON value; the message says why (never quoting the input)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Keys arrive unescaped, so "\u006dethod" and "method" collide here as they would in any reader.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise NotStrictJson("duplicate key in an object")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise NotStrictJson(f"non-standard literal {name}")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NotStrictJson("number out of range")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise NotStrictJson("integer has too many digits")
    return int(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_constant=_constant, parse_float=_float, parse_int=_int
)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def loads(data: bytes) -> Any:
    """Parse one JSON document from UTF-8 bytes, refusing anything ambiguous.

    Refused: invalid UTF-8, a byte-order mark, duplicate keys at any depth (after unescaping),
    NaN/Infinity, numbers that overflow to infinity, integers beyond the digit limit, trailing data,
    nesting too deep for the parser. Lone surrogates are refused by `dumps`, which every accepted
    document goes through before it is forwarded."""
    if data.startswith(UTF8_BOM):
        raise NotStrictJson("byte-order mark")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotStrictJson("not UTF-8") from None
    try:
        return _DECODER.decode(text)
    except NotStrictJson:
        raise
    except json.JSONDecodeError as error:
        raise NotStrictJson(f"invalid JSON ({error.msg})") from None
    except ValueError:
        # int() past its digit limit, should the constant above ever exceed the interpreter's.
        raise NotStrictJson("number out of range") from None
    except RecursionError:
        raise NotStrictJson("nesting too deep") from None


def dumps(value: Any) -> bytes:
    """The canonical bytes of a parsed value: compact JSON, UTF-8, keys in the order read."""
    try:
        return _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        # A "\ud800" escape decodes to a lone surrogate, which no UTF-8 reader agrees on.
        raise NotStrictJson("lone surrogate in a string") from None
    except RecursionError:
        raise NotStrictJson("nesting too deep") from None


def parse(data: bytes) -> tuple[Any, bytes]:
    """`loads` then `dumps`: the value and the canonical bytes to forward, or NotStrictJson."""
    value = loads(data)
    return value, dumps(value)
