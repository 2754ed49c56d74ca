"""`mcpfleet pin`: image digests from the registries and tool hashes from running servers, into the catalog.

Everything is resolved before anything is written; a run that cannot resolve every pin writes nothing.
"""

from mcpfleet.pin.edit import EditError, EntryFile, write_all
from mcpfleet.pin.entries import Entries, check_texts
from mcpfleet.pin.images import (
    ImagePin,
    ImageTarget,
    apply_pins,
    digest_source,
    image_targets,
    registry_resolver,
    resolve_pins,
)
from mcpfleet.pin.reference import Location, locate
from mcpfleet.pin.registry import RegistryError, Resolved, resolve
from mcpfleet.pin.tools import ServerTools, ToolPin, apply_tool_pins, server_tools

__all__ = [
    "EditError",
    "Entries",
    "EntryFile",
    "ImagePin",
    "ImageTarget",
    "Location",
    "RegistryError",
    "Resolved",
    "ServerTools",
    "ToolPin",
    "apply_pins",
    "apply_tool_pins",
    "check_texts",
    "digest_source",
    "image_targets",
    "locate",
    "registry_resolver",
    "resolve",
    "resolve_pins",
    "server_tools",
    "write_all",
]
