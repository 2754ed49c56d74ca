"""Fixtures of the verify tests."""

from tests.examples.running import fresh_event_loop_policy

__all__ = ["fresh_event_loop_policy"]
