"""Real processes for the router's integration tests: reference servers recording what they ran, and
router processes in front of them sharing one set of session keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcpfleet.router.local import RunningRouter, new_session_keys, router_process
from tests.examples.running import Running, fresh_event_loop_policy, reference_server
from tests.router.support import (
    NOTES_ACCESS,
    NOTES_TOOLS,
    TEXT_TOOLS,
    UNITS_TOOLS,
    Issuer,
    router_config,
    server_entry,
)

__all__ = ["fresh_event_loop_policy"]

# support may count and slugify; engineers may run every text tool (digest among them).
TEXT_ACCESS = (
    {"tools": ["word_count", "slugify"], "roles": ["support"]},
    {"tools": ["*"], "roles": ["engineer"]},
)
UNITS_ACCESS = ({"tools": ["*"], "roles": ["support", "engineer"]},)


@dataclass
class Server:
    """A reference server process and the record of every message it executed."""

    running: Running
    call_log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def calls(self) -> list[dict[str, Any]]:
        if not self.call_log.exists():
            return []
        return [json.loads(line) for line in self.call_log.read_text(encoding="utf-8").splitlines()]

    def tools_run(self) -> list[str]:
        return [c["tool"] for c in self.calls() if c["method"] == "tools/call"]


@dataclass
class Stack:
    issuer: Issuer
    keys: list[bytes]
    servers: dict[str, Server]
    routers: list[RunningRouter]
    config: dict[str, Any]
    directory: Path


def start_server(stack: ExitStack, name: str, replica: str, directory: Path) -> Server:
    log = directory / f"calls-{replica}.jsonl"
    running = stack.enter_context(
        reference_server(name, "--replica-id", replica, "--call-log", str(log), log_dir=directory)
    )
    return Server(running, log)


def fleet_config(servers: dict[str, Server]) -> dict[str, Any]:
    return router_config(
        {
            "notes": server_entry(
                "notes", [servers["notes-a"].address, servers["notes-b"].address], NOTES_TOOLS, NOTES_ACCESS
            ),
            "text": server_entry("text", [servers["text"].address], TEXT_TOOLS, TEXT_ACCESS, stateless=True),
            "units": server_entry(
                "units", [servers["units"].address], UNITS_TOOLS, UNITS_ACCESS, stateless=True
            ),
        }
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """notes (two replicas), text and units, behind two router processes sharing their session keys."""
    directory = tmp_path_factory.mktemp("router-stack")
    issuer = Issuer("RS256")
    keys = new_session_keys()
    with ExitStack() as processes:
        servers = {
            "notes-a": start_server(processes, "notes", "notes-a", directory),
            "notes-b": start_server(processes, "notes", "notes-b", directory),
            "text": start_server(processes, "text", "text-1", directory),
            "units": start_server(processes, "units", "units-1", directory),
        }
        config = fleet_config(servers)
        routers = [
            processes.enter_context(
                router_process(config, issuer.public_pem, keys, directory / f"router-{i}")
            )
            for i in range(2)
        ]
        yield Stack(issuer, keys, servers, routers, config, directory)
