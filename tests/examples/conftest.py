"""Fixtures of the reference-server tests."""

from tests.examples.running import fresh_event_loop_policy

__all__ = ["fresh_event_loop_policy"]
