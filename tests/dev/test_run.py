"""`mcpfleet dev` for real: the examples catalog (three mcp SDK servers from this Python, server-everything
from npm on Node 22) behind HAProxy and the MCP router, checked by the verify command it prints, then
Ctrl-C, after which nothing it started is left running; and how a run reports each server as it comes."""

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
VERIFY_LINE = "check every server through this gateway:"
START_SECONDS = 240.0
STOP_SECONDS = 30.0
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


def test_dev_runs_the_examples_catalog_and_stops_cleanly(tmp_path: Path) -> None:
    try:
        node22 = node.node_binary()
    except node.ToolingMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    gateway_port = process.free_port()
    run_dir = tmp_path / "run"
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

        # Every server answers MCP on its own port.
        assert "echo" in list_tools(f"http://{direct['everything']}")
        assert "add_note" in list_tools(f"http://{direct['notes']}")

        # The gateway serves the fleet's configuration: TLS with this run's certificate, and each route
        # demands a token for its own server.
        cafile = run_dir / "certs" / "tls.crt"
        tokens = json.loads((run_dir / "tokens.json").read_text())
        assert sorted(tokens) == ["everything", "notes", "text", "units"]
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
        assert verified.stdout.splitlines()[-1] == "4 of 4 servers ok"
    finally:
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
    assert after[verify + 1 :] == [
        "  mcpfleet verify --env local"
        f" --endpoint https://127.0.0.1:{plan.gateway_port} --token-file {run_dir / 'tokens.json'}"
        f" --cacert {run_dir / 'certs' / 'tls.crt'} --catalog catalog",
        READY_LINE,
        "close",
        "stopped 3 process groups",
    ]
