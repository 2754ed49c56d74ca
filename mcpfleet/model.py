"""Shared pydantic conventions and value types for every hand-written input."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

EnvName = Literal["local", "dev", "staging", "prod"]
ENVIRONMENTS: tuple[EnvName, ...] = ("local", "dev", "staging", "prod")

# RFC 1035 label, kept short so derived names (`<name>-gateway`, `mcp-<name>`) stay within 63.
DnsLabel = Annotated[
    str, StringConstraints(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", min_length=1, max_length=40)
]
Hostname = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]([-a-z0-9]*[a-z0-9])?$",
        max_length=253,
    ),
]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128)]
CpuQuantity = Annotated[str, StringConstraints(pattern=r"^([1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?)$")]
MemoryQuantity = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[^\s]+$", max_length=2048)]
# Octets 0-255 without leading zeros, as Python's ipaddress (which the NetworkPolicies and subnets are
# computed with) accepts them.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
Cidr = Annotated[str, StringConstraints(pattern=rf"^({_OCTET}\.){{3}}{_OCTET}/([0-9]|[12][0-9]|3[0-2])$")]


class Model(BaseModel):
    """Strict, closed, immutable: unknown fields are errors and "3" is not a number."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=False,
    )


_CPU_UNITS = {"m": 0.001}
_MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def cpu_cores(quantity: str) -> float:
    """'250m' -> 0.25, '2' -> 2.0."""
    if quantity.endswith("m"):
        return int(quantity[:-1]) * _CPU_UNITS["m"]
    return float(quantity)


def memory_bytes(quantity: str) -> int:
    """'256Mi' -> 268435456."""
    match = re.fullmatch(r"([0-9]+)([A-Za-z]*)", quantity)
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


class RateLimits(Model):
    """Requests per minute the gateway admits before answering 429, counted per gateway replica."""

    per_caller_per_minute: int = Field(
        default=600, ge=1, le=1_000_000, description="One caller (token subject) at one server."
    )
    per_server_per_minute: int = Field(
        default=6000, ge=1, le=10_000_000, description="All callers together at one server."
    )
