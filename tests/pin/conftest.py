"""Fixtures of the pin tests: real registries on loopback, started once per session and stopped after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.examples.running import fresh_event_loop_policy
from tests.pin.registry import Registry, run_registry

__all__ = ["fresh_event_loop_policy"]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """distribution 2.8 over TLS, no auth: what a private mirror looks like."""
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """distribution 2.8 with token auth: anonymous callers get pull tokens, as on Docker Hub and ghcr.io;
    `pin/private` gives them none."""
    root = tmp_path_factory.mktemp("token-registry")
    with run_registry(root, token_auth=True, private=frozenset({"pin/private"})) as running:
        yield running


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """distribution 2.8 with htpasswd auth and no user: every caller is asked for a password."""
    with run_registry(tmp_path_factory.mktemp("basic-registry"), htpasswd=True) as running:
        yield running
