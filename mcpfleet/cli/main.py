"""Entry point of the `mcpfleet` console script."""

from mcpfleet.cli import dev, diff, new, pin, plan, validate, verify  # noqa: F401 - importing registers the commands
from mcpfleet.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
