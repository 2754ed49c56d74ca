"""mcpfleet: a fleet of MCP servers on Kubernetes, declared by a catalog and one stack per environment."""
