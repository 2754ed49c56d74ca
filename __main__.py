"""mcpfleet's Pulumi program entry point: wiring only (see components/program.py)."""

from components.program import fleet_program

fleet_program()
