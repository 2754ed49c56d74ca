"""Jinja2 templates shipped with the package (`mcpfleet new` renders server.yaml.j2)."""
