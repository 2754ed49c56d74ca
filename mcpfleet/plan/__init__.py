"""`mcpfleet plan`: the Pulumi program run offline, its resources and manifests written to build/<env>/."""
