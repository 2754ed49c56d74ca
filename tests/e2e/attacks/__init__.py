"""The attack corpus: tricks an attacker with a valid token tries against the gateway (HAProxy, the MCP
router) and the real servers behind it, each checked against what the servers themselves recorded."""
