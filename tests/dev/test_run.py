"""`mcpfleet dev` for real: the examples catalog (three mcp SDK servers from this Python, server-everything
from npm on Node 22) behind HAProxy and the MCP router, each server's route and the fleet endpoint
(`/mcp`), checked by the verify command it prints and by the README's client, then with the notes server
restarted drifted, then Ctrl-C, after which nothing it started is left running; and how a run reports
each server as it comes."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpfleet.dev import process
from mcpfleet.dev.launch import Tools
from mcpfleet.dev.run import make_plan, run
from tests.conftest import REPO, minimal_server
from tests.dev.test_cli import USAGE_DUMP, this_python
from tests.dev.test_launch import fleet_of
from tests.e2e import node

pytestmark = pytest.mark.e2e

READY_LINE = "press Ctrl-C to stop"
VERIFY_LINE = "check every server and the fleet endpoint through this gateway:"
START_SECONDS = 240.0
STOP_SECONDS = 30.0
# How long the router may list a restarted server's old tools: it re-lists once the listing breaks.
RELIST_SECONDS = 60.0
LOG_SECONDS = 10.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def descendants(pid: int) -> set[int]:
    """pid's children, their children and so on, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


async def tool_names(url: str, token: str | None = None, cafile: Path | None = None) -> list[str]:
    """tools/list with the mcp SDK client, as a legacy (2025-11-25) session client, which every server here
    speaks (server-everything speaks nothing newer)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verify = ssl.create_default_context(cafile=str(cafile)) if cafile else True
    async with (
        httpx2.AsyncClient(headers=headers, verify=verify, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        return sorted(tool.name for tool in (await client.list_tools()).tools)


def list_tools(url: str, token: str | None = None, cafile: Path | None = None) -> list[str]:
    # In a thread of its own: asyncio.run leaves the calling thread without a current event loop, which
    # the Pulumi SDK needs in the main thread for the plan tests that run later in the same session.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, tool_names, url, token, cafile).result()


def post(url: str, body: object, token: str | None, cafile: Path) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    context = ssl.create_default_context(cafile=str(cafile))
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def log_entries(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_for_log_entry(log: Path, expected: Mapping[str, object], seconds: float) -> dict[str, object] | None:
    """The first JSON log entry holding expected that appears in log within seconds, or None."""
    deadline = time.monotonic() + seconds
    while True:
        found = [entry for entry in log_entries(log) if expected.items() <= entry.items()]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def readme_block(language: str) -> str:
    """The one block of code in language that the README's "Connect a client" section shows."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Connect a client") :]
    section = section[: section.index("\n## ", 1)]
    blocks: list[str] = re.findall(rf"^```{language}\n(.*?)^```$", section, re.M | re.S)
    assert len(blocks) == 1, f"the README's Connect a client section shows {len(blocks)} {language} blocks"
    return blocks[0]


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def restart_drifted(pids: set[int], module: str, log: Path) -> subprocess.Popen[bytes]:
    """The server process among pids running module, killed with its process group (as a node would end
    it) and started again with --drift: its command line, environment and port, as dev gave them."""
    (pid,) = [pid for pid in pids if alive(pid) and module in command_line(pid)]
    argv = command_line(pid)
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if item
    )
    port = int(argv[argv.index("--port") + 1])
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    deadline = time.monotonic() + STOP_SECONDS
    while process.port_open("127.0.0.1", port):
        assert time.monotonic() < deadline, f"port {port} still open after its server was killed"
        time.sleep(0.1)
    with log.open("wb") as sink:
        restarted = subprocess.Popen(
            [*argv, "--drift"],
            cwd=REPO,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_SECONDS
    while not process.port_open("127.0.0.1", port):
        assert restarted.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return restarted


def stop_group(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=STOP_SECONDS)


def wait_for_report(command: list[str], withheld: str) -> dict[str, Any]:
    """verify's JSON report once the fleet endpoint withholds the tool named in both eras' listings (the
    router re-lists a server whose listing broke, and lists its old tools until then: a verify run may
    straddle the change)."""
    deadline = time.monotonic() + RELIST_SECONDS
    while True:
        ran = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        report: dict[str, Any] = json.loads(ran.stdout)
        names = [item["name"] for item in (report["fleet"]["check"] or {}).get("withheld") or []]
        settled = withheld in names and "disagree" not in report["fleet"]["problems"]
        if settled or time.monotonic() > deadline:
            assert ran.returncode == 1, ran.stdout + ran.stderr
            return report
        time.sleep(1)


def test_dev_runs_the_examples_catalog_and_stops_cleanly(tmp_path: Path) -> None:
    try:
        node22 = node.node_binary()
    except node.ToolingMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    gateway_port = process.free_port()
    run_dir = tmp_path / "run"
    drifted: subprocess.Popen[bytes] | None = None
    dev = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpfleet",
            "dev",
            "--catalog",
            "examples/catalog",
            "--gateway-port",
            str(gateway_port),
            "--run-dir",
            str(run_dir),
            "--node",
            str(node22),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own session: the SIGINT below reaches mcpfleet alone, as Ctrl-C reaches it in a terminal
        # (its servers run in sessions of their own either way).
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert dev.stdout is not None
        for line in dev.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    started = time.monotonic()
    try:
        deadline = started + START_SECONDS
        while READY_LINE not in output:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "mcpfleet dev exited before it was ready:\n" + "\n".join(output)
            output.append(line)
        text = "\n".join(output)
        print(f"ready after {time.monotonic() - started:.1f}s\n{text}")

        # One line per server as it became ready, before the gateway's summary.
        ready = re.findall(r"^ready: (\S+) on (127\.0\.0\.1:\d+) after \d+\.\ds$", text, re.M)
        assert sorted(name for name, _ in ready) == ["everything", "notes", "text", "units"]
        assert output.index(next(line for line in output if line.startswith("ready: "))) < output.index(
            next(line for line in output if line.startswith("gateway on "))
        )

        direct = dict(re.findall(r"^  (\S+)  \(streamable-http\) on (127\.0\.0\.1:\d+/mcp)$", text, re.M))
        assert sorted(direct) == ["everything", "notes", "text", "units"]
        endpoints = dict(re.findall(r"^  (\S+): (https://\S+)$", text, re.M))
        assert endpoints == {
            name: f"https://127.0.0.1:{gateway_port}/servers/{name}/mcp"
            for name in ["everything", "notes", "text", "units"]
        }
        (fleet_url,) = re.findall(
            r"^  fleet endpoint, every server's tools as <server>__<tool>: (\S+)$", text, re.M
        )
        assert fleet_url == f"https://127.0.0.1:{gateway_port}/mcp"

        # Every server answers MCP on its own port.
        assert "echo" in list_tools(f"http://{direct['everything']}")
        assert "add_note" in list_tools(f"http://{direct['notes']}")

        # The gateway serves the fleet's configuration: TLS with this run's certificate, and each route
        # demands a token for its own server.
        cafile = run_dir / "certs" / "tls.crt"
        tokens = json.loads((run_dir / "tokens.json").read_text())
        assert sorted(tokens) == ["/mcp", "everything", "notes", "text", "units"]
        assert (run_dir / "tokens.json").stat().st_mode & 0o077 == 0
        status, body = post(endpoints["everything"], INITIALIZE, None, cafile)
        assert status == 401 and json.loads(body)["error"]["code"] == -32001
        status, _ = post(endpoints["everything"], INITIALIZE, tokens["notes"], cafile)
        assert status == 401
        # With its own token the request reaches the server, started here, through HAProxy and the router.
        status, _ = post(endpoints["everything"], INITIALIZE, tokens["everything"], cafile)
        assert status == 200
        # HAProxy logs a request when its answer ends, which may be just after the client has read it.
        logs = run_dir / "logs"
        expected: dict[str, object] = {"server": "everything", "caller": "mcpfleet-dev", "status": 200}
        forwarded = wait_for_log_entry(logs / "haproxy.log", expected, LOG_SECONDS)
        assert forwarded is not None
        # The router read that very request (HAProxy's request id) and forwarded it to the server.
        audit = logs / "router-audit.jsonl"
        full = {"request_id": forwarded["request_id"], "event": "message"}
        record = wait_for_log_entry(audit, full, LOG_SECONDS)
        assert record is not None
        assert record["server"] == "everything" and record["method"] == "initialize"
        assert record["caller"] == "mcpfleet-dev" and record["outcome"] == "ok"
        # Its session key was made for this run, readable by its owner only.
        assert (run_dir / "router" / "session-keys").stat().st_mode & 0o077 == 0

        # A whole MCP session through the gateway, with the mcp SDK client: every message of it passed
        # the router, the tool listing included.
        before = len(log_entries(audit))
        assert "add_note" in list_tools(endpoints["notes"], tokens["notes"], cafile)
        listed = {"server": "notes", "method": "tools/list", "era": "legacy", "outcome": "ok"}
        assert wait_for_log_entry(audit, listed, LOG_SECONDS) is not None
        session = [
            entry
            for entry in log_entries(audit)[before:]
            if entry["server"] == "notes" and entry["event"] == "message"
        ]
        assert session[0]["method"] == "initialize"
        assert all(entry["caller"] == "mcpfleet-dev" for entry in session)
        # One session id through the router: the session record of every message after initialize.
        assert len({entry["session"] for entry in session[1:]}) == 1 and session[1]["session"] is not None

        # The fleet endpoint: every server's tools, namespaced, listed with its own token through HAProxy
        # and the router, and refused with a server's token; its token opens no server's route.
        by_server = {name: list_tools(url, tokens[name], cafile) for name, url in endpoints.items()}
        fleet_tools = list_tools(fleet_url, tokens["/mcp"], cafile)
        assert fleet_tools == sorted(f"{name}__{tool}" for name, tools in by_server.items() for tool in tools)
        fleet_listed = {
            "method": "tools/list",
            "endpoint": "fleet",
            "caller": "mcpfleet-dev",
            "outcome": "ok",
        }
        assert wait_for_log_entry(audit, fleet_listed, LOG_SECONDS) is not None
        status, _ = post(fleet_url, INITIALIZE, tokens["units"], cafile)
        assert status == 401
        status, _ = post(endpoints["units"], INITIALIZE, tokens["/mcp"], cafile)
        assert status == 401

        # The token line it printed puts exactly the fleet endpoint's token in $MCP_TOKEN.
        export = output[
            output.index(next(line for line in output if line.startswith("connect an MCP client"))) + 1
        ]
        shown = subprocess.run(
            ["bash", "-c", f'{export.strip()} && printf %s "$MCP_TOKEN"'],
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout == tokens["/mcp"]

        # The README's mcp SDK client, as the README shows it, lists the fleet and calls a tool through it.
        client = tmp_path / "fleet_client.py"
        client.write_text(readme_block("python"), encoding="utf-8")
        env = {**os.environ, "MCP_URL": fleet_url, "MCP_TOKEN": tokens["/mcp"], "SSL_CERT_FILE": str(cafile)}
        ran = subprocess.run(
            [sys.executable, str(client)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.splitlines() == [*fleet_tools, "1000.0"]

        children = descendants(dev.pid)
        groups = {os.getpgid(pid) for pid in children if alive(pid)}
        assert len(groups) == 6  # four servers, the router and HAProxy, a process group each

        # The run printed, once everything was up, the exact verify command for its own gateway: run as
        # printed, from where dev runs, it lists every server through HAProxy and the router and finds
        # no drift.
        command = output[output.index(VERIFY_LINE) + 1].strip()
        assert shlex.split(command) == [
            sys.executable,
            "-m",
            "mcpfleet",
            "verify",
            "--env",
            "local",
            "--endpoint",
            f"https://127.0.0.1:{gateway_port}",
            "--token-file",
            str(run_dir / "tokens.json"),
            "--cacert",
            str(cafile),
            "--catalog",
            "examples/catalog",
        ]
        verified = subprocess.run(
            shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        print(verified.stdout)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.splitlines()[-1] == "4 of 4 servers ok; fleet endpoint /mcp ok"
        assert "/mcp: ok" in verified.stdout and "tools listed per server: everything 13," in verified.stdout

        # notes restarted with a changed tool: its route and the fleet endpoint withhold add_note, and
        # verify, run as printed, names it on both and exits 1.
        drifted = restart_drifted(children, "examples.servers.notes", tmp_path / "notes-drift.log")
        report = wait_for_report([*shlex.split(command), "--format", "json"], "notes__add_note")
        print(json.dumps(report["fleet"]["check"], indent=1))
        servers = {server["name"]: server for server in report["servers"]}
        assert {name for name, server in servers.items() if server["status"] != "ok"} == {"notes"}
        assert servers["notes"]["drift"]["removed"] == ["add_note"]
        assert any("the router withholds a declared tool" in note for note in servers["notes"]["notes"])
        fleet = report["fleet"]
        assert fleet["problems"] == ["withheld"]
        assert [(x["name"], x["pinned"][:12]) for x in fleet["check"]["withheld"]] == [
            ("notes__add_note", "4fd3206a78f3")
        ]
        assert "notes__add_note" not in {tool["name"] for tool in fleet["listings"][0]["tools"]}
        assert fleet["check"]["servers"]["notes"] == 3
    finally:
        if drifted is not None:
            stop_group(drifted)
        dev.send_signal(signal.SIGINT)
        try:
            code = dev.wait(timeout=STOP_SECONDS)
        finally:
            if dev.poll() is None:
                dev.kill()
    while (line := lines.get(timeout=5)) is not None:
        output.append(line)
    assert code == 0, "\n".join(output)
    assert output[-1] == "stopped 6 process groups"
    assert [pid for pid in children if alive(pid)] == []
    assert [pgid for pgid in groups if process.group_members(pgid)] == []


class Recorder:
    """A Watch that writes down what it is told, in order with the run's lines."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def begin(self, name: str, waiting_for: str) -> None:
        self.events.append(f"begin {name}: {waiting_for}")

    def end(self, name: str) -> None:
        self.events.append(f"end {name}")

    def close(self) -> None:
        self.events.append("close")


def test_each_server_is_reported_as_it_comes_then_the_verify_command(
    catalog_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: a server that listens and one that exits at once with its usage are waited for
    together; each gets its line, the display its begin and end; the run goes on without the failed one."""
    monkeypatch.chdir(REPO)
    notes = minimal_server(
        "notes",
        args=["--host", "0.0.0.0", "--port", "8080"],
        packages=[this_python("-m", "examples.servers.notes")],
    )
    broken = minimal_server("broken", packages=[this_python("-c", USAGE_DUMP)], env={"PORT": "8080"})
    catalog = catalog_dir(notes=notes, broken=broken)
    tools = Tools.detect()
    plan = make_plan(fleet_of(catalog), tools, os.environ, process.free_port())
    assert [launch.server for launch in plan.launches] == ["broken", "notes"]
    events: list[str] = []

    def echo(line: str) -> None:
        events.append(line)
        if line == READY_LINE:
            # What Ctrl-C does: the run stops everything it started and returns.
            os.kill(os.getpid(), signal.SIGINT)

    run_dir = tmp_path / "run"
    run(
        plan, tools, os.environ, run_dir, echo, 60.0, ["mcpfleet"], ["--catalog", "catalog"], Recorder(events)
    )
    ports = {launch.server: launch.port for launch in plan.launches}
    assert events[:2] == [
        f"begin broken: 127.0.0.1:{ports['broken']}",
        f"begin notes: 127.0.0.1:{ports['notes']}",
    ]
    failed = next(index for index, line in enumerate(events) if line.startswith("failed: broken: "))
    assert events[failed - 1] == "end broken"
    assert events[failed].splitlines()[1:] == [
        "    Error: cannot open /srv/data: no such directory",
        f"  (usage text left out; whole output: {run_dir / 'logs' / 'broken.log'})",
    ]
    ready = next(index for index, line in enumerate(events) if line.startswith("ready: notes "))
    assert events[ready - 1] == "end notes"
    assert re.fullmatch(rf"ready: notes on 127\.0\.0\.1:{ports['notes']} after \d+\.\ds", events[ready])
    after = events[max(failed, ready) + 1 :]
    assert after[:5] == [
        "begin router: its health check",
        "end router",
        f"begin gateway: HAProxy on 127.0.0.1:{plan.gateway_port}",
        "end gateway",
        "close",
    ]
    # The display is gone before the summary, which ends with the verify command and how to stop.
    verify = after.index(VERIFY_LINE)
    tokens = run_dir / "tokens.json"
    read = """'import json, sys; print(json.load(open(sys.argv[1]))["/mcp"])'"""
    assert after[verify + 1 :] == [
        "  mcpfleet verify --env local"
        f" --endpoint https://127.0.0.1:{plan.gateway_port} --token-file {tokens}"
        f" --cacert {run_dir / 'certs' / 'tls.crt'} --catalog catalog",
        f"connect an MCP client to https://127.0.0.1:{plan.gateway_port}/mcp with this token:",
        f'  export MCP_TOKEN="$({sys.executable} -c {read} {tokens})"',
        READY_LINE,
        "close",
        "stopped 3 process groups",
    ]
    # The fleet endpoint is among the gateway's endpoints, with the separator of its tool names.
    assert (
        f"  fleet endpoint, every server's tools as <server>__<tool>: https://127.0.0.1:{plan.gateway_port}/mcp"
        in events
    )
