"""pydantic's validation errors in plain words: what the field must be, never pydantic's own phrasing, a
raw regex, or the value given (it may be a pasted secret).
"""

from __future__ import annotations

import datetime
import difflib
import re
from typing import Any

from pydantic_core import ErrorDetails

# The patterns of the catalog's and the stacks' fields, each as the words a person reads: "must be ...".
# tests/catalog/test_messages.py fails when a model gains a pattern that has no words here.
PATTERN_WORDS: dict[str, str] = {
    # mcpfleet.model
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$": (
        "a DNS label: lowercase letters, digits and '-', starting with a letter, not ending with '-'"
    ),
    r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]([-a-z0-9]*[a-z0-9])?$": (
        "a lowercase DNS name such as api.example.com (`*.` in front for every name under it)"
    ),
    r"^[A-Z_][A-Z0-9_]*$": (
        "an environment variable name: upper-case letters, digits and '_', not starting with a digit"
    ),
    r"^([1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?)$": "a CPU quantity such as 250m, 1 or 1.5",
    r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$": (
        "a memory quantity such as 256Mi or 1Gi: a whole number, then Ki, Mi, Gi, Ti, k, M, G or T"
    ),
    r"^https://[^\s]+$": "an https:// URL, without spaces",
    (
        r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
        r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$"
    ): "an IPv4 range such as 10.40.0.0/16: four numbers from 0 to 255 (no leading zeros), then /0 to /32",
    # mcpfleet.catalog.models
    r"^[A-Za-z0-9_.-]{1,128}$": "a tool name: 1 to 128 letters, digits, '_', '.' and '-'",
    r"^[a-f0-9]{64}$": "a sha256: 64 lowercase hexadecimal digits",
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$": (
        "an image repository such as ghcr.io/org/server: lowercase, the registry host first, no tag"
    ),
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$": (
        "an image tag: up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    ),
    r"^sha256:[a-f0-9]{64}$": "a digest: `sha256:` and 64 lowercase hexadecimal digits",
    r"^/[A-Za-z0-9._~/-]*$": "an HTTP path: '/' then letters, digits, '.', '_', '~', '/' and '-'",
    r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$": (
        "a version: letters, digits, '.', '+', '_' and '-', starting with a letter or digit"
    ),
    r"^[A-Za-z0-9][A-Za-z0-9/_+=.@-]*$": (
        "a store key such as github/pat: letters, digits and / _ + = . @ -, starting with a letter or digit"
    ),
    r"^[a-z0-9][a-z0-9:_.-]*$": (
        "a role: lowercase letters, digits, ':', '_', '.' and '-', starting with a letter or digit"
    ),
    r"^(\*|[A-Za-z0-9_.-]{1,128})$": "a tool name (1 to 128 letters, digits, '_', '.' and '-') or `*`",
    r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$": "a reverse-DNS registry name such as io.github.org/server",
    # mcpfleet.stacks.models
    r"^1\.[0-9]{2}$": "a Kubernetes minor version such as 1.33",
    r"^[a-z0-9]+\.[a-z0-9]+$": "an EC2 instance type such as m7i.large",
    r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$": "an AWS region such as eu-west-1",
    r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$": "an availability zone such as eu-west-1a",
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$": (
        "an IAM role or user ARN such as arn:aws:iam::123456789012:role/NAME"
    ),
    r"^[A-Z0-9]{1,32}$": "a Route53 hosted zone id: up to 32 upper-case letters and digits",
    r"^[^@\s]+@[^@\s]+\.[^@\s]+$": "an e-mail address",
    r"^1\.[0-9]+\.[0-9]+$": "an Istio version such as 1.27.3",
    r"^[0-9]+(s|m|h)$": "a duration such as 30s, 5m or 1h",
    r"^[A-Za-z0-9/_+=.@-]*$": "letters, digits and / _ + = . @ - only",
    r"^[0-9]+(h|d|w)$": "a duration such as 12h, 15d or 2w",
    r"^[1-9][0-9]*(Gi|Ti)$": "a size such as 50Gi or 1Ti",
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}$": (
        "a claim name: up to 64 letters, digits and '_', not starting with a digit"
    ),
    r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$": (
        "an ACM certificate ARN such as arn:aws:acm:eu-west-1:123456789012:certificate/ID"
    ),
    r"^([a-z][-a-z0-9]{0,11}-)?$": (
        "empty, or a prefix such as mcp-: a lowercase letter, up to 11 letters, digits or '-', then '-'"
    ),
    r"^(\*|[a-z]([-a-z0-9]*[a-z0-9])?)$": "a server name (a DNS label) or `*` for every server",
}

