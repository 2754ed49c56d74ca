"""`mcpfleet verify`: list every server's tools through the gateway, modern and legacy, and report drift.

The public API is `verify_fleet` and the report renderers; listing, comparison and tokens live below.
"""

from mcpfleet.verify.listing import CaFileError, Limits, trusting
from mcpfleet.verify.report import render_json, render_text, report_json
from mcpfleet.verify.run import FleetReport, ServerReport, gateway_url, verify_fleet
from mcpfleet.verify.tokens import TokenFileError, Tokens, load_tokens

__all__ = [
    "CaFileError",
    "FleetReport",
    "Limits",
    "ServerReport",
    "TokenFileError",
    "Tokens",
    "gateway_url",
    "load_tokens",
    "render_json",
    "render_text",
    "report_json",
    "trusting",
    "verify_fleet",
]
