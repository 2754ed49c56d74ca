"""Per-environment settings from the Pulumi stack files."""