_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_DATE_TYPES = frozenset(
    {
        "date_type",
        "date_parsing",
        "date_from_datetime_parsing",
        "date_from_datetime_inexact",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
    }
)


def kind_of(value: Any) -> str:
    """What a YAML value is, in words, without showing it."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime.date):
        return "a date"
    return "a value of another kind"


def choices_of(error: ErrorDetails) -> list[str]:
    """The values a literal accepts, from pydantic's `expected` ("'a', 'b' or 'c'")."""
    return [match.group(1) for match in _QUOTED.finditer(str(error.get("ctx", {}).get("expected", "")))]


def plain(error: ErrorDetails) -> str:
    """One pydantic error (`ValidationError.errors()` item) in plain words, for any type of error."""
    kind = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    given = error.get("input")
    found = kind_of(given)
    if kind == "missing":
        return "required field is missing"
    if kind in ("string_type", "string_sub_type", "string_unicode"):
        quote = " (put it in quotes)" if isinstance(given, int | float | datetime.date) else ""
        return f"must be text, found {found}{quote}"
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        if isinstance(given, float):
            return "must be a whole number, found a fraction"
        unquote = " (write it without quotes)" if isinstance(given, str) else ""
        return f"must be a whole number, found {found}{unquote}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        unquote = " (write it without quotes)" if isinstance(given, str) else ""
        return f"must be a number, found {found}{unquote}"
    if kind in ("bool_type", "bool_parsing"):
        unquote = " (write it without quotes)" if isinstance(given, str) else ""
        return f"must be true or false, found {found}{unquote}"
    if kind in ("list_type", "tuple_type", "set_type", "iterable_type"):
        return f"must be a list (one `- item` line each, indented under it), found {found}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return f"must be a mapping of fields (`key: value` lines indented under it), found {found}"
    if kind in ("literal_error", "enum"):
        return _one_of(choices_of(error), given)
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(str(ctx.get("pattern", "")))
        return f"must be {words}" if words else "is not in the form this field takes (see the schema)"
    if kind == "string_too_short":
        least = int(ctx.get("min_length", 1))
        return "must not be empty" if least <= 1 else f"must be at least {least} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short":
        least = int(ctx.get("min_length", 1))
        return f"needs at least {least} item{'s' if least != 1 else ''}, found {ctx.get('actual_length', 0)}"
    if kind == "too_long":
        return f"holds at most {ctx.get('max_length')} items, found {ctx.get('actual_length')}"
    if kind == "greater_than_equal":
        return f"must be {ctx.get('ge')} or more"
    if kind == "greater_than":
        return f"must be more than {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"must be {ctx.get('le')} or less"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    if kind == "multiple_of":
        return f"must be a multiple of {ctx.get('multiple_of')}"
    if kind in _DATE_TYPES:
        return f"must be a date written YYYY-MM-DD, found {found}"
    if kind in ("value_error", "assertion_error"):
        # Our models' own checks: their words are ours already.
        return str(ctx.get("error", "")) or "is not valid here"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("none_required",):
        return "must be left empty"
    return "is not a valid value here"


def _one_of(options: list[str], given: Any) -> str:
    if not options:
        return "is not one of the values this field takes (see the schema)"
    listed = ", ".join(options)
    text = f"must be one of: {listed}"
    if isinstance(given, str):
        close = difflib.get_close_matches(given, options, n=1, cutoff=0.6)
        if not close:
            # Case or separators: `Stdio`, `streamable_http`.
            folded = {_fold(option): option for option in options}
            close = [folded[_fold(given)]] if _fold(given) in folded else []
        if close:
            text += f" (did you mean {close[0]}?)"
    return text


def _fold(text: str) -> str:
    return re.sub(r"[-_\s]", "", text).lower()
