"""scripts/bench_fleet.py and its peers' set-ups: the fleet it builds, the answers it accepts and refuses,
fastmcp's role check, and the whole script on a tiny fleet. Never timing: speed is the script's output."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts import bench_fleet as bench
from scripts import bench_fleet_contextforge as contextforge
from scripts.bench_fleet_peer import RoleCheck
from scripts.bench_gateway import BenchError, Template


def test_the_fleet_is_cloned_round_robin_and_every_tool_is_expected_by_its_served_name(
    tmp_path: Path,
) -> None:
    catalog = bench.cloned_catalog(tmp_path / "catalog", 7, "dev")
    facts = bench.fleet_facts(bench.load_fleet(catalog, "dev"))
    assert sorted(facts.tools) == [
        "notes-0002",
        "notes-0005",
        "text-0000",
        "text-0003",
        "text-0006",
        "units-0001",
        "units-0004",
    ]
    assert facts.call_server == "text-0000"
    # text 4 tools, units 3, notes 4: 3*4 + 2*3 + 2*4.
    assert facts.tool_count == 26
    assert "text-0000__word_count" in facts.names("fleet")
    assert "text-0000_word_count" in facts.names("fastmcp")
    assert "text-0000-word-count" in facts.names("contextforge")
    assert all(len(facts.names(path)) == 26 for path in ("fleet", "fastmcp", "contextforge"))
    # The caller holds every role an access rule names.
    assert set(facts.roles) == {"engineer", "sre", "analyst", "support"}


def test_a_replayed_request_goes_elsewhere_with_its_own_token() -> None:
    template = Template(
        "127.0.0.1",
        8000,
        "POST",
        "/servers/text-0000/mcp",
        (("Authorization", "Bearer one"), ("Accept-Encoding", "gzip"), ("mcp-method", "tools/list")),
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        b"",
    )
    prepared = bench.Prepared.of(template)
    # No compression asked of anyone.
    assert [name for name, _ in prepared.headers] == ["Authorization", "mcp-method"]
    moved = prepared.elsewhere(target="/servers/units-0001/mcp", token="two")
    assert moved.template.target == "/servers/units-0001/mcp"
    assert dict(moved.headers)["Authorization"] == "Bearer two"
    assert dict(prepared.headers)["Authorization"] == "Bearer one"


@dataclass
class Pages:
    """What the fake list server serves: pages of names, by cursor."""

    pages: list[list[str]]


@pytest.fixture
def list_server() -> Iterator[tuple[Pages, bench.Prepared]]:
    served = Pages([])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            message = json.loads(self.rfile.read(int(self.headers["content-length"])))
            cursor = (message.get("params") or {}).get("cursor")
            index = int(cursor) if cursor else 0
            result: dict[str, Any] = {"tools": [{"name": name} for name in served.pages[index]]}
            if index + 1 < len(served.pages):
                result["nextCursor"] = str(index + 1)
            body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    template = Template("127.0.0.1", server.server_address[1], "POST", "/mcp", (), message, b"")
    try:
        yield served, bench.Prepared.of(template)
    finally:
        server.shutdown()
        server.server_close()


def test_a_walk_follows_the_cursor_and_checks_the_names(list_server: tuple[Pages, bench.Prepared]) -> None:
    served, prepared = list_server
    names = frozenset({"a", "b", "c"})
    client = bench.BenchClient()
    try:
        served.pages = [["a", "b"], ["c"]]
        sample = bench.walk_unit(prepared, names, "test", strict=True)(client, True)
        assert (sample.items, sample.missing) == (3, 0)
        assert sample.seconds > 0
        # A walk leaving a tool out: the router's is an error, a peer's is counted.
        served.pages = [["a"], ["c"]]
        with pytest.raises(BenchError, match="gave 2 tools, not the 3 expected"):
            bench.walk_unit(prepared, names, "test", strict=True)(client, True)
        assert bench.walk_unit(prepared, names, "test", strict=False)(client, True).missing == 1
        # A tool served twice, or one the fleet does not hold, is wrong for anyone.
        for pages in ([["a", "b"], ["b", "c"]], [["a", "b", "c"], ["z"]]):
            served.pages = pages
            with pytest.raises(BenchError, match="not the 3 expected"):
                bench.walk_unit(prepared, names, "test", strict=False)(client, True)
        # A first page naming a stranger is refused; a page of known names is counted.
        served.pages = [["a", "z"]]
        with pytest.raises(BenchError, match="not the fleet's"):
            bench.page_unit(prepared, names, "test")(client, True)
        served.pages = [["b"], ["c"]]
        assert bench.page_unit(prepared, names, "test")(client, True).items == 1
    finally:
        client.close()


@dataclass
class Token:
    claims: dict[str, Any]


@dataclass
class Context:
    token: Token | None
    component: Any


def test_fastmcp_peer_lets_a_caller_see_only_the_tools_its_roles_allow() -> None:
    from fastmcp.tools.base import Tool

    rules = {
        "notes-0002": [
            {"tools": ["*"], "roles": ["engineer"]},
            {"tools": ["add_note", "list_notes"], "roles": ["support"]},
        ]
    }
    check = RoleCheck(rules, "roles")

    def allowed(roles: str | None, name: str) -> bool:
        tool = Tool(name=name, parameters={"type": "object"})
        token = None if roles is None else Token({"roles": roles})
        return check(Context(token, tool))

    assert allowed("engineer", "notes-0002_delete_note")
    assert allowed("support", "notes-0002_add_note")
    assert not allowed("support", "notes-0002_delete_note")
    assert allowed("analyst support", "notes-0002_list_notes")
    assert not allowed("analyst", "notes-0002_list_notes")
    # No token, another server's namespace, or roles split other than on single spaces: nothing.
    assert not allowed(None, "notes-0002_add_note")
    assert not allowed("engineer", "text-0000_word_count")
    assert not allowed("support\tengineer", "notes-0002_delete_note")


def test_contextforge_is_set_up_to_reach_loopback_servers_unthrottled(tmp_path: Path) -> None:
    env = contextforge.environment(tmp_path, 4444, {"PATH": "/usr/bin", "SECRET_OF_MINE": "x"})
    assert env["SSRF_ALLOW_LOCALHOST"] == "true"
    assert env["RATE_LIMITING_ENABLED"] == "false"
    assert env["AUTH_REQUIRED"] == "true"
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'contextforge.db'}"
    # Nothing of the caller's environment but what a program needs to run.
    assert "SECRET_OF_MINE" not in env
    # Fresh secrets each run.
    assert env["JWT_SECRET_KEY"] != contextforge.environment(tmp_path, 4444, {})["JWT_SECRET_KEY"]
    assert contextforge.upstream_url("http://127.0.0.1:9/mcp", "text-0000") == (
        "http://127.0.0.1:9/mcp?server=text-0000"
    )
    assert contextforge.tool_name("text-0000", "word_count") == "text-0000-word-count"


@pytest.mark.parametrize(
    "argv",
    [["--calls", "0"], ["--sizes"], ["--concurrency", "33"], ["--seconds", "0"], ["--contextforge", "maybe"]],
)
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.parse_args(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


ROW = re.compile(
    r"^\s+(?P<size>[0-9]+) (?P<op>call|page|walk)\s+(?P<era>modern|legacy)\s+(?P<path>[a-z-]+)\s+"
    r"(?P<items>[0-9]+)\s+(?P<n>[0-9]+)\s+(?P<p50>[0-9.]+)\s+(?P<p99>[0-9.]+)\s+(?P<rate>[0-9]+|-)\s"
)


@pytest.mark.slow
def test_the_script_prints_every_figure_and_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--sizes", "4", "--calls", "6", "--lists", "4", "--walks", "2", "--concurrency", "2"]
    argv += ["--rounds", "2", "--seconds", "1", "--contextforge", "off"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    rows = {(m["op"], m["era"], m["path"]): m for line in out.splitlines() if (m := ROW.match(line))}
    expected = {("call", "modern", p) for p in ("fleet", "route", "direct", "fastmcp")} | {
        ("call", "legacy", p) for p in ("fleet", "route", "direct", "fastmcp")
    }
    expected |= {("page", "modern", p) for p in ("fleet", "route", "direct", "fastmcp", "fastmcp-nocache")}
    expected |= {("page", "legacy", p) for p in ("fleet", "route", "direct", "fastmcp")}
    expected |= {("walk", "modern", p) for p in ("fleet", "route", "direct", "fastmcp", "fastmcp-nocache")}
    expected |= {("walk", "legacy", p) for p in ("fleet", "fastmcp")}
    assert set(rows) == expected, out
    for (op, _, path), row in rows.items():
        assert float(row["p99"]) >= float(row["p50"]) > 0
        # 4 servers: text, units, notes, text = 15 tools; route and direct list one text server (4).
        if op == "walk":
            assert int(row["items"]) == 15
        elif op == "page":
            assert int(row["items"]) == (4 if path in ("route", "direct") else 15)
        assert (row["rate"] == "-") == (op == "walk"), row.group(0)
    for era in ("modern", "legacy"):
        assert re.search(
            rf"^4 servers, {era}: unified tools/call adds [-+][0-9.]+ ms at p50 over the per-server route"
            r" \(<= 0\.2; router CPU [-+][0-9.]+ ms per call\): (met|NOT met)$",
            out,
            re.M,
        ), out
        for op in ("call", "page", "walk"):
            assert re.search(
                rf"^4 servers, {era}, {op}: fleet endpoint [0-9.]+ ms.* against fastmcp [0-9.]+ ms.*:"
                r" (ahead|NOT ahead) of the peers$",
                out,
                re.M,
            ), out
    assert "cached tools/list over 1,000 servers' tools: not judged (no such fleet in this run)" in out
    assert "note: 4 servers: contextforge not measured: --contextforge off" in out
    assert re.search(r"^  memory \(RSS\): router [0-9]+ MiB, fastmcp [0-9]+ MiB", out, re.M), out
    assert re.search(r"^  load average after: [0-9.]+ [0-9.]+ [0-9.]+$", out, re.M)
