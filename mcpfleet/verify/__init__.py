"""`mcpfleet verify`: list every server's tools through the gateway, modern and legacy, and the fleet
endpoint's (`/mcp`), and report drift.

The public API is `plan`/`run_plan` (or `verify_fleet`) and the report renderers; listing, comparison,
the fleet endpoint's checks and tokens live below.
"""

from mcpfleet.verify.listing import CaFileError, Limits, trusting
from mcpfleet.verify.report import render_json, render_text, report_json
from mcpfleet.verify.run import (
    EndpointReport,
    FleetReport,
    Plan,
    ServerReport,
    gateway_url,
    plan,
    run_plan,
    verify_fleet,
)
from mcpfleet.verify.tokens import TokenFileError, Tokens, load_tokens

__all__ = [
    "CaFileError",
    "EndpointReport",
    "FleetReport",
    "Limits",
    "Plan",
    "ServerReport",
    "TokenFileError",
    "Tokens",
    "gateway_url",
    "load_tokens",
    "plan",
    "render_json",
    "render_text",
    "report_json",
    "run_plan",
    "trusting",
    "verify_fleet",
]
