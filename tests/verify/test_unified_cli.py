"""`mcpfleet verify` of the fleet endpoint over HTTP, in both eras: an endpoint made here serves the real
tools of the reference servers (and server-everything), namespaced, in pages, as an honest router does,
then as a broken one would (a drifted tool served, a tool withheld, a tool shown to a caller who may
not call it). The real router's endpoint is verified by tests/dev (`mcpfleet dev`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from mcp import Client
from mcp.server import Server
from mcp_types import ListToolsResult, PaginatedRequestParams
from mcp_types import Tool as McpTool
from typer.testing import CliRunner

from examples.servers.units.server import build as build_units
from mcpfleet.cli.main import app
from tests.conftest import REPO
from tests.examples.running import Running, honest_fleet
from tests.verify.test_cli import RequireToken, serve_in_thread, urls_of

pytestmark = pytest.mark.slow
__all__ = ["honest_fleet"]  # a fixture, used by name

PAGE_SIZE = 5
# Read, not checked, by verify (the gateway checks signatures): any key signs.
KEY = "a key of thirty-two bytes at least"
runner = CliRunner()


def token(roles: str) -> str:
    return jwt.encode({"sub": "verify", "roles": roles}, KEY, algorithm="HS256")


ENGINEER = token("engineer sre")
SUPPORT = token("support")


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


async def _listed(server: Any) -> list[McpTool]:
    async with Client(server, mode="legacy", cache=None) as client:
        return list((await client.list_tools()).tools)


def listed(server: Any) -> list[McpTool]:
    return anyio.run(_listed, server)


@dataclass
class Listing:
    """What the endpoint lists now (tests change it), in pages of PAGE_SIZE, cursors of its own."""

    tools: list[McpTool] = field(default_factory=list)

    async def __call__(self, ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
        start = int(params.cursor) if params and params.cursor else 0
        end = start + PAGE_SIZE
        cursor = str(end) if end < len(self.tools) else None
        return ListToolsResult(tools=self.tools[start:end], next_cursor=cursor)


def namespaced(server: str, tools: list[McpTool]) -> list[McpTool]:
    return [tool.model_copy(update={"name": f"{server}__{tool.name}"}) for tool in tools]


@dataclass(frozen=True)
class Endpoint:
    url: str
    """The fleet endpoint's URL (`.../mcp`)."""
    listing: Listing
    every: dict[str, McpTool]
    """Every tool of the fleet, namespaced, as an honest endpoint lists it for an engineer."""

    def serve(self, *names: str, extra: tuple[McpTool, ...] = ()) -> None:
        """List every tool but those named (or only what is named, when a name starts with `=`)."""
        only = [name[1:] for name in names if name.startswith("=")]
        kept = [tool for name, tool in self.every.items() if (name in only if only else name not in names)]
        self.listing.tools = [*kept, *extra]


@pytest.fixture(scope="module")
def endpoint(honest_fleet: dict[str, Running]) -> Iterator[Endpoint]:
    every: dict[str, McpTool] = {}
    for name, running in honest_fleet.items():
        every.update({tool.name: tool for tool in namespaced(name, listed(running.url))})
    listing = Listing()
    server = Server("fleet", on_list_tools=listing)
    with serve_in_thread(RequireToken(server.streamable_http_app(), ENGINEER)) as url:
        yield Endpoint(url, listing, dict(sorted(every.items())))


@pytest.fixture
def support_endpoint(endpoint: Endpoint) -> Iterator[Endpoint]:
    """The same tools, behind a check of the support caller's token."""
    server = Server("fleet", on_list_tools=endpoint.listing)
    with serve_in_thread(RequireToken(server.streamable_http_app(), SUPPORT)) as url:
        yield Endpoint(url, endpoint.listing, endpoint.every)


