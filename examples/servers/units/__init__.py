"""Unit conversion and arithmetic: a stateless reference server."""
