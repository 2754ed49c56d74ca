"""MCP servers of the router's tests started as processes from a module (`python -m <module>`), on a free
loopback port or a given one (a server restarted in place keeps its address in the router's config)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.examples.running import Running, _process, free_port


@contextmanager
def module_server(
    module: str, args: Sequence[str], log_dir: Path, port: int | None = None, health: str | None = "/healthz"
) -> Iterator[Running]:
    """`python -m module *args` with `{port}` in args replaced by the port; ready once `health` answers
    (None: once the port accepts connections)."""
    port = port or free_port()
    command = [sys.executable, "-m", module, *(arg.replace("{port}", str(port)) for arg in args)]
    log = log_dir / f"{module.rsplit('.', 1)[-1]}-{port}.log"
    with _process(module, command, port, log, health, dict(os.environ)) as running:
        yield running
