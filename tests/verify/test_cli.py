"""`mcpfleet verify` against real servers: no drift when honest, drift and outages exit 1, tokens stay secret.

The reference servers run as processes on loopback; `--server-url` (hidden) points verify straight at
them instead of the gateway layout, which tests/e2e checks through a real HAProxy.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
import yaml
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from examples.servers.common import create_app, parse_args
from examples.servers.text.server import SPEC as TEXT
from examples.servers.units.server import SPEC as UNITS
from examples.servers.units.server import build as build_units
from mcpfleet.cli.main import app
from tests.conftest import REPO, minimal_server
from tests.examples.running import Running, free_port, honest_fleet, reference_server

pytestmark = pytest.mark.slow
__all__ = ["honest_fleet"]  # a fixture, used by name

UNITS_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ1bml0cyJ9.dW5pdHMtc2lnbmF0dXJl"
TEXT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ0ZXh0In0.dGV4dC1zaWduYXR1cmU"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on it here

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)


def verify(*args: str, urls: dict[str, str] | None = None) -> tuple[int, str, str]:
    direct = [f"--server-url={name}={url}" for name, url in (urls or {}).items()]
    command = ["verify", "--env", "dev", "--catalog", "examples/catalog", *direct, *args]
    if not any(arg.startswith("--endpoint") for arg in args):
        command += ["--endpoint", CLOSED]
    result = runner.invoke(app, command)
    return result.exit_code, result.stdout, result.stderr


def urls_of(fleet: dict[str, Running], **replace: str) -> dict[str, str]:
    return {name: replace.get(name, running.url) for name, running in fleet.items()}


def test_honest_fleet_has_no_drift_in_either_mode(honest_fleet: dict[str, Running]) -> None:
    code, out, err = verify("--format", "json", urls=urls_of(honest_fleet))
    assert code == 0, out + err
    report = json.loads(out)
    assert report["ok"] is True
    servers = {server["name"]: server for server in report["servers"]}
    for name in ("notes", "text", "units"):
        assert [(x["mode"], x["status"]) for x in servers[name]["listings"]] == [
            ("modern", "ok"),
            ("legacy", "ok"),
        ]
        assert servers[name]["agree"] is True
        assert servers[name]["drift"]["found"] is False
        assert {x["replica"] for x in servers[name]["listings"]} == {f"{name}-1"}
    everything = servers["everything"]
    assert [x["status"] for x in everything["listings"]] == ["unsupported", "ok"]
    assert everything["status"] == "ok" and everything["agree"] is None


def test_honest_fleet_text_report(honest_fleet: dict[str, Running]) -> None:
    code, out, _ = verify(urls=urls_of(honest_fleet))
    assert code == 0
    assert "units: ok" in out
    assert "modern 2026-07-28: 3 tools, replica units-1" in out
    assert "modern and legacy listings agree" in out
    assert "not supported, the server speaks legacy (2025-11-25) only" in out
    assert out.rstrip().endswith("4 of 4 servers ok")


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Running]]:
    logs = tmp_path_factory.mktemp("drift-logs")
    with (
        reference_server("units", "--drift", log_dir=logs) as units,
        reference_server("notes", "--drift", log_dir=logs) as notes,
    ):
        yield {"units": units, "notes": notes}


def test_drift_is_reported_and_exits_1(honest_fleet: dict[str, Running], drifted: dict[str, Running]) -> None:
    urls = urls_of(honest_fleet, units=drifted["units"].url, notes=drifted["notes"].url)
    code, out, _ = verify(urls=urls)
    assert code == 1
    assert "units: DRIFT" in out and "notes: DRIFT" in out and "text: ok" in out
    assert "changed: convert: inputSchema (pinned dfbfb0a5f669, listed " in out
    assert "changed: add_note: inputSchema" in out
    assert out.rstrip().endswith("2 of 4 servers ok; drift: notes, units")

    code, out, _ = verify("--format", "json", urls=urls)
    servers = {server["name"]: server for server in json.loads(out)["servers"]}
    assert servers["units"]["drift"]["changed"] == [
        {
            "name": "convert",
            "parts": ["inputSchema"],
            "pinned": "dfbfb0a5f6699ea048ce1fa3f99f9dc238010ad53c2d48c3254c3e90c5e46101",
            "listed": servers["units"]["listings"][0]["tools"][0]["sha256"],
        }
    ]
    # Both eras see the same drifted server: the listings agree, the catalog does not.
    assert servers["units"]["agree"] is True


@contextmanager
def silent_listener() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"


def test_unreachable_servers_fail_within_their_bound(honest_fleet: dict[str, Running]) -> None:
    with silent_listener() as silent:
        urls = urls_of(honest_fleet, units=f"http://127.0.0.1:{free_port()}/mcp", text=silent)
        started = time.monotonic()
        code, out, _ = verify("--timeout", "1", urls=urls)
        elapsed = time.monotonic() - started
    assert code == 1
    # Two modes of one second each for the silent one, checked alongside the others.
    assert elapsed < 6, elapsed
    assert "units: UNREACHABLE" in out and "cannot connect" in out
    assert "text: UNREACHABLE" in out and "no answer within 1s" in out
    assert "notes: ok" in out
    assert out.rstrip().endswith("2 of 4 servers ok; unreachable: text, units")


def test_gateway_layout_when_no_direct_urls(
    catalog_dir: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://user:secret@127.0.0.1:{free_port()}/base/"
    root = catalog_dir(
        alpha=minimal_server("alpha"),
        beta=minimal_server("beta", transport={"type": "sse", "port": 8000, "path": "/sse"}),
    )
    result = runner.invoke(
        app,
        ["verify", "--env", "dev", "--catalog", str(root), "--endpoint", endpoint, "--format", "json"],
    )
    assert result.exit_code == 1
    assert "secret" not in result.stdout
    report = json.loads(result.stdout)
    base = endpoint.replace("user:secret@", "").rstrip("/")
    assert report["endpoint"] == endpoint.replace("user:secret@", "")
    assert [(s["name"], s["url"], s["status"]) for s in report["servers"]] == [
        ("alpha", f"{base}/servers/alpha/mcp", "unreachable"),
        ("beta", f"{base}/servers/beta/sse", "unreachable"),
    ]
    assert [x["mode"] for x in report["servers"][1]["listings"]] == ["sse"]
    assert "SSE transport" in report["servers"][1]["notes"][0]


def test_sse_servers_are_listed_over_sse(catalog_dir: Callable[..., Path]) -> None:
    # An SSE server: the units tools on the SDK's SSE transport, pinned as the units entry pins them.
    units = REPO / "examples" / "catalog" / "servers" / "units.yaml"
    tools = yaml.safe_load(units.read_text(encoding="utf-8"))["tools"]
    sse = {"type": "sse", "port": 8000, "path": "/sse"}
    entry = minimal_server("legacy-units", transport=sse, tools=tools)
    root = catalog_dir(**{"legacy-units": entry})
    with serve_in_thread(build_units().sse_app(), "/sse") as url:
        args = ["verify", "--env", "dev", "--catalog", str(root), "--endpoint", CLOSED, "--format", "json"]
        result = runner.invoke(app, [*args, f"--server-url=legacy-units={url}"])
    assert result.exit_code == 0, result.stdout + result.stderr
    (server,) = json.loads(result.stdout)["servers"]
    assert [(x["mode"], x["status"], x["protocol"]) for x in server["listings"]] == [
        ("sse", "ok", "2025-11-25")
    ]
    assert server["drift"]["found"] is False and server["agree"] is None


class RequireToken:
    """What the gateway does for one server: a bearer token for its audience, else 401 with a JSON-RPC error.

    With echo, the refusal quotes the presented token, as a careless proxy might."""

    def __init__(self, app: ASGIApp, token: str, *, echo: bool = False) -> None:
        self.app, self.token, self.echo = app, token, echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/mcp":
            presented = dict(scope["headers"]).get(b"authorization", b"").decode()
            if presented != f"Bearer {self.token}":
                message = f"token refused: {presented}" if self.echo else "a valid bearer token is required"
                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}}
                await JSONResponse(body, status_code=401)(scope, receive, send)
                return
        await self.app(scope, receive, send)


@contextmanager
def serve_in_thread(app: ASGIApp, path: str = "/mcp") -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the guarded server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def guarded() -> Iterator[dict[str, str]]:
    """units and text, each accepting only its own token (text echoes refused ones)."""
    options = parse_args("guarded", ["--replica-id", "guarded"])
    with (
        serve_in_thread(RequireToken(create_app(UNITS, options), UNITS_TOKEN)) as units,
        serve_in_thread(RequireToken(create_app(TEXT, options), TEXT_TOKEN, echo=True)) as text,
    ):
        yield {"units": units, "text": text}


def token_file(tmp_path: Path, content: str, name: str = "tokens.yaml") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def assert_no_token(*outputs: str) -> None:
    for output in outputs:
        assert UNITS_TOKEN not in output and TEXT_TOKEN not in output
        # Not even a fragment long enough to matter: the signature parts are unique to the tokens.
        assert "dW5pdHMtc2lnbmF0dXJl" not in output and "dGV4dC1zaWduYXR1cmU" not in output


def test_per_server_tokens(honest_fleet: dict[str, Running], guarded: dict[str, str], tmp_path: Path) -> None:
    path = token_file(tmp_path, f"units: {UNITS_TOKEN}\ntext: {TEXT_TOKEN}\nretired: {TEXT_TOKEN}\n")
    urls = urls_of(honest_fleet, **guarded)
    for output_format in ("text", "json"):
        code, out, err = verify("--token-file", str(path), "--format", output_format, urls=urls)
        assert code == 0, out + err
        assert_no_token(out, err)
    report = json.loads(out)
    kinds = {server["name"]: server["token"] for server in report["servers"]}
    assert kinds == {"everything": "none", "notes": "none", "text": "own", "units": "own"}
    assert any("tokens for servers not enabled in dev: retired" in note for note in report["notes"])
    assert any("no token for: everything, notes" in note for note in report["notes"])


def test_one_token_fits_one_audience(
    honest_fleet: dict[str, Running], guarded: dict[str, str], tmp_path: Path
) -> None:
    # A single token is sent to every server; text refuses it, and echoes it back in its error.
    path = token_file(tmp_path, UNITS_TOKEN + "\n", "token")
    urls = urls_of(honest_fleet, **guarded)
    code, out, err = verify("--token-file", str(path), urls=urls)
    assert code == 1
    assert "units: ok" in out
    assert "text: REFUSED" in out
    assert "HTTP 401: token refused: Bearer <token> (error -32001)" in out
    assert_no_token(out, err)
    code, out, err = verify("--token-file", str(path), "--format", "json", urls=urls)
    assert_no_token(out, err)
    text = next(server for server in json.loads(out)["servers"] if server["name"] == "text")
    assert text["problems"] == ["refused"]
    assert [listing["refused_by"] for listing in text["listings"]] == [401, 401]


def test_no_token_file(honest_fleet: dict[str, Running], guarded: dict[str, str]) -> None:
    code, out, _ = verify(urls=urls_of(honest_fleet, **guarded))
    assert code == 1
    assert "HTTP 401: a valid bearer token is required" in out
    assert "no token was sent to this server (see --token-file)" in out


def test_unreadable_token_file_exits_1_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "absent-tokens.yaml"
    code, out, err = verify("--token-file", str(missing))
    assert code == 1
    assert str(missing) in err and "cannot read the token file" in err
    assert "Traceback" not in out + err


def test_malformed_token_file_never_quotes_it(tmp_path: Path) -> None:
    path = token_file(tmp_path, f"units: [{UNITS_TOKEN}]\n")
    code, out, err = verify("--token-file", str(path))
    assert code == 1
    assert "the token of server 'units' is not a bearer token string" in err
    assert_no_token(out, err)


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--env", "dev"],
        ["verify", "--env", "qa", "--endpoint", CLOSED],
        ["verify", "--env", "dev", "--endpoint", "ftp://gateway"],
        ["verify", "--env", "dev", "--endpoint", "gateway.example.com"],
        ["verify", "--env", "dev", "--endpoint", CLOSED, "--format", "xml"],
        ["verify", "--env", "dev", "--endpoint", CLOSED, "--timeout", "0"],
        ["verify", "--env", "dev", "--endpoint", CLOSED, "--server-url", "no-equals-sign"],
        [
            "verify",
            "--env",
            "dev",
            "--catalog",
            "examples/catalog",
            "--endpoint",
            CLOSED,
            "--server-url",
            "ghost=http://127.0.0.1:9/mcp",
        ],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_invalid_catalog_exits_1(catalog_dir: Callable[..., Path]) -> None:
    root = catalog_dir(alpha=minimal_server("alpha", tools=[{"name": "x", "sha256": "not-a-hash"}]))
    result = runner.invoke(app, ["verify", "--env", "dev", "--catalog", str(root), "--endpoint", CLOSED])
    assert result.exit_code == 1
    assert "alpha.yaml" in result.stderr and "tools[0].sha256" in result.stderr
