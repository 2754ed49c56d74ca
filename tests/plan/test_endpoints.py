"""Where a plan says clients reach the environment: the fleet endpoint `/mcp` and each server's route, each
with the token audience it takes, in build/<env>/endpoints.json and in the summary `mcpfleet plan` prints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from components.gateway.config import render_gateway_config
from components.gateway.router_config import render_router_config
from mcpfleet.cli.main import app
from mcpfleet.model import ENVIRONMENTS
from mcpfleet.plan.endpoints import ENDPOINTS_FILE, endpoints, summary
from mcpfleet.plan.run import load_inputs, plan
from tests.conftest import REPO, minimal_server
from tests.sample import SAMPLE_CATALOG, sample_catalog

EVERYWHERE: dict[str, dict[str, object]] = {env: {} for env in ENVIRONMENTS}


@pytest.fixture
def two_servers(catalog_dir: Callable[..., Path]) -> Path:
    """A stateful Streamable HTTP server and an SSE one, everywhere."""
    return catalog_dir(
        notes=minimal_server("notes", environments=EVERYWHERE),
        feed=minimal_server(
            "feed", environments=EVERYWHERE, transport={"type": "sse", "port": 9000, "path": "/sse"}
        ),
    )


@pytest.fixture(autouse=True)
def in_repo() -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(REPO)
    yield
    os.chdir(previous)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_plan_writes_each_route_with_its_audience(env: str, two_servers: Path) -> None:
    _, fleet = load_inputs(env, two_servers, REPO / "stacks")  # type: ignore[arg-type]
    written = json.loads(plan(env, two_servers, REPO / "stacks", None).files[ENDPOINTS_FILE])  # type: ignore[arg-type]
    assert written == endpoints(fleet)
    domain = fleet.settings.domain
    assert written["fleet"] == {
        "url": f"https://{domain}/mcp",
        "audience": f"https://{domain}/mcp",
        "metadata": f"https://{domain}/.well-known/oauth-protected-resource/mcp",
        "issuer": fleet.settings.gateway.auth.issuer,
        "servers": 2,
        "unpinnedTools": "withhold" if env in ("staging", "prod") else "serve",
    }
    assert written["servers"] == {
        "feed": {"url": f"https://{domain}/servers/feed/sse", "audience": f"https://{domain}/servers/feed"},
        "notes": {
            "url": f"https://{domain}/servers/notes/mcp",
            "audience": f"https://{domain}/servers/notes",
        },
    }
    # What the plan says is what the gateway and the router it planned are configured with.
    router = json.loads(render_router_config(fleet))
    assert (router["fleet"]["publicPath"], router["fleet"]["audience"]) == (
        "/mcp",
        written["fleet"]["audience"],
    )
    haproxy = render_gateway_config(fleet)["haproxy.cfg"]
    assert "acl fleet_route path /mcp " in haproxy
    assert f"set-var(txn.audience) str({written['fleet']['audience']}) if fleet_route" in haproxy


def test_the_summary_names_the_fleet_endpoint_and_its_audience(two_servers: Path) -> None:
    _, fleet = load_inputs("staging", two_servers, REPO / "stacks")
    domain = fleet.settings.domain
    assert summary(fleet) == [
        f"fleet endpoint: https://{domain}/mcp (2 servers behind it, tools without a pin withheld)",
        f"  token audience https://{domain}/mcp, issuer {fleet.settings.gateway.auth.issuer}",
        f"server routes: https://{domain}/servers/<name>/mcp (/sse for SSE servers), token audience"
        f" https://{domain}/servers/<name>; each in endpoints.json",
    ]


@sample_catalog
def test_plan_prod_prints_the_fleet_endpoint_and_writes_its_routes(tmp_path: Path) -> None:
    out = tmp_path / "prod"
    result = CliRunner().invoke(
        app, ["plan", "--env", "prod", "--catalog", str(SAMPLE_CATALOG), "--out", str(out)]
    )
    _, fleet = load_inputs("prod", SAMPLE_CATALOG, REPO / "stacks")
    assert result.exit_code == 0, result.stderr
    for line in summary(fleet):
        assert line in result.stdout.splitlines()
    assert "fleet endpoint: https://mcp.example.com/mcp (" in result.stdout
    assert "token audience https://mcp.example.com/mcp," in result.stdout
    written = json.loads((out / ENDPOINTS_FILE).read_text(encoding="utf-8"))
    assert written["fleet"]["audience"] == "https://mcp.example.com/mcp"
    assert sorted(written["servers"]) == sorted(server.name for server in fleet.servers)
