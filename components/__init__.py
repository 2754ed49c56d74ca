"""Pulumi component resources of mcpfleet: thin classes over the pure builders in `manifests`."""
