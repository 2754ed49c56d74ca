"""Shared fixtures: the repository's own inputs, and small catalogs written on the fly."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

# The gateway sandbox's marker, and its child session for the tests using it when not run as root.
pytest_plugins = ["tests.sandbox"]

REPO = Path(__file__).resolve().parent.parent
# What `make test` installed without root (scripts/install_tools.py) comes first, for the tests and what they
# start: haproxy, promtool, openssl (and npm), else the machine's own on PATH.
os.environ["PATH"] = os.pathsep.join((str(REPO / ".tools" / "bin"), os.environ.get("PATH", "")))


def minimal_server(name: str = "alpha", **fields: Any) -> dict[str, Any]:
    """The smallest valid catalog entry; keyword arguments replace or add top-level fields."""
    entry: dict[str, Any] = {
        "name": name,
        "title": f"{name.title()} server",
        "description": "A server used by the tests.",
        "version": "1.2.3",
        "owner": {"team": "platform", "contact": "platform@example.com"},
        "repository": {"url": f"https://github.com/example/{name}", "source": "github"},
        "image": {"repository": f"ghcr.io/example/{name}", "tag": "1.2.3"},
        "transport": {"type": "streamable-http", "port": 8080, "path": "/mcp"},
    }
    entry.update(fields)
    return entry


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write entries (dicts as YAML, or raw text/bytes) as servers/<file>.yaml; return the catalog folder."""

    def write(**files: dict[str, Any] | str | bytes) -> Path:
        root = tmp_path / "catalog"
        servers = root / "servers"
        servers.mkdir(parents=True, exist_ok=True)
        for stem, content in files.items():
            path = servers / f"{stem}.yaml"
            if isinstance(content, bytes):
                path.write_bytes(content)
            elif isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        return root

    return write


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    """A copy of the repository's stack files, safe to edit."""
    target = tmp_path / "stacks"
    shutil.copytree(REPO / "stacks", target)
    return target
