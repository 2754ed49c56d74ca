"""The `mcpfleet` command line: one module per command, all sharing the exit-code contract.

Exit 0 when all is well, 1 for invalid input or failed checks, 2 for usage errors (typer's own).
"""
