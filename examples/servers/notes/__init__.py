"""Notes kept in memory per MCP session: the stateful reference server (sessions need affinity)."""