def verify(endpoint: str, token_text: str | None, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    command = ["verify", "--env", "dev", "--catalog", "examples/catalog", "--endpoint", endpoint, *args]
    if token_text is not None:
        path = tmp_path / "token"
        path.write_text(token_text + "\n", encoding="utf-8")
        command += ["--token-file", str(path)]
    result = runner.invoke(app, command)
    return result.exit_code, result.stdout, result.stderr


def test_an_honest_endpoint_passes_in_both_eras(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.serve()
    code, out, err = verify(endpoint.url, ENGINEER, tmp_path, "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True and report["servers"] == [] and report["endpoint"] == endpoint.url
    fleet = report["fleet"]
    assert fleet["status"] == "ok" and fleet["roles"] == ["engineer", "sre"] and fleet["token"] == "shared"
    total = len(endpoint.every)
    pages = -(-total // PAGE_SIZE)
    assert [(x["mode"], x["status"], len(x["tools"]), x["pages"]) for x in fleet["listings"]] == [
        ("modern", "ok", total, pages),
        ("legacy", "ok", total, pages),
    ]
    assert fleet["agree"] is True
    assert fleet["check"]["servers"] == {"everything": 13, "notes": 4, "text": 4, "units": 3}
    assert fleet["check"]["withheld"] == [] and fleet["check"]["changed"] == []
    # Each tool's hash is its pin's: over the server's own name.
    units = {x["name"]: x["sha256"] for x in fleet["listings"][0]["tools"]}
    assert units["units__convert"] == "dfbfb0a5f6699ea048ce1fa3f99f9dc238010ad53c2d48c3254c3e90c5e46101"

    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path)
    assert code == 0
    assert f"/mcp: ok  {endpoint.url}  (fleet endpoint)" in out
    assert f"modern 2026-07-28: {total} tools in {pages} pages" in out
    assert "tools listed per server: everything 13, notes 4, text 4, units 3" in out
    assert f"no drift: {total} tools listed, every tool this caller may call" in out
    assert out.splitlines()[-1] == "fleet endpoint /mcp ok"


def test_a_drifted_tool_served_is_named(endpoint: Endpoint, tmp_path: Path) -> None:
    (drifted,) = [
        tool for tool in namespaced("units", listed(build_units(True))) if tool.name == "units__convert"
    ]
    endpoint.serve("units__convert", extra=(drifted,))
    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path)
    assert code == 1
    assert "/mcp: DRIFT" in out
    assert "changed: units__convert: inputSchema (pinned dfbfb0a5f669, listed " in out
    assert out.splitlines()[-1] == "fleet endpoint /mcp: drift"
    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path, "--format", "json")
    (change,) = json.loads(out)["fleet"]["check"]["changed"]
    assert change["name"] == "units__convert" and change["parts"] == ["inputSchema"]


def test_a_tool_the_caller_may_call_and_not_listed_is_withheld(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.serve("notes__add_note", *(name for name in endpoint.every if name.startswith("text__")))
    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path)
    assert code == 1
    assert "withheld: notes__add_note (pinned 4fd3206a78f3; this caller may call it" in out
    assert "withheld: every tool of text (4 this caller may call)" in out
    assert out.splitlines()[-1] == "fleet endpoint /mcp: withheld"
    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path, "--format", "json")
    check = json.loads(out)["fleet"]["check"]
    assert [item["name"] for item in check["withheld"]][:1] == ["notes__add_note"]
    assert check["silent_servers"] == ["text"]


def test_each_caller_is_expected_to_see_what_its_roles_may_call(
    support_endpoint: Endpoint, tmp_path: Path
) -> None:
    # Support may not call delete_note nor everything's get-env (and a few more of everything's).
    support = {"get-annotated-message", "get-resource-links", "get-resource-reference", "echo", "get-sum"}
    support |= {"get-structured-content", "get-tiny-image", "trigger-long-running-operation"}
    allowed = [name for name in support_endpoint.every if not name.startswith("everything__")]
    allowed.remove("notes__delete_note")
    allowed += [f"everything__{name}" for name in support]
    support_endpoint.serve(*(f"={name}" for name in allowed))
    code, out, err = verify(support_endpoint.url, SUPPORT, tmp_path)
    assert code == 0, out + err

    support_endpoint.serve(*(f"={name}" for name in [*allowed, "notes__delete_note", "everything__get-env"]))
    code, out, _ = verify(support_endpoint.url, SUPPORT, tmp_path)
    assert code == 1
    assert "/mcp: ACCESS" in out
    assert "listed, but this caller may not call it: everything__get-env" in out
    assert "listed, but this caller may not call it: notes__delete_note" in out


def test_names_that_are_no_declared_tool_of_an_enabled_server(endpoint: Endpoint, tmp_path: Path) -> None:
    convert = endpoint.every["units__convert"]
    extra = (
        convert.model_copy(update={"name": "ghost__convert"}),
        convert.model_copy(update={"name": "convert"}),
        convert.model_copy(update={"name": "units__convert_v2"}),
    )
    endpoint.serve(extra=extra)
    code, out, _ = verify(endpoint.url, ENGINEER, tmp_path)
    assert code == 1
    assert "not a tool of a server enabled here: convert" in out
    assert "not a tool of a server enabled here: ghost__convert" in out
    assert "undeclared (not in the catalog): units__convert_v2" in out


def test_the_gateway_url_checks_the_servers_and_the_fleet_endpoint(
    endpoint: Endpoint, honest_fleet: dict[str, Running], tmp_path: Path
) -> None:
    endpoint.serve()
    base = endpoint.url.removesuffix("/mcp")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(f'"/mcp": {ENGINEER}\n', encoding="utf-8")
    direct = [f"--server-url={name}={url}" for name, url in urls_of(honest_fleet).items()]
    code, out, err = verify(base, None, tmp_path, "--token-file", str(tokens), *direct)
    assert code == 0, out + err
    assert "units: ok" in out and "/mcp: ok" in out
    assert out.splitlines()[-1] == "4 of 4 servers ok; fleet endpoint /mcp ok"
    assert ENGINEER not in out + err

    # Without a "/mcp" token the fleet endpoint is left out, and the report says how to check it.
    tokens.write_text(f"units: {ENGINEER}\n", encoding="utf-8")
    code, out, _ = verify(base, None, tmp_path, "--token-file", str(tokens), *direct)
    assert code == 0
    assert f"the fleet endpoint /mcp is not checked: {tokens} holds no '/mcp' token" in out
    assert out.splitlines()[-1] == "4 of 4 servers ok"


def test_a_refused_caller(endpoint: Endpoint, tmp_path: Path) -> None:
    endpoint.serve()
    code, out, _ = verify(endpoint.url, None, tmp_path)
    assert code == 1
    assert "/mcp: REFUSED" in out and "HTTP 401" in out
    assert "no token was sent to this endpoint (see --token-file)" in out
    assert out.splitlines()[-1] == "fleet endpoint /mcp: refused"
    code, out, _ = verify(endpoint.url, SUPPORT, tmp_path)
    assert code == 1 and "/mcp: REFUSED" in out and SUPPORT not in out
