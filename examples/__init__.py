"""Runnable examples: reference MCP servers and the catalog that describes them."""
