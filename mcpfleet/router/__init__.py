"""The MCP router: reads each message once, strictly, decides on it, and forwards exactly what it read.

Entry points: `python -m mcpfleet.router` (a process), `build_app` (the ASGI app, for tests and tools),
`mcpfleet.router.local` (start one as a subprocess on free loopback ports). Contract: docs/router.md.
"""
