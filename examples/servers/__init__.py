"""Reference MCP servers on the mcp SDK, for the tests and `mcpfleet dev`.

Run one with `python -m examples.servers.<name> --host 127.0.0.1 --port 8080`.
"""
